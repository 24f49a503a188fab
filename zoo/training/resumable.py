"""Keras' fit that resumes: early stopping, the best weights' checkpoint, BackupAndRestore, TensorBoard and the run
directory's history files (`zoo.runs`), all kept across an interruption."""

import json
import logging
import sys
import warnings

import keras

from zoo import compat
from zoo import runs
from zoo.training.callbacks import HistoryWriter
from zoo.training.callbacks import ResumableEarlyStopping
from zoo.training.callbacks import SharedBackupAndRestore
from zoo.training.callbacks import WholeModelValidation
from zoo.training.callbacks import resumed_epoch


def fit(core, train_ds, validation_ds, run_dir, epochs, patience, class_weight=None, extra_callbacks=(),
        shared_run_dir=None, validation_model=None, started=None, verbose="auto"):
    """Keras fit with early stopping, best-weights checkpoint, BackupAndRestore, TensorBoard and history files.

    A killed run started again with the same run_dir resumes after the last finished epoch. Returns the
    per-epoch history (all epochs, including those before a resume), the epoch of the best weights and the training
    seconds of the epochs run before this resume (0 for a fresh run).
    `shared_run_dir`: for a multi-worker task other than the chief, the chief's run directory, where the backup
    and history it resumes from are read; this task writes only into `run_dir` (a temporary directory).
    `validation_model`: where `core` is a part of a model (the top of a network, on cached features), the whole
    model, which `validation_ds` feeds (`WholeModelValidation`).
    `started`: when training started (time.time(); default now), for the `seconds` of every epoch in the history:
    work done before `fit` (caching features) counts.
    `verbose`: Keras' (0, 1 or 2); "auto": a progress bar on a terminal, a line per epoch otherwise.
    """
    run, shared = runs.RunDir(run_dir), runs.RunDir(shared_run_dir or run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    start = resumed_epoch(shared.backup_dir)
    history_file = run.history_file
    previous = shared.history(before_epoch=start)
    history_file.write_text("".join(json.dumps(r) + "\n" for r in previous))
    if start:
        logging.info("Resuming %s after epoch %d (BackupAndRestore).", run_dir, start)
    best_file = run.best_weights
    best_file.parent.mkdir(parents=True, exist_ok=True)
    best_so_far = min((r["val_loss"] for r in previous if "val_loss" in r), default=None)
    resumed_seconds = previous[-1].get("seconds", 0.0) if previous else 0.0
    validation = [WholeModelValidation(validation_model, validation_ds)] if validation_model is not None else []
    callbacks = [
        *extra_callbacks,  # First: a timer's epoch ends before the whole-model validation.
        *validation,  # Before the rest: they read its val_ metrics.
        # Before the backup: an epoch in the backup is always in the history.
        HistoryWriter(history_file, started, resumed_seconds),
        keras.callbacks.ModelCheckpoint(str(best_file), monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best_so_far),
        ResumableEarlyStopping(previous, patience=patience, restore_best_weights=False),
        keras.callbacks.TensorBoard(str(run.tensorboard_dir)),
        SharedBackupAndRestore(shared.backup_dir, run.backup_dir),
    ]
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    with compat.multi_worker_fit(core), warnings.catch_warnings():
        # Length-bucketed batches have no cardinality tf.data can know: Keras counts the steps of the first epoch as
        # it runs out and warns "Your input ran out of data; interrupting training", which is how the epoch ends.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        core.fit(train_ds, validation_data=None if validation else validation_ds, epochs=epochs, callbacks=callbacks,
                 class_weight=class_weight, verbose=verbose, shuffle=False)  # tf.data shuffles already.
    if best_file.exists():
        core.load_weights(str(best_file))
    history = run.history()
    best_epoch = min(history, key=lambda r: r.get("val_loss", float("inf")))["epoch"] if history else None
    return history, best_epoch, resumed_seconds
