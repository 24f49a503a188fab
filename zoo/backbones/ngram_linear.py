"""Bag of uni- and bi-grams, TF-IDF weighted and L2-normalised: the fast, strong linear baseline.

The preprocessor is a TextVectorization that counts n-grams (output_mode="count"); the network turns counts into
TF-IDF (sublinear tf by default, as scikit-learn's `sublinear_tf=True`) and L2-normalises, so the head on top is a
logistic regression that exports like every other backbone.

Why counts in the preprocessor and IDF in the network, rather than TextVectorization(output_mode="tf_idf"): Keras
takes a tf_idf vocabulary only as a list, which an export embeds as graph constants; a count vocabulary can be a
file, so the export carries it as a SavedModel asset, and the IDF is a stored weight like any other.
"""

import keras
import numpy as np

from zoo.backbones import vectorizer_files


FAMILY = "bag_of_words"


def default_options(name):
    del name
    return {
        "max_tokens": 200000,
        "ngrams": 2,
        "standardize": "lower_and_strip_punctuation",
        "sublinear_tf": True,
        "dropout": 0.0,
    }


@keras.saving.register_keras_serializable(package="textzoo")
class TfIdf(keras.layers.Layer):
    """n-gram counts -> TF-IDF: counts (or 1 + log(count) with `sublinear_tf`) times the stored IDF weights."""

    def __init__(self, vocabulary_size, sublinear_tf=True, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.sublinear_tf = bool(sublinear_tf)
        self.idf = self.add_weight(shape=(self.vocabulary_size,), initializer="ones", trainable=False, name="idf")

    def call(self, counts):
        if self.sublinear_tf:
            counts = keras.ops.where(counts > 0, 1.0 + keras.ops.log(keras.ops.maximum(counts, 1.0)), 0.0)
        return counts * keras.ops.cast(self.idf, counts.dtype)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "sublinear_tf": self.sublinear_tf}


def _vectorizer(options, vocabulary=None, output_mode="count"):
    return keras.layers.TextVectorization(
        max_tokens=options["max_tokens"],
        standardize=vectorizer_files.standardize_argument(options["standardize"]),
        ngrams=int(options["ngrams"]),
        output_mode=output_mode,
        vocabulary=vocabulary,
        name="text_vectorization",
    )


def build(name, options, sequence_length, train_texts):
    del sequence_length  # A bag of n-grams reads the whole text.
    from zoo.backbones import Backbone

    if not train_texts:
        raise ValueError("ngram_linear needs the training texts to build its vocabulary.")
    # Adapting in tf_idf mode gives the vocabulary and the IDF of the train split in one pass.
    adapted = _vectorizer(options, output_mode="tf_idf")
    adapted.adapt(np.asarray(train_texts, dtype=object), batch_size=256)
    vocabulary = adapted.get_vocabulary(include_special_tokens=False)
    idf = adapted._lookup_layer.idf_weights.numpy()  # Includes the [UNK] slot, like the count outputs.
    vectorizer = _vectorizer(options, vocabulary=vocabulary)
    size = vectorizer.vocabulary_size()

    counts = keras.Input(shape=(size,), dtype="float32", name="counts")
    tf_idf = TfIdf(size, sublinear_tf=options["sublinear_tf"], name="tf_idf")
    x = keras.layers.UnitNormalization(name="l2_normalize")(tf_idf(counts))
    tf_idf.set_weights([idf.astype(np.float32)])
    if options["dropout"]:
        x = keras.layers.Dropout(float(options["dropout"]))(x)
    network = keras.Model(counts, {"pooled_output": x}, name=f"{name}_backbone")
    weights = {"pretrained": False, "source": "none (TF-IDF vocabulary adapted on the train split)",
               "vocabulary_size": size}

    def save_preprocessor(directory):
        vectorizer_files.save(vectorizer, options, None, directory)

    return Backbone(name, FAMILY, vectorizer, network, weights, options, save_preprocessor)


def load_preprocessor(directory):
    config, vocabulary_file = vectorizer_files.read(directory)
    if config["output_mode"] != "count":
        raise ValueError(f"{directory} holds a {config['output_mode']!r} n-gram vectorizer written by an older "
                         "version (this one reads 'count' vectorizers); train the recipe again.")
    return _vectorizer(config["options"], vocabulary=vocabulary_file)
