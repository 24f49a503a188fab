"""A throwaway backbone, the mean of trainable word embeddings, that tests/test_catalog.py registers with one line to
show that adding a backbone is this file plus that line. It is not in the registry."""

import keras

from zoo.backbones import TINY_DATA
from zoo.backbones import vectorizer_files

FAMILY = "bag_of_words"


def default_options(name):
    del name
    return {"max_tokens": 2000, "dim": 16}


def recipe_settings(name):
    del name
    return {"settings": {"sequence_length": 64, "batch_size": 32, "learning_rate": 0.01, "epochs": 5, "patience": 2},
            "budgets": {"tiny": {"epochs": 1, "max_examples": TINY_DATA}, "quick": {}, "full": {}}}


def _vectorizer(options, sequence_length, vocabulary=None):
    return keras.layers.TextVectorization(max_tokens=options["max_tokens"], output_sequence_length=sequence_length,
                                          vocabulary=vocabulary, name="text_vectorization")


def build(name, options, sequence_length, train_texts):
    from zoo.backbones import Backbone

    vectorizer = _vectorizer(options, sequence_length)
    vectorizer.adapt(list(train_texts))
    token_ids = keras.Input(shape=(sequence_length,), dtype="int64", name="token_ids")
    # Unmasked: padding positions count too, but an empty text (all padding) still gives a finite mean.
    embedded = keras.layers.Embedding(vectorizer.vocabulary_size(), options["dim"])(token_ids)
    network = keras.Model(token_ids, {"pooled_output": keras.layers.GlobalAveragePooling1D()(embedded)})

    def save_preprocessor(directory):
        vectorizer_files.save(vectorizer, options, sequence_length, directory)

    return Backbone(name, FAMILY, vectorizer, network, {"source": "none", "pretrained": False}, options,
                    save_preprocessor)


def load_preprocessor(directory):
    config, vocabulary_file = vectorizer_files.read(directory)
    return _vectorizer(config["options"], config["sequence_length"], vocabulary=vocabulary_file)
