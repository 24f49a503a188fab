"""`TextClassifier`: a classifier of any backbone of the zoo as a Keras model, raw strings in, probabilities out.

    from recipes import catalog
    from zoo import export
    classifier = catalog.make_classifier("minilm_l6_bbc_news", budget="quick")
    classifier.fit(texts, labels, validation_data=(validation_texts, validation_labels))
    classifier.predict(["Shares rose after the results"])        # [1, num_classes] probabilities
    classifier.predict_labels(["Shares rose after the results"])  # ["business"]
    classifier.save("news.keras")                                # keras.saving.load_model("news.keras")
    export.export_classifier(classifier, "exports", "news")      # TF Serving: exports/news/<version>/

It holds what a keras-hub Task holds: its parts, `call` (`classifier.probabilities`, what the export serves),
`predict`/`evaluate` and its config; how it trains is `zoo.training.fit_classifier`, as in the scripts.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zoo import backbones
from zoo import classifier as classifier_lib
from zoo import compat
from zoo import evaluation
from zoo import heads
from zoo import inputs
from zoo import seeds
from zoo import training
from zoo import windows as windows_lib
from zoo.settings import TrainingSettings


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
        # How a long text is read (`zoo.windows.Windows`); None: cut at the sequence length.
        self.windows = windows_lib.of({**backbones.default_options(backbone), **self.backbone_options},
                                      self.sequence_length)
        training = dataclasses.asdict(training) if isinstance(training, TrainingSettings) else training or {}
        self.training_settings = TrainingSettings.of({**settings, **training})
        self.provenance = dict(provenance or {})
        # A classifier made from a trained core (loading) is what ships: in float32 also where a mixed-precision or
        # compiled core was saved (a no-op for what `fit` saves).
        self.preprocessor = preprocessor
        self.core = None if core is None else classifier_lib.computing_in_float32(core)
        self.frozen_prefix = None
        self.head_type = None
        self._served = None  # The traced serving function, made on first use.
        if core is not None:
            self._finish_build()

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
                                None if train_texts is None else classifier_lib.readable(train_texts))
        self.preprocessor = parts.preprocessor
        with self.distribute_strategy.scope():
            self._set_core(classifier_lib.build_core(parts, len(self.class_names),
                                                     heads.resolve_head_type(self.head, len(self.class_names)),
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
        self._served = None  # Traced over the replaced core.

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

    def call(self, texts):
        """[batch] strings -> [batch, num_classes] float32 probabilities (`classifier.probabilities`)."""
        self._require_built("calling it")
        return classifier_lib.probabilities(texts, self.preprocessor, self.core, self.layout, self.head_type,
                                            self.windows)

    def probabilities_fn(self, preprocessor=None):
        """`classifier.probabilities_function` of this classifier (its preprocessor, or `preprocessor`): a concrete
        function from a [batch] string tensor to [batch, num_classes] float32, the export's serving function."""
        self._require_built("using it")
        return classifier_lib.probabilities_function(preprocessor or self.preprocessor, self.core, self.layout,
                                                     self.head_type, self.windows)

    def probabilities_of_request(self, texts):
        """Probabilities of `texts` sent as one request: the very computation a served call with this batch runs.
        (Under bfloat16 or float16, how a batch falls into length-sorted chunks shows in the third decimal.)"""
        if self._served is None:  # One traced function for every call, not a fresh trace per call.
            self._served = self.probabilities_fn()
        return self._served(tf.constant(list(texts), dtype=tf.string)).numpy()

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Probabilities [texts, num_classes] of the texts `x` (a list, array or tensor of strings, or a
        `tf.data.Dataset` of texts or (texts, labels), batched or not), in their order, by the function the export
        serves, in requests of `batch_size` (default 64) texts of similar length (`classifier.in_requests`).
        `steps`: the first `steps` batches only (the dataset's, or of `batch_size` texts). Callbacks are refused."""
        inputs.refuse("predict", {"callbacks": callbacks})
        texts, _ = inputs.texts_and_labels("predict", x, None, batch_size, steps, with_labels=False)
        return self._predict_texts(texts, batch_size or 64, verbose)

    def _predict_texts(self, texts, batch_size, verbose):
        self._require_built("predicting")
        return classifier_lib.in_requests(self.probabilities_of_request, texts, batch_size, len(self.class_names),
                                          verbose)

    def predict_labels(self, x, batch_size=None, verbose="auto", steps=None):
        """The most probable class name of each text (`predict`'s arguments)."""
        probabilities = self.predict(x, batch_size, verbose, steps)
        return [self.class_names[i] for i in np.argmax(probabilities, axis=-1)]

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=True):
        """The loss and the metrics a run's metrics.json holds (`evaluation.compute_metrics`: accuracy, macro-F1,
        per class, confusion matrix, ROC-AUC for two classes) of the served probabilities on texts `x`, labels `y`
        (or `x` a `tf.data.Dataset` of (texts, labels)). `predict`'s arguments; `return_dict=False` gives Keras'
        list, [loss, accuracy, macro_f1]. Sample weights and callbacks are refused."""
        inputs.refuse("evaluate", {"sample_weight": sample_weight, "callbacks": callbacks})
        texts, labels = inputs.texts_and_labels("evaluate", x, y, batch_size, steps, with_labels=True)
        labels = self.label_ids(labels)
        probabilities = self._predict_texts(texts, batch_size or 64, verbose)
        results = {"loss": heads.mean_loss(probabilities, labels, self.head_type),
                   **evaluation.compute_metrics(labels, probabilities, self.class_names)}
        return results if return_dict else [results["loss"], results["accuracy"], results["macro_f1"]]

    def label_ids(self, y):
        """Labels (class names, or integer ids) as ids; every one must be a class of this classifier."""
        if self.class_names is None:
            raise ValueError(f"{self.name} has no class names yet: call fit first.")
        return inputs.label_ids(inputs.labels(y), self.class_names)

    def fit(self, x=None, y=None, batch_size=None, epochs=None, verbose="auto", callbacks=(), validation_split=0.1,
            validation_data=None, shuffle=True, class_weight=None, run_dir=None, seed=seeds.DEFAULT_SEED,
            jit_compile=False, stages=None, shared_run_dir=None, **refused):
        """Trains on texts `x` with labels `y` (class names or ids), or `x` a `tf.data.Dataset` of (texts, labels)
        batched or not, and returns a `FitHistory` (Keras' History, over the epochs before a resume too).

        How it trains (parts built on the first fit, length buckets, the frozen prefix's features cached, the best
        weights, early stopping, resume): `zoo.training.fit_classifier`.

        Args:
            batch_size, epochs: None for the training settings' (`TrainingSettings`); a batch size given is kept.
            verbose: Keras' (0, 1, 2); "auto": a progress bar on a terminal, a line per epoch otherwise.
            validation_data: (texts, labels), or a tf.data.Dataset of them; None: a stratified `validation_split`.
            run_dir: the run directory (`zoo.runs`); fit again with the same `run_dir` after an interruption and it
                resumes after the last finished epoch. None: a temporary directory.
            stages: called as stages(name, **details) when a stage starts (caching, training), for progress.
            shared_run_dir: multi-worker tasks other than the chief: the chief's run directory (resume from it).
        """
        inputs.refuse("fit", refused)
        if batch_size is not None:
            self.training_settings = dataclasses.replace(self.training_settings, batch_size=int(batch_size))
        train = inputs.texts_and_labels("fit", x, y, None, None, with_labels=True)
        validation = None if validation_data is None else inputs.validation_texts_and_labels(validation_data)
        if self.class_names is None:
            self.class_names = inputs.class_names_of(train[1])
        run = training.FitRun(epochs=self.training_settings.epochs if epochs is None else int(epochs), seed=seed,
                              callbacks=tuple(callbacks or ()), class_weight=class_weight, jit_compile=jit_compile,
                              shuffle=shuffle, verbose=verbose, shared_run_dir=shared_run_dir,
                              validation_split=validation_split, **({"stages": stages} if stages else {}))
        history, core = training.fit_classifier(self, train, validation, run_dir, run)
        self._set_core(core)
        self.frozen_prefix = None  # Its layers were the trained core's: a further fit makes the copy's own.
        return history

    def export(self, filepath, format="tf_saved_model", **kwargs):
        """Refused: Keras' own export would save none of what `zoo.export.export_classifier` writes and checks."""
        del format, kwargs
        raise NotImplementedError(
            f"{self.name}.export({str(filepath)!r}, ...) is Keras' generic export, which a TextClassifier does not "
            "use: call zoo.export.export_classifier(classifier, export_dir, model_name), a verified TF Serving one.")

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
        backbones.get(config["backbone"])  # Registers its Keras classes (a fresh process has not imported them).
        for key in ("preprocessor", "core"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
