"""How a `TextClassifier` trains, on its parts (its core, preprocessor, layout, head and settings; this module
does not import the model): its batches (length buckets), what trains (the core, or where the backbone has a
frozen prefix, its top on the prefix's features computed once), the optimizer, and Keras' fit with resume, early
stopping and the best weights (`zoo.training.fit`)."""

import dataclasses
import tempfile
import time
from typing import Callable
from typing import Optional

import keras
import numpy as np

from zoo import backbones
from zoo import classifier as classifier_lib
from zoo import datasets
from zoo import heads
from zoo import inputs
from zoo import windows
from zoo.training import linear_solver
from zoo.training import optimizers
from zoo.training import pipeline
from zoo.training import resumable


@dataclasses.dataclass(frozen=True)
class FitRun:
    """How one fit runs, beside its data and run directory (`TextClassifier.fit`'s arguments).

    `validation_split`: the share of the training texts held out for validation where no validation texts are
    given; `stages`: called as stages(name, **details) when a stage starts (caching, training), for progress;
    `shared_run_dir`: for a multi-worker task other than the chief, the chief's run directory (resumed from)."""
    epochs: int
    seed: int
    callbacks: tuple = ()
    class_weight: Optional[dict] = None
    jit_compile: bool = False
    shuffle: bool = True
    validation_split: float = 0.1
    verbose: object = "auto"
    stages: Callable = lambda name, **details: None
    shared_run_dir: Optional[str] = None


class FitHistory(keras.callbacks.History):
    """What `TextClassifier.fit` returns: Keras' History (`history["val_loss"]`, ...) over every epoch, those run
    before a resume included, with `rows` (history.jsonl's records), `best_epoch` (whose weights were kept),
    `caching_seconds` (computing the frozen prefix's features; None without one) and `resumed_seconds` (the training
    seconds of the epochs run before a resume, in an earlier process; 0 for a fresh fit)."""

    def __init__(self, rows, best_epoch, caching_seconds, resumed_seconds=0.0):
        super().__init__()
        self.rows, self.best_epoch, self.caching_seconds = rows, best_epoch, caching_seconds
        self.resumed_seconds = resumed_seconds
        self.epoch = [row["epoch"] - 1 for row in rows]
        self.history = {key: [row[key] for row in rows if key in row]
                        for key in dict.fromkeys(k for row in rows for k in row if k not in ("epoch", "seconds"))}


def input_settings(classifier, jit_compile=False):
    """How a classifier's batches are made: the global batch size, the bucket width (inputs that can be cut to
    their length only) and whether sparse inputs go dense (tf.distribute cannot split them between replicas, and
    XLA compiles no sparse product). Recorded in a run's config.json as "input"; the benchmark reads them."""
    replicas = classifier.distribute_strategy.num_replicas_in_sync
    settings = classifier.training_settings
    return {"batch_size": settings.batch_size * replicas,
            "bucket_width": settings.bucket_width if classifier.layout.variable_length else None,
            "dense": replicas > 1 or bool(jit_compile)}


def split_validation(texts, labels, share, seed, class_names):
    """(texts, label ids, validation texts, validation label ids): a stratified, seeded validation split taken from
    the training texts (the datasets' own splitter)."""
    if not 0 < share < 1:
        raise ValueError(f"validation_split must be between 0 and 1 when no validation_data is given, received "
                         f"{share}.")
    needed = datasets.examples_needed(len(set(labels.tolist())), [share])
    train_texts, train_labels, validation_texts, validation_labels, _ = datasets.split_off(
        texts, labels, share, seed, class_names, "fit", "validation", needed)
    return train_texts, np.asarray(train_labels), validation_texts, np.asarray(validation_labels)


def fit_classifier(classifier, train, validation, run_dir, run):
    """Trains `classifier` (with class names; its parts are built here on the first fit, a vocabulary adapted to
    the training texts) on `train` (texts, labels: class names or ids), validated on `validation` (the same, or
    None: a stratified, seeded `run.validation_split` of `train`), as `run` (`FitRun`) says, in `run_dir` (None: a
    temporary directory). Returns (`FitHistory`, the trained core as it ships: computing in float32, without the
    optimizer and compile state)."""
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="textzoo-fit-") as tmp:
            return fit_classifier(classifier, train, validation, tmp, run)
    class_names = classifier.class_names
    texts, labels = train[0], inputs.label_ids(train[1], class_names)
    if validation is None:
        texts, labels, *validation = split_validation(texts, labels, run.validation_split, run.seed, class_names)
    else:
        validation = validation[0], inputs.label_ids(validation[1], class_names)
    if classifier.core is None:
        classifier.build_parts(texts)
    if classifier.windows is not None:  # Every window an example with its text's label, as prediction reads them.
        texts, labels = windows.expand(texts, labels, classifier.windows)
        validation = windows.expand(*validation, classifier.windows)
    options = {**backbones.default_options(classifier.backbone_name), **classifier.backbone_options}
    if linear_solver.applies(classifier, options):
        rows, best_epoch, feature_seconds = linear_solver.fit_head(
            classifier, options, (texts, labels), validation, run_dir, run.class_weight, run.stages)
        return (FitHistory(rows, best_epoch, feature_seconds),
                classifier_lib.computing_in(classifier.core, "float32"))
    batching = input_settings(classifier, run.jit_compile)
    steps = pipeline.estimated_batches(len(texts), batching["batch_size"], batching["bucket_width"],
                                       classifier.sequence_length)
    prefix, trainee = _compile(classifier, steps * run.epochs, run.jit_compile)
    started = time.time()
    train_ds, caching_seconds = _training_batches(classifier, prefix, batching, texts, labels, run)
    run.stages("training", epochs=run.epochs, steps=steps)
    rows, best_epoch, resumed_seconds = resumable.fit(
        trainee, train_ds, _pipeline(classifier, batching, *validation, run.seed, False), run_dir, run.epochs,
        classifier.training_settings.patience, run.class_weight, run.callbacks, shared_run_dir=run.shared_run_dir,
        validation_model=None if prefix is None else classifier.core, started=started, verbose=run.verbose)
    # What ships computes in float32 (`classifier.computing_in_float32`): predictions from here on are the
    # export's. A copy (same weights) without the optimizer and compile state, which a saved classifier would
    # otherwise carry (each fit compiles afresh).
    return (FitHistory(rows, best_epoch, caching_seconds, resumed_seconds),
            classifier_lib.computing_in(classifier.core, "float32"))


def _training_batches(classifier, prefix, batching, texts, labels, run):
    """(the training batches, seconds spent caching the frozen prefix's features or None): batches of
    preprocessed texts where there is no frozen prefix (`prefix` None), else of the prefix's features, computed
    once here."""
    if prefix is None:
        return _pipeline(classifier, batching, texts, labels, run.seed, run.shuffle), None
    started = time.time()
    run.stages("caching frozen-prefix features", examples=len(texts))
    features, feature_labels = pipeline.cache_features(prefix, texts, labels, classifier.preprocessor,
                                                       classifier.layout, batching["batch_size"],
                                                       batching["bucket_width"])
    caching_seconds = time.time() - started
    return pipeline.feature_dataset(features, feature_labels, prefix.layout, classifier.head_type,
                                    batching["batch_size"], shuffle=run.shuffle, seed=run.seed,
                                    bucket_width=batching["bucket_width"]), caching_seconds


def _pipeline(classifier, batching, texts, labels, seed, shuffle):
    return pipeline.input_pipeline(batching, list(texts), labels, classifier.preprocessor, classifier.layout,
                                   classifier.head_type, seed, shuffle)


def _compile(classifier, total_steps, jit_compile):
    """Compiles what trains: (None, the core), or where the backbone has a frozen prefix, (the prefix, its top on
    the prefix's features: the same layers as the core's), the core then compiled too, for validation."""
    core, settings = classifier.core, classifier.training_settings
    with classifier.distribute_strategy.scope():
        optimizer = optimizers.make_optimizer(classifier.family, settings.learning_rate, total_steps,
                                              settings.warmup_fraction, settings.weight_decay)
        # Built with the parts, or for a classifier trained before or loaded: its network's own prefix.
        prefix = classifier.frozen_prefix or backbones.frozen_prefix(
            classifier.backbone_name, classifier_lib.network_of(core), classifier.backbone_options,
            classifier.sequence_length)
        trainee = core if prefix is None else classifier_lib.build_top_core(prefix, core)
        loss, metric = heads.loss_and_metric(classifier.head_type)
        trainee.compile(optimizer=optimizer, loss=loss, metrics=[metric], jit_compile=jit_compile)
        if trainee is not core:
            loss, metric = heads.loss_and_metric(classifier.head_type)
            core.compile(loss=loss, metrics=[metric], jit_compile=jit_compile)
    return prefix, trainee
