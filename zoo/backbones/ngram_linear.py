"""Bag of uni- and bi-grams, TF-IDF weighted and L2-normalised: the fast, strong linear baseline.

The preprocessor is a TextVectorization that counts n-grams (output_mode="count", sparse); the network turns counts
into TF-IDF (sublinear tf by default, as scikit-learn's `sublinear_tf=True`) and L2-normalises, so the head on top is
a logistic regression that exports like every other backbone. By default the features are exactly scikit-learn's
TfidfVectorizer's (its tokens, IDF formula and vocabulary of n-grams; tested), so the TF-IDF + LogisticRegression
reference of the benchmark is this model's twin.

Why counts in the preprocessor and IDF in the network, rather than TextVectorization(output_mode="tf_idf"): Keras
takes a tf_idf vocabulary only as a list, which an export embeds as graph constants; a count vocabulary can be a
file, so the export carries it as a SavedModel asset, and the IDF is a stored weight like any other.
"""

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from zoo import compat
from zoo.backbones import BackboneParts
from zoo.backbones import vectorizer_files


@keras.saving.register_keras_serializable(package="textzoo")
class TfIdf(keras.layers.Layer):
    """n-gram counts -> TF-IDF: counts (or 1 + log(count) with `sublinear_tf`) times the stored IDF weights, then
    optionally L2-normalised per text and dropped out (training only).

    Takes dense or sparse counts. Sparse is the default input: a text has a few hundred distinct n-grams out of a
    vocabulary of up to 200k, and Keras' own UnitNormalization and Dropout take dense tensors only, which made
    every batch a [batch, 200k] matrix (docs/measurements.md#ngram-sparse-tfidf). Written by hand for that reason:
    it computes on the non-zero values only.
    """

    def __init__(self, vocabulary_size, sublinear_tf=True, normalize=False, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.sublinear_tf = bool(sublinear_tf)
        self.normalize = bool(normalize)
        self.dropout = float(dropout)
        self.seed = seed
        self.idf = self.add_weight(shape=(self.vocabulary_size,), initializer="ones", trainable=False, name="idf")
        self.seed_generator = keras.random.SeedGenerator(seed) if self.dropout else None

    def _tf_idf(self, counts, columns=None):
        if self.sublinear_tf:
            counts = tf.where(counts > 0, 1.0 + tf.math.log(tf.maximum(counts, 1.0)), 0.0)
        idf = tf.cast(self.idf, counts.dtype)
        return counts * (idf if columns is None else tf.gather(idf, columns))

    def call(self, counts, training=False):
        if isinstance(counts, tf.SparseTensor):
            rows = counts.indices[:, 0]
            values = self._tf_idf(counts.values, counts.indices[:, 1])
            if self.normalize:
                squares = tf.math.unsorted_segment_sum(tf.square(values), rows, counts.dense_shape[0])
                values = values * tf.gather(tf.math.rsqrt(tf.maximum(squares, 1e-12)), rows)
        else:  # Dense counts: training on several replicas (tf.distribute cannot split sparse batches).
            values = self._tf_idf(counts)
            if self.normalize:
                values = values * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(values), -1, keepdims=True), 1e-12))
        if training and self.dropout:
            values = keras.random.dropout(values, self.dropout, seed=self.seed_generator)
        if isinstance(counts, tf.SparseTensor):
            return tf.SparseTensor(counts.indices, values, counts.dense_shape)
        return values

    def compute_output_spec(self, counts, training=False):
        return keras.KerasTensor(counts.shape, counts.dtype, sparse=getattr(counts, "sparse", False))

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "sublinear_tf": self.sublinear_tf,
                "normalize": self.normalize, "dropout": self.dropout, "seed": self.seed}


@keras.saving.register_keras_serializable(package="textzoo")
class NgramBackbone(keras_hub.models.Backbone):
    """n-gram counts [batch, vocabulary_size] (sparse) -> {"pooled_output": their L2-normalised TF-IDF}, the
    features a linear head reads. The IDF weights are set from the adapted vectorizer (`build`).

    The TF-IDF computes in float32 under every dtype policy: a text's squared weights are summed over its
    hundreds of n-grams (float16 overflows at 65504) and it costs nothing next to the head. A keras-hub `Backbone`,
    so that its dtype policy is saved with it (a functional `keras.Model` takes its layers' from the policy in force
    when it is loaded).

    Args:
        vocabulary_size: int. The vectorizer's n-grams, [UNK] included.
        sublinear_tf: bool. 1 + log(count) instead of the count.
        dropout: float. Dropout of the TF-IDF features while training.
    """

    def __init__(self, vocabulary_size, sublinear_tf=True, dropout=0.0, dtype=None, **kwargs):
        # === Layers ===
        tf_idf = TfIdf(vocabulary_size, sublinear_tf=sublinear_tf, normalize=True, dropout=dropout, dtype="float32",
                       name="tf_idf")
        # === Functional model ===
        counts = keras.Input(shape=(vocabulary_size,), dtype="float32", sparse=True, name="counts")
        super().__init__(inputs=counts, outputs={"pooled_output": tf_idf(counts)}, dtype=dtype, **kwargs)
        # === Config ===
        self.vocabulary_size, self.sublinear_tf, self.dropout = int(vocabulary_size), bool(sublinear_tf), float(dropout)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "sublinear_tf": self.sublinear_tf,
                "dropout": self.dropout}


IDF = ("keras", "sklearn")


def idf_weights(adapted, documents, formula):
    """The IDF weights of a TextVectorization adapted in "tf_idf" mode on `documents` texts ([UNK] slot first) by
    `formula`: "keras" (its own: log(1 + n / (1 + df)), the [UNK] slot weighing the mean) or "sklearn" (the
    TfidfVectorizer's: ln((1 + n) / (1 + df)) + 1, and 0 for the [UNK] slot: n-grams outside the vocabulary are
    dropped). Converted from Keras' weights, which determine df exactly: 1 + df = n / expm1(keras)."""
    if formula not in IDF:
        raise ValueError(f"Unknown idf {formula!r}. Allowed: {list(IDF)}.")
    keras_idf = compat.adapted_idf(adapted).astype(np.float64)
    if formula == "keras":
        return keras_idf
    documents = float(documents)
    idf = np.log1p(documents) - np.log(documents) + np.log(np.expm1(keras_idf)) + 1.0
    idf[0] = 0.0  # The [UNK] slot of a count vectorizer (no mask token in "count" mode).
    return idf


def _vectorizer(options, vocabulary=None, output_mode="count"):
    return keras.layers.TextVectorization(
        sparse=output_mode == "count",
        max_tokens=options["max_tokens"],
        standardize=vectorizer_files.standardize_argument(options["standardize"]),
        split=vectorizer_files.split_argument(options["split"]),
        ngrams=int(options["ngrams"]),
        output_mode=output_mode,
        vocabulary=vocabulary,
        name="text_vectorization",
    )


class NgramLinear(vectorizer_files.VectorizerBackbone):
    """n-gram counts (a TextVectorization) -> `NgramBackbone`'s TF-IDF features."""
    family = "bag_of_words"
    # L2-normalised TF-IDF inputs need large weights: a high learning rate (docs/measurements.md#ngram-learning-rate).
    DEFAULT_SETTINGS = {"sequence_length": None, "batch_size": 32, "learning_rate": 0.05, "epochs": 30, "patience": 3}
    # The head is logistic regression on fixed features: solver=newton-cg solves it to its optimum
    # (`zoo.training.linear_solver`), the inverse L2 penalty C chosen on the validation split from the grid C; adam
    # (the default, as runs trained before the option had) trains it by Keras' fit. The recipes' budgets choose
    # (docs/measurements.md#ngram-solver).
    # Its features are scikit-learn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)'s: its tokens
    # (split=words, standardize=lower_unicode), its IDF, n-grams outside the vocabulary dropped (idf=sklearn).
    # Keras' own (split=whitespace, standardize=lower_and_strip_punctuation, idf=keras) were below the reference
    # on BBC News at every penalty (docs/measurements.md#ngram-features).
    DEFAULT_OPTIONS = {"max_tokens": 200000, "ngrams": 2, "standardize": "lower_unicode", "split": "words",
                       "idf": "sklearn", "sublinear_tf": True, "dropout": 0.0, "solver": "adam",
                       "C": [10.0, 30.0, 100.0, 300.0, 1000.0]}

    def build(self, options, sequence_length, train_texts):
        del sequence_length  # A bag of n-grams reads the whole text.
        if not train_texts:
            raise ValueError("ngram_linear needs the training texts to build its vocabulary.")
        # Adapting in tf_idf mode gives the vocabulary and the IDF of the train split in one pass.
        adapted = _vectorizer(options, output_mode="tf_idf")
        adapted.adapt(np.asarray(train_texts, dtype=object), batch_size=256)
        vocabulary = adapted.get_vocabulary(include_special_tokens=False)
        idf = idf_weights(adapted, len(train_texts), options["idf"])  # [UNK] slot included, as in the counts.
        vectorizer = _vectorizer(options, vocabulary=vocabulary)
        size = vectorizer.vocabulary_size()

        network = NgramBackbone(size, sublinear_tf=options["sublinear_tf"], dropout=options["dropout"],
                                name=f"{self.name}_backbone")
        network.get_layer("tf_idf").set_weights([idf.astype(np.float32)])
        provenance = {"pretrained": False, "source": "none (TF-IDF vocabulary adapted on the train split)",
                      "vocabulary_size": size}
        return BackboneParts(self.name, self.family, vectorizer, network, provenance, options)
