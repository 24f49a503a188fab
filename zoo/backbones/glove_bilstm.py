"""GloVe + recurrent stack: TextVectorization, a frozen GloVe embedding, LSTM/GRU layers (bi- or unidirectional).

On a GPU the recurrent layers train with cuDNN (`use_cudnn="auto"`, Keras' choice where its conditions hold:
no recurrent dropout, right-padded inputs). Keras decides at trace time and bakes `CudnnRNNV3` into a graph traced
where a GPU is visible, which CPU servers cannot run: what ships is a copy with `use_cudnn=False`
(`zoo.classifier.computing_in`), the same weights (Keras' cuDNN and generic LSTM/GRU share their layout).
"""

import keras
import keras_hub
import numpy as np

from zoo import pretrained
from zoo.backbones import BackboneParts
from zoo.backbones import vectorizer_files

CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _vectorizer(options, sequence_length):
    return keras.layers.TextVectorization(
        max_tokens=options["max_tokens"],
        standardize=vectorizer_files.standardize_argument(options["standardize"]),
        output_mode="int",
        output_sequence_length=sequence_length,
        name="text_vectorization",
    )


def embedding_matrix(vocabulary, words, vectors):
    """Rows of `vectors` for `vocabulary` (index 0 padding, 1 [UNK] stay zero); returns (matrix, hits, misses)."""
    index = {w: i for i, w in enumerate(words)}
    matrix = np.zeros((len(vocabulary), vectors.shape[1]), dtype=np.float32)
    hits = 0
    for i, word in enumerate(vocabulary[2:], start=2):
        row = index.get(word)
        if row is not None:
            matrix[i] = vectors[row]
            hits += 1
    return matrix, hits, len(vocabulary) - 2 - hits


def _check_architecture(cell, layers):
    if cell not in CELLS:
        raise ValueError(f"Unknown cell {cell!r}. Allowed: {sorted(CELLS)}.")
    if int(layers) < 1:
        raise ValueError(f"layers must be at least 1, received {layers}.")


@keras.saving.register_keras_serializable(package="textzoo")
class GloveBiLSTMBackbone(keras_hub.models.Backbone):
    """Token ids -> {"pooled_output": the last recurrent layer's final state}: a word embedding (GloVe's vectors,
    frozen unless `trainable_embeddings`) masking the padding (id 0), then `num_layers` LSTM or GRU layers, each
    bidirectional or not. Any number of time steps: serving cuts a request to its longest text, and so may training
    batches (`input_layout`).

    Args:
        vocabulary_size: int. Rows of the embedding (the vectorizer's vocabulary, padding and [UNK] included).
        embedding_dim: int. Width of the word vectors.
        cell: str. "lstm" or "gru".
        num_layers: int. Recurrent layers.
        units: int. Units of each direction of each layer.
        bidirectional: bool.
        dropout: float. Input dropout of every recurrent layer; `recurrent_dropout` of its state.
        trainable_embeddings: bool. Fine-tune the word vectors.
        use_cudnn: bool or "auto". Keras' choice of kernel; False traces a graph every CPU server runs.
        dtype: the dtype policy of its layers (a keras-hub `Backbone`: saved with it).
    """

    def __init__(self, vocabulary_size, embedding_dim, cell="lstm", num_layers=1, units=64, bidirectional=True,
                 dropout=0.0, recurrent_dropout=0.0, trainable_embeddings=False, use_cudnn=False, dtype=None,
                 **kwargs):
        _check_architecture(cell, num_layers)
        # === Layers and functional model === (each recurrent layer made and called in turn: their random
        # initialisation draws in that order)
        token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
        x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, trainable=trainable_embeddings,
                                   dtype=dtype, name="glove_embedding")(token_ids)
        for i in range(num_layers):
            layer = CELLS[cell](units, return_sequences=i < num_layers - 1, dropout=dropout,
                                recurrent_dropout=recurrent_dropout, use_cudnn=use_cudnn, dtype=dtype,
                                name=f"{cell}_{i}")
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, dtype=dtype, name=f"bidirectional_{i}")
            x = layer(x)
        super().__init__(inputs=token_ids, outputs={"pooled_output": x}, dtype=dtype, **kwargs)
        # === Config ===
        self.vocabulary_size, self.embedding_dim, self.cell = int(vocabulary_size), int(embedding_dim), cell
        self.num_layers, self.units, self.bidirectional = int(num_layers), int(units), bool(bidirectional)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.trainable_embeddings, self.use_cudnn = bool(trainable_embeddings), use_cudnn

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim, "cell": self.cell, "num_layers": self.num_layers,
                "units": self.units, "bidirectional": self.bidirectional, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout, "trainable_embeddings": self.trainable_embeddings,
                "use_cudnn": self.use_cudnn}


class GloveRecurrent(vectorizer_files.VectorizerBackbone):
    """Token ids (a TextVectorization) -> `GloveBiLSTMBackbone`: frozen GloVe vectors, a recurrent stack."""
    family = "recurrent"
    masked_recurrent = True  # Its embedding masks the padding (`vectorizer_files.input_layout`).
    # As the keras-io GloVe example. No length buckets (`bucket_width` would allow them): faster, but batches of
    # similar lengths cost macro-F1 (docs/measurements.md#glove-no-buckets).
    DEFAULT_SETTINGS = {"sequence_length": 256, "batch_size": 32, "learning_rate": 2e-3, "epochs": 15, "patience": 3,
                        "head_hidden_units": [64], "head_dropout": 0.2}
    DEFAULT_OPTIONS = {
        "glove_dim": 50,
        "glove_path": None,
        "max_tokens": 20000,
        "standardize": "lower_and_strip_punctuation",
        "cell": "lstm",
        "layers": 1,
        "bidirectional": True,
        "units": 64,
        "dropout": 0.2,
        "recurrent_dropout": 0.0,
        "trainable_embeddings": False,
        # Keras' kernel choice while training: "auto" takes cuDNN on a GPU; exports never do (module docstring).
        "use_cudnn": "auto",
    }

    def build(self, options, sequence_length, train_texts):
        _check_architecture(options["cell"], options["layers"])  # Before the vocabulary is adapted and GloVe read.
        if not train_texts:
            raise ValueError("glove_bilstm needs the training texts to build its vocabulary.")
        vectorizer = _vectorizer(options, sequence_length)
        vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=256)
        vocabulary = vectorizer.get_vocabulary()

        words, vectors, source = pretrained.load_glove(int(options["glove_dim"]), path=options["glove_path"])
        matrix, hits, misses = embedding_matrix(vocabulary, words, vectors)
        print(f"Converted {hits} words ({misses} misses) of a {len(vocabulary)}-word vocabulary from GloVe "
              f"{options['glove_dim']}d.")

        network = GloveBiLSTMBackbone(
            len(vocabulary), matrix.shape[1], cell=options["cell"], num_layers=int(options["layers"]),
            units=int(options["units"]), bidirectional=bool(options["bidirectional"]),
            dropout=float(options["dropout"]), recurrent_dropout=float(options["recurrent_dropout"]),
            trainable_embeddings=bool(options["trainable_embeddings"]), use_cudnn=options["use_cudnn"],
            name=f"{self.name}_backbone")
        # Set after build: a Constant initializer would put the matrix in the config.
        network.get_layer("glove_embedding").set_weights([matrix])

        provenance = {"pretrained": True, **source, "glove_dim": int(options["glove_dim"]),
                      "vocabulary_size": len(vocabulary), "vocabulary_words_in_glove": hits,
                      "vocabulary_words_missing": misses}
        return BackboneParts(self.name, self.family, vectorizer, network, provenance, options)
