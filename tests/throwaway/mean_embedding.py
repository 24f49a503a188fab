"""A throwaway backbone, the mean of trainable word embeddings, that tests/test_catalog.py registers with one line to
show that adding a backbone is this file plus that line. It is not in the registry."""

import keras

from zoo.backbones import BackboneParts
from zoo.backbones import vectorizer_files


@keras.saving.register_keras_serializable(package="textzoo")
class MeanEmbeddingBackbone(keras.Model):
    """Token ids -> {"pooled_output": the mean of their embeddings}."""

    def __init__(self, vocabulary_size, sequence_length, dim, **kwargs):
        token_ids = keras.Input(shape=(sequence_length,), dtype="int64", name="token_ids")
        # Unmasked: padding positions count too, but an empty text (all padding) still gives a finite mean.
        embedded = keras.layers.Embedding(vocabulary_size, dim, name="embedding")(token_ids)
        super().__init__(token_ids, {"pooled_output": keras.layers.GlobalAveragePooling1D(name="mean")(embedded)},
                         **kwargs)
        self.vocabulary_size, self.sequence_length, self.dim = vocabulary_size, sequence_length, dim

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length, "dim": self.dim}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MeanEmbedding(vectorizer_files.VectorizerBackbone):
    family = "bag_of_words"
    DEFAULT_OPTIONS = {"max_tokens": 2000, "dim": 16}
    DEFAULT_SETTINGS = {"sequence_length": 64, "batch_size": 32, "learning_rate": 0.01, "epochs": 5, "patience": 2}

    def build(self, options, sequence_length, train_texts):
        vectorizer = keras.layers.TextVectorization(max_tokens=options["max_tokens"],
                                                    output_sequence_length=sequence_length, name="text_vectorization")
        vectorizer.adapt(list(train_texts))
        network = MeanEmbeddingBackbone(vectorizer.vocabulary_size(), sequence_length, options["dim"])
        return BackboneParts(self.name, self.family, vectorizer, network, {"source": "none", "pretrained": False},
                             options)
