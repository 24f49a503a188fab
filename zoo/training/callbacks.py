"""Callbacks of `fit`: whole-model validation of a partly trained model, the history file, early stopping and
backups that carry on after an interruption."""

import json
import pathlib
import time

import keras


class WholeModelValidation(keras.callbacks.Callback):
    """Validation of a whole model while only a part of it trains (its top, on cached features): at the end of
    every epoch, the whole model's `val_` metrics go into the epoch's logs, as `fit(validation_data=...)` puts
    them, for the callbacks after this one (early stopping, checkpoints, history)."""

    def __init__(self, whole_model, dataset):
        super().__init__()
        self.whole_model, self.dataset = whole_model, dataset

    def on_epoch_end(self, epoch, logs=None):
        results = self.whole_model.evaluate(self.dataset, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"val_{k}": float(v) for k, v in results.items()})


class HistoryWriter(keras.callbacks.Callback):
    """Appends each epoch's logs to history.jsonl as it ends: results are files, and survive an interruption.
    `seconds`: training wall seconds up to the end of the epoch, counted from `started` (a time.time()) plus
    `offset` (the seconds of the epochs run before an interruption)."""

    def __init__(self, path, started=None, offset=0.0):
        super().__init__()
        self.path = pathlib.Path(path)
        self.started = time.time() if started is None else started
        self.offset = offset

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "seconds": round(self.offset + time.time() - self.started, 2)}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on val_loss that carries on from an interrupted run: BackupAndRestore restores the weights, the
    optimizer and the epoch but no callback state, so the best val_loss and the epochs waited since come from the
    history of the epochs already run. Without this, a resumed run would wait `patience` epochs afresh."""

    def __init__(self, previous_history, **kwargs):
        super().__init__(monitor="val_loss", **kwargs)
        self.previous = [r for r in previous_history if "val_loss" in r]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.previous:
            best = min(self.previous, key=lambda r: r["val_loss"])
            self.best = best["val_loss"]
            self.best_epoch = best["epoch"] - 1  # Keras counts epochs from 0, history.jsonl from 1.
            self.wait = self.previous[-1]["epoch"] - best["epoch"]


class SharedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore for multi-worker training, as the tf.distribute guide prescribes: every worker restores
    from the chief's backup (`read_dir`, on storage all workers share), so all resume at the same epoch with the same
    weights; each writes its own backup to `write_dir` (the chief's is `read_dir`; the others', a temporary
    directory). Keras 3's callback has no notion of a chief. One process: both are the same directory."""

    def __init__(self, read_dir, write_dir):
        super().__init__(str(write_dir), delete_checkpoint=True)
        self._reader = keras.callbacks.BackupAndRestore(str(read_dir), delete_checkpoint=False)

    def on_train_begin(self, logs=None):
        # Keras' own restore, from the shared directory (the weights and the epoch to start at).
        self._reader.set_model(self.model)
        self._reader.on_train_begin(logs)


def resumed_epoch(backup_dir):
    """The epoch a BackupAndRestore backup in `backup_dir` resumes at (0 when there is none)."""
    metadata = pathlib.Path(backup_dir) / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])
