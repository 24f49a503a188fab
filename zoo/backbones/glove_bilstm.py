"""GloVe + recurrent stack: TextVectorization, a frozen GloVe embedding, LSTM/GRU layers (bi- or unidirectional).

Exported graphs must run on CPU servers: Keras 3 decides at trace time whether an LSTM/GRU uses cuDNN and bakes
`CudnnRNNV3` into the graph when a GPU is visible, so the layers are built with `use_cudnn=False` by default (the
portable kernel; set `use_cudnn=auto` to train faster on a GPU, and export from a CPU machine).
"""

import keras
import numpy as np

from zoo import pretrained
from zoo.backbones import vectorizer_files

CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


FAMILY = "recurrent"


def default_settings(name):
    """The recipe fields it trains with by default, as the keras-io GloVe example. No length buckets
    (`bucket_width` would allow them): measured on Reuters R8's quick recipe, training took 103 s instead of 163 s,
    but its batches of similar lengths gave macro-F1 0.855 instead of 0.907."""
    del name
    return {"sequence_length": 256, "batch_size": 32, "learning_rate": 2e-3, "epochs": 15, "patience": 3,
            "head_hidden_units": [64], "head_dropout": 0.2}


def default_options(name):
    del name
    return {
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
        "use_cudnn": False,
    }


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


def build(name, options, sequence_length, train_texts):
    from zoo.backbones import BackboneParts

    if options["cell"] not in CELLS:
        raise ValueError(f"Unknown cell {options['cell']!r}. Allowed: {sorted(CELLS)}.")
    if int(options["layers"]) < 1:
        raise ValueError(f"layers must be at least 1, received {options['layers']}.")
    if not train_texts:
        raise ValueError("glove_bilstm needs the training texts to build its vocabulary.")
    vectorizer = _vectorizer(options, sequence_length)
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=256)
    vocabulary = vectorizer.get_vocabulary()

    words, vectors, source = pretrained.load_glove(int(options["glove_dim"]), path=options["glove_path"])
    matrix, hits, misses = embedding_matrix(vocabulary, words, vectors)
    print(f"Converted {hits} words ({misses} misses) of a {len(vocabulary)}-word vocabulary from GloVe "
          f"{options['glove_dim']}d.")

    # Any number of time steps: serving cuts a request to its longest text, and so may training batches
    # (`input_layout`).
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    embedding = keras.layers.Embedding(len(vocabulary), matrix.shape[1], mask_zero=True,
                                       trainable=bool(options["trainable_embeddings"]), name="glove_embedding")
    x = embedding(token_ids)
    cell = CELLS[options["cell"]]
    for i in range(int(options["layers"])):
        last = i == int(options["layers"]) - 1
        layer = cell(int(options["units"]), return_sequences=not last, dropout=float(options["dropout"]),
                     recurrent_dropout=float(options["recurrent_dropout"]), use_cudnn=options["use_cudnn"],
                     name=f"{options['cell']}_{i}")
        if options["bidirectional"]:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{i}")
        x = layer(x)
    network = keras.Model(token_ids, {"pooled_output": x}, name=f"{name}_backbone")
    embedding.set_weights([matrix])  # Set after build: a Constant initializer would put the matrix in the config.

    provenance = {"pretrained": True, **source, "glove_dim": int(options["glove_dim"]),
                  "vocabulary_size": len(vocabulary), "vocabulary_words_in_glove": hits,
                  "vocabulary_words_missing": misses}
    return BackboneParts(name, FAMILY, vectorizer, network, provenance, options)


save_preprocessor = vectorizer_files.save_preprocessor
load_preprocessor = vectorizer_files.load_preprocessor


def input_layout(vectorizer):
    return vectorizer_files.input_layout(vectorizer, masked_recurrent=True)  # Its embedding masks the padding.
