"""`TextClassifier`: a classifier of any backbone of the zoo as a Keras model, raw strings in, probabilities out.

    from recipes import catalog
    from zoo import export
    classifier = catalog.make_classifier("bert_small_bbc_news", budget="quick")
    classifier.fit(texts, labels, validation_data=(validation_texts, validation_labels))
    classifier.predict(["Shares rose after the results"])        # [1, num_classes] probabilities
    classifier.predict_labels(["Shares rose after the results"])  # ["business"]
    classifier.save("news.keras")                                # keras.saving.load_model("news.keras")
    export.export_classifier(classifier, "exports", "news")      # TF Serving: exports/news/<version>/

What trains, how batches are made (length buckets), the frozen-prefix feature cache, resume and early stopping
are the same code the absl scripts and the benchmark run (`zoo.experiment` builds and trains through this
class). Predictions go through `classifier.probabilities`, the function the export serves.
"""

import dataclasses
import tempfile
import time
from typing import Callable
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from zoo import backbones
from zoo import classifier as classifier_lib
from zoo import compat
from zoo import datasets
from zoo import evaluation
from zoo import heads
from zoo import seeds
from zoo import text as text_lib
from zoo import training


@dataclasses.dataclass
class TrainingSettings:
    """How a classifier trains (the training fields of a recipe; `recipes.catalog` holds them per budget).

    `batch_size` is per replica; `bucket_width`: batch texts by token length in buckets this wide (None: pad every
    batch to the sequence length); `patience`: epochs without a better validation loss before stopping."""
    batch_size: int = 32
    epochs: int = 3
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    patience: int = 2
    bucket_width: Optional[int] = None

    @classmethod
    def of(cls, fields):
        """The settings among `fields` (a recipe, or any dict); the others keep their defaults."""
        return cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls) if f.name in fields})


@dataclasses.dataclass(frozen=True)
class _FitRun:
    """How one `fit` runs, beside its data and run directory (`TextClassifier.fit`'s arguments)."""
    epochs: int
    callbacks: tuple
    class_weight: Optional[dict]
    seed: int
    jit_compile: bool
    stages: Callable
    shared_run_dir: Optional[str]


class FitHistory(keras.callbacks.History):
    """What `TextClassifier.fit` returns: Keras' History (`history["val_loss"]`, ...) over every epoch, those run
    before a resume included, with `rows` (history.jsonl's records), `best_epoch` (whose weights were kept) and
    `caching_seconds` (computing the frozen prefix's features; None without one)."""

    def __init__(self, rows, best_epoch, caching_seconds):
        super().__init__()
        self.rows, self.best_epoch, self.caching_seconds = rows, best_epoch, caching_seconds
        self.epoch = [row["epoch"] - 1 for row in rows]
        self.history = {key: [row[key] for row in rows if key in row]
                        for key in dict.fromkeys(k for row in rows for k in row if k not in ("epoch", "seconds"))}


@keras.saving.register_keras_serializable(package="textzoo")
class TextClassifier(keras.Model):
    """Raw strings in, class probabilities out, for any backbone of the zoo (`zoo.backbones.names()`).

    The backbone and head are built by the first `fit` (a vocabulary adapted to its texts, where the backbone has
    one), or by `build_parts`. Class names not given are taken from the first `fit`'s labels: their names in order
    of first appearance, or "0".."k-1" for integer labels.

    Args:
        backbone: str. A registered backbone name.
        class_names: list of str, or None (from the labels of the first `fit`).
        head: str. "auto" (sigmoid for 2 classes, softmax for more), "sigmoid" or "softmax".
        head_hidden_units: list of int. Dense+ReLU layers before the output layer.
        head_dropout: float. Dropout after each hidden layer of the head.
        sequence_length: int. Tokens per text (transformers, GloVe); None for the backbone's default.
        backbone_options: dict. Options of the backbone (`zoo.backbones.default_options(name)`).
        training: `TrainingSettings` or a dict of its fields; None for the backbone's defaults.

    Examples:
        classifier = TextClassifier("ngram_linear", training={"epochs": 5})
        classifier.fit(["good", "bad", ...], ["pos", "neg", ...], validation_data=(texts, labels))
        classifier.predict(["great"])
    """

    def __init__(self, backbone, class_names=None, head="auto", head_hidden_units=(), head_dropout=0.0,
                 sequence_length=None, backbone_options=None, training=None, preprocessor=None, core=None,
                 provenance=None, **kwargs):
        super().__init__(**kwargs)
        backbones.check_options(backbone, backbone_options or {})  # Unknown names and options fail here.
        settings = backbones.default_settings(backbone)
        self.backbone_name = backbone
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.head = head
        self.head_hidden_units = [int(u) for u in head_hidden_units]
        self.head_dropout = float(head_dropout)
        self.sequence_length = sequence_length if sequence_length is not None else settings.get("sequence_length")
        self.backbone_options = dict(backbone_options or {})
        if isinstance(training, TrainingSettings):
            training = dataclasses.asdict(training)
        self.training_settings = TrainingSettings.of({**settings, **(training or {})})
        self.provenance = dict(provenance or {})
        # A classifier made from a trained core (loading) is what ships: in float32 also where a mixed-precision or
        # compiled core was saved (a no-op for what `fit` saves).
        self.preprocessor = preprocessor
        self.core = None if core is None else classifier_lib.computing_in_float32(core)
        self.frozen_prefix = None
        self.head_type = None
        self._served = None  # The traced serving function, made on first use.
        self._strategy = tf.distribute.get_strategy()
        if core is not None:
            self._finish_build()

    # === Building ===

    @classmethod
    def from_fields(cls, fields, class_names=None):
        """The classifier that recipe fields describe (a resolved recipe, `recipes.catalog.resolve`, or any dict
        of its fields: backbone, head, head_hidden_units, head_dropout, sequence_length, backbone_options, the
        training settings and the name under "recipe"). A recipe by name: `recipes.catalog.make_classifier`."""
        return cls(fields["backbone"], class_names=class_names, head=fields["head"],
                   head_hidden_units=fields["head_hidden_units"], head_dropout=fields["head_dropout"],
                   sequence_length=fields["sequence_length"], backbone_options=fields["backbone_options"],
                   training=TrainingSettings.of(fields), name=fields["recipe"])

    def build_parts(self, train_texts=None):
        """Builds the backbone (adapting a vocabulary on `train_texts` where it has one), then the classifier's
        network with its head under the distribution strategy that was in scope when this classifier was made."""
        if self.class_names is None:
            raise ValueError(f"{self.name}: class names are needed to build the head; pass class_names= or call fit.")
        parts = backbones.build(self.backbone_name, self.backbone_options, self.sequence_length,
                                None if train_texts is None else list(train_texts))
        self.head_type = heads.resolve_head_type(self.head, len(self.class_names))
        self.preprocessor = parts.preprocessor
        with self._strategy.scope():
            self._set_core(classifier_lib.build_core(parts, len(self.class_names), self.head_type,
                                                     self.head_hidden_units, self.head_dropout))
        self.frozen_prefix, self.provenance = parts.frozen_prefix, parts.provenance
        self._finish_build()

    def _set_core(self, core):
        if core is not self.core and self.core is not None:
            # Keras tracks layers set as attributes and `del` does not untrack them: the replaced core (with its
            # optimizer) would stay in `weights` and in every saved file.
            compat.untrack_layer(self, self.core)
            del self.core
        self.core = core

    def _finish_build(self):
        self.head_type = heads.resolve_head_type(self.head, len(self.class_names))
        self.family = backbones.family(self.backbone_name)
        self._served = None
        self.built = True

    @property
    def layout(self):
        """The preprocessed inputs' `InputLayout`, read when needed: a classifier being loaded gets its vocabulary
        (which gives the padding id) after it is constructed."""
        return backbones.input_layout(self.backbone_name, self.preprocessor)

    def _require_built(self, what):
        if self.core is None:
            raise ValueError(f"{self.name} has not been built yet: call fit(texts, labels) before {what}.")

    # === Inference: one function from text to probabilities ===

    def call(self, texts):
        """[batch] strings -> [batch, num_classes] float32 probabilities (`classifier.probabilities`)."""
        self._require_built("calling it")
        return classifier_lib.probabilities(texts, self.preprocessor, self.core, self.layout, self.head_type)

    def probabilities_fn(self, preprocessor=None):
        """A concrete function: a [batch] string tensor -> [batch, num_classes] float32 probabilities
        (`classifier.probabilities`). What `predict` runs and the export serves (there with `preprocessor` read back
        from its files), so in-memory and served outputs agree."""
        self._require_built("using it")
        preprocessor = preprocessor or self.preprocessor
        core, layout, head_type = self.core, self.layout, self.head_type

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def probabilities_of(texts):
            return classifier_lib.probabilities(texts, preprocessor, core, layout, head_type)

        with compat.rnn_dropout_off(core):
            return probabilities_of.get_concrete_function()

    def probabilities_of_request(self, texts):
        """Probabilities of `texts` sent as one request: the very computation a served call with this batch runs.
        (Under bfloat16 or float16, how a batch falls into length-sorted chunks shows in the third decimal.)"""
        if self._served is None:  # One traced function for every call, not a fresh trace per call.
            self._served = self.probabilities_fn()
        return self._served(tf.constant(list(texts), dtype=tf.string)).numpy()

    def predict(self, x, batch_size=64, **kwargs):
        """Probabilities [len(x), num_classes] of the texts `x` (a list, array or tensor of strings), in their order:
        the function the export serves. Texts go in requests of `batch_size` texts of similar length (sorted by
        characters, the order put back after): transformer chunks are then padded little."""
        del kwargs  # Keras' verbose/steps/callbacks: prediction here is one traced function, not a loop of steps.
        texts = _texts(x, "x")
        self._require_built("predicting")
        if not texts:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        outputs = np.concatenate([self.probabilities_of_request([texts[i] for i in order[start:start + batch_size]])
                                  for start in range(0, len(texts), batch_size)])
        return outputs[np.argsort(order)]

    def predict_labels(self, x, batch_size=64):
        """The most probable class name of each text."""
        return [self.class_names[i] for i in np.argmax(self.predict(x, batch_size), axis=-1)]

    def evaluate(self, x=None, y=None, batch_size=64, return_dict=True, **kwargs):
        """The loss and the metrics a run's metrics.json holds (`evaluation.compute_metrics`: accuracy, macro-F1,
        per class, confusion matrix, ROC-AUC for two classes) of the served probabilities on texts `x`, labels `y`."""
        del kwargs
        texts, labels = _texts(x, "x"), self.label_ids(y)
        probabilities = self.predict(texts, batch_size)
        loss_fn, _ = heads.loss_and_metric(self.head_type)
        outputs = probabilities[:, 1:] if self.head_type == "sigmoid" else probabilities
        loss = float(loss_fn(heads.prepare_labels(tf.constant(labels), self.head_type), outputs))
        results = {"loss": loss, **evaluation.compute_metrics(labels, probabilities, self.class_names)}
        return results if return_dict else list(results.values())

    # === Labels ===

    def label_ids(self, y):
        """Labels (class names, or integer ids) as ids; every one must be a class of this classifier."""
        values = list(y.numpy() if isinstance(y, tf.Tensor) else y)
        if self.class_names is None:
            raise ValueError(f"{self.name} has no class names yet: call fit first.")
        index = {name: i for i, name in enumerate(self.class_names)}
        ids = []
        for i, value in enumerate(values):
            value = value.decode("utf-8") if isinstance(value, bytes) else value
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                if not 0 <= value < len(self.class_names):
                    raise ValueError(f"Label {value} (example {i}) is not a class id: allowed 0 to "
                                     f"{len(self.class_names) - 1} ({self.class_names}).")
                ids.append(int(value))
            elif str(value) in index:
                ids.append(index[str(value)])
            else:
                raise ValueError(f"Label {value!r} (example {i}) is not one of the classes {self.class_names}.")
        return np.asarray(ids, dtype=np.int64)

    def _take_class_names(self, labels):
        values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in labels]
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            if values and min(values) < 0:
                raise ValueError(f"Integer labels must be class ids from 0, received {min(values)}.")
            self.class_names = [str(i) for i in range(max(values) + 1)] if values else []
        else:
            self.class_names = [str(v) for v in dict.fromkeys(values)]
        if len(self.class_names) < 2:
            raise ValueError(f"A classifier needs examples of at least 2 classes, received {self.class_names}.")

    # === Training ===

    def input_settings(self):
        """How batches are made: the global batch size, the bucket width (inputs that can be cut to their length
        only) and whether sparse inputs go dense (tf.distribute cannot split them between replicas). Recorded in a
        run's config.json; the benchmark reads them."""
        replicas = self._strategy.num_replicas_in_sync
        settings = self.training_settings
        return {"batch_size": settings.batch_size * replicas,
                "bucket_width": settings.bucket_width if self.layout.variable_length else None,
                "dense": replicas > 1}

    def steps_per_epoch(self, examples):
        inputs = self.input_settings()
        return training.estimated_batches(examples, inputs["batch_size"], inputs["bucket_width"], self.sequence_length)

    def input_pipeline(self, texts, labels, seed, shuffle):
        """The tf.data pipeline of texts and label ids, made as `input_settings` says."""
        return training.input_pipeline(self.input_settings(), list(texts), labels, self.preprocessor, self.layout,
                                       self.head_type, seed, shuffle)

    def fit(self, x=None, y=None, validation_data=None, epochs=None, callbacks=(), class_weight=None, run_dir=None,
            seed=seeds.DEFAULT_SEED, jit_compile=False, validation_split=0.1, stages=None, shared_run_dir=None,
            **kwargs):
        """Trains on texts `x` with labels `y` (class names or ids) and returns a `FitHistory`.

        Args:
            validation_data: (texts, labels) for early stopping and the best weights; None takes a stratified,
                seeded `validation_split` of `x`.
            epochs: None for the training settings' (`TrainingSettings.epochs`).
            run_dir: where checkpoints, the backup, TensorBoard logs and history.jsonl go; fit again with the same
                `run_dir` after an interruption and it resumes after the last finished epoch. None: a temporary
                directory.
            stages: called as stages(name, **details) when a stage starts (caching, training), for progress.
            shared_run_dir: multi-worker tasks other than the chief: the chief's run directory (resume from it).
        """
        unknown = sorted(set(kwargs) - {"batch_size", "verbose", "shuffle"})
        if unknown:
            raise TypeError(f"TextClassifier.fit got unexpected arguments {unknown}.")
        if "batch_size" in kwargs:
            self.training_settings = dataclasses.replace(self.training_settings, batch_size=int(kwargs["batch_size"]))
        texts = _texts(x, "x")
        labels = list(y.numpy() if isinstance(y, tf.Tensor) else y)
        if len(labels) != len(texts):
            raise ValueError(f"fit got {len(texts)} texts and {len(labels)} labels: one label per text is needed.")
        if self.class_names is None:
            self._take_class_names(labels)
        label_ids = self.label_ids(labels)
        if validation_data is None:
            texts, label_ids, validation_texts, validation_ids = _split_validation(
                texts, label_ids, validation_split, seed, self.class_names)
        else:
            validation_texts, validation_labels = validation_data
            validation_texts, validation_ids = _texts(validation_texts, "validation texts"), \
                self.label_ids(validation_labels)
        if self.core is None:
            self.build_parts(texts)
        run = _FitRun(epochs=self.training_settings.epochs if epochs is None else int(epochs),
                      callbacks=tuple(callbacks), class_weight=class_weight, seed=seed, jit_compile=jit_compile,
                      stages=stages or (lambda name, **details: None), shared_run_dir=shared_run_dir)
        if run_dir is None:
            with tempfile.TemporaryDirectory(prefix="textzoo-fit-") as tmp:
                return self._fit((texts, label_ids), (validation_texts, validation_ids), tmp, run)
        return self._fit((texts, label_ids), (validation_texts, validation_ids), run_dir, run)

    def _fit(self, train, validation, run_dir, run):
        """Trains on `train` (texts, label ids), validated on `validation`, as `run` (`_FitRun`) says."""
        (texts, labels), seed, stages = train, run.seed, run.stages
        inputs = self.input_settings()
        steps = self.steps_per_epoch(len(texts))
        trainee = self._compile(steps * run.epochs, run.jit_compile)
        started = time.time()
        caching_seconds = None
        if trainee is self.core:
            train_ds = self.input_pipeline(texts, labels, seed, shuffle=True)
        else:
            stages("caching frozen-prefix features", examples=len(texts))
            features, feature_labels = training.cache_features(self.frozen_prefix, texts, labels, self.preprocessor,
                                                               self.layout, inputs["batch_size"],
                                                               inputs["bucket_width"])
            caching_seconds = time.time() - started
            train_ds = training.feature_dataset(features, feature_labels, self.frozen_prefix.layout, self.head_type,
                                                inputs["batch_size"], shuffle=True, seed=seed,
                                                bucket_width=inputs["bucket_width"])
        stages("training", epochs=run.epochs, steps=steps)
        rows, best_epoch = training.fit(trainee, train_ds, self.input_pipeline(*validation, seed, shuffle=False),
                                        run_dir, run.epochs, self.training_settings.patience, run.class_weight,
                                        run.callbacks, shared_run_dir=run.shared_run_dir,
                                        validation_model=None if trainee is self.core else self.core, started=started)
        # What ships computes in float32 (`classifier.computing_in_float32`): predictions from here on are the
        # export's. A copy (same weights) without the optimizer and compile state, which a saved classifier would
        # otherwise carry (each `fit` compiles afresh).
        self._set_core(classifier_lib.computing_in(self.core, "float32"))
        self.frozen_prefix = None  # Its layers were the trained core's: a further fit makes the copy's own.
        self._served = None
        return FitHistory(rows, best_epoch, caching_seconds)

    def _compile(self, total_steps, jit_compile):
        """Compiles what trains and returns it: the core, or where the backbone has a frozen prefix, its top on
        cached features (the same layers as the core's), the core then compiled too, for validation."""
        with self._strategy.scope():
            settings = self.training_settings
            optimizer = training.make_optimizer(self.family, settings.learning_rate, total_steps,
                                                settings.warmup_fraction, settings.weight_decay)
            if self.frozen_prefix is None:  # A classifier trained before or loaded: its network's own prefix.
                self.frozen_prefix = backbones.frozen_prefix(self.backbone_name, classifier_lib.network_of(self.core),
                                                             self.backbone_options, self.sequence_length)
            trainee = self.core if self.frozen_prefix is None else classifier_lib.build_top_core(self, self.core)
            loss, metric = heads.loss_and_metric(self.head_type)
            trainee.compile(optimizer=optimizer, loss=loss, metrics=[metric], jit_compile=jit_compile)
            if trainee is not self.core:
                loss, metric = heads.loss_and_metric(self.head_type)
                self.core.compile(loss=loss, metrics=[metric], jit_compile=jit_compile)
        return trainee

    # === Saving and export ===

    def export(self, filepath, format="tf_saved_model", **kwargs):
        """Refused: a classifier ships through `zoo.export.export_classifier(classifier, export_dir, model_name)`
        (TF Serving's layout, Predict and Classify signatures, labels, warm-up, verified in a fresh process).
        Keras' own `Model.export` would save none of that."""
        del format, kwargs
        raise NotImplementedError(
            f"{self.name}.export({str(filepath)!r}, ...) is Keras' generic export, which a TextClassifier does not "
            "use: call zoo.export.export_classifier(classifier, export_dir, model_name) for a verified TF Serving "
            "export.")

    def get_config(self):
        config = super().get_config()
        config.update(
            backbone=self.backbone_name, class_names=self.class_names, head=self.head,
            head_hidden_units=self.head_hidden_units, head_dropout=self.head_dropout,
            sequence_length=self.sequence_length, backbone_options=self.backbone_options,
            training=dataclasses.asdict(self.training_settings), provenance=self.provenance,
            preprocessor=None if self.preprocessor is None else keras.saving.serialize_keras_object(self.preprocessor),
            core=None if self.core is None else keras.saving.serialize_keras_object(self.core))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbones.module(config["backbone"])  # Registers its Keras classes (a fresh process has not imported them).
        for key in ("preprocessor", "core"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _texts(x, what):
    """A list of str from a list, array or tensor of strings (bytes decoded as UTF-8, undecodable bytes replaced),
    each cut at the input limit the served model applies; anything else is refused, naming what was received."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{what} must be a list of texts, received one {type(x).__name__}: wrap it in a list.")
    if isinstance(x, tf.Tensor):
        x = x.numpy().tolist()
    if x is None:
        raise TypeError(f"{what} must be a list of texts, received None.")
    texts = []
    for i, text in enumerate(x):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] must be a string, received {type(text).__name__}: {text!r:.80}.")
        texts.append(text_lib.cut_to_input_limit(text))  # What the served model reads of it (zoo.text).
    return texts


def _split_validation(texts, labels, share, seed, class_names):
    """A stratified, seeded validation split taken from the training texts (the datasets' own splitter)."""
    if not 0 < share < 1:
        raise ValueError(f"validation_split must be between 0 and 1 when no validation_data is given, received "
                         f"{share}.")
    needed = datasets.examples_needed(len(set(labels.tolist())), [share])
    train_texts, train_labels, validation_texts, validation_labels, _ = datasets.split_off(
        texts, labels, share, seed, class_names, "fit", "validation", needed)
    return train_texts, np.asarray(train_labels), validation_texts, np.asarray(validation_labels)
