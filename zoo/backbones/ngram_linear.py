"""Bag of uni- and bi-grams, TF-IDF weighted and L2-normalised: the fast, strong linear baseline.

TextVectorization(output_mode="tf_idf") does the counting and IDF weighting inside the graph; the network only
L2-normalises (as scikit-learn's TfidfVectorizer does), so the head on top is a logistic regression (NBSVM-class
accuracy) that exports like every other backbone.
"""

import keras
import numpy as np

from zoo.backbones import vectorizer_files


FAMILY = "bag_of_words"


def default_options(name):
    del name
    return {
        "max_tokens": 50000,
        "ngrams": 2,
        "standardize": "lower_and_strip_punctuation",
        "dropout": 0.0,
    }


def _vectorizer(options, vocabulary=None, idf_weights=None):
    return keras.layers.TextVectorization(
        max_tokens=options["max_tokens"],
        standardize=vectorizer_files.standardize_argument(options["standardize"]),
        ngrams=int(options["ngrams"]),
        output_mode="tf_idf",
        vocabulary=vocabulary,
        idf_weights=idf_weights,
        name="text_vectorization",
    )


def build(name, options, sequence_length, train_texts):
    del sequence_length  # A bag of n-grams reads the whole text.
    from zoo.backbones import Backbone

    if not train_texts:
        raise ValueError("ngram_linear needs the training texts to build its vocabulary.")
    vectorizer = _vectorizer(options)
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=256)
    # idf of the vocabulary without the [UNK] slot, the form `TextVectorization(idf_weights=...)` takes back.
    idf = vectorizer._lookup_layer.idf_weights.numpy()[1:]
    size = vectorizer.vocabulary_size()

    features = keras.Input(shape=(size,), dtype="float32", name="tf_idf")
    x = keras.layers.UnitNormalization(name="l2_normalize")(features)
    if options["dropout"]:
        x = keras.layers.Dropout(float(options["dropout"]))(x)
    network = keras.Model(features, {"pooled_output": x}, name=f"{name}_backbone")
    weights = {"pretrained": False, "source": "none (TF-IDF vocabulary adapted on the train split)",
               "vocabulary_size": size}

    def save_preprocessor(directory):
        vectorizer_files.save(vectorizer, options, None, directory, idf_weights=idf)

    return Backbone(name, FAMILY, vectorizer, network, weights, options, save_preprocessor)


def load_preprocessor(directory):
    config, vocabulary, idf = vectorizer_files.read(directory)
    return _vectorizer(config["options"], vocabulary=vocabulary, idf_weights=idf)
