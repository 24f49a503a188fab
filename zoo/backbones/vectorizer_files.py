"""A TextVectorization's state as plain files (config.json, vocabulary.txt), read back without Keras serialisation:
the run directory stays readable by any tool, and the layer read back takes its vocabulary from the file (a lookup
table initialised from a file, which a SavedModel export carries as an asset instead of graph constants).

Shared by the backbones whose preprocessor is a TextVectorization: their `save_preprocessor`, `load_preprocessor`
and `input_layout` are these functions (GloVe's `input_layout` says its padding is masked)."""

import json
import pathlib

import keras
import tensorflow as tf

from zoo.backbones import InputLayout

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")

# The layer's own config, less what is the vocabulary (a file beside it) or not an argument of the constructor.
_NOT_SAVED = ("name", "trainable", "dtype", "vocabulary", "idf_weights", "vocabulary_size")


def standardize_argument(value):
    """The TextVectorization `standardize` argument for an option value, checked."""
    if value not in STANDARDIZE:
        raise ValueError(f"Unknown standardize {value!r}. Allowed: {list(STANDARDIZE)}.")
    return None if value == "none" else value


def save_preprocessor(vectorizer, directory):
    """Writes a TextVectorization's state: config.json (its constructor arguments) and vocabulary.txt (one token
    per line, no special tokens)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocabulary = vectorizer.get_vocabulary(include_special_tokens=False)
    # Tokens come from splitting on whitespace, so none holds a newline: one token per line is lossless.
    (directory / "vocabulary.txt").write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")
    layer = {k: v for k, v in vectorizer.get_config().items() if k not in _NOT_SAVED}
    config = {"text_vectorization": layer, "vocabulary_size": len(vocabulary)}
    (directory / "config.json").write_text(json.dumps(config, indent=2))


def load_preprocessor(directory):
    """The TextVectorization `save_preprocessor` wrote, its vocabulary read from the file."""
    directory = pathlib.Path(directory)
    for name in ("config.json", "vocabulary.txt"):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory} is not a saved vectorizer: {name} is missing.")
    config = json.loads((directory / "config.json").read_text())
    if "text_vectorization" not in config:
        raise ValueError(f"{directory / 'config.json'} was written by an older version of textzoo (keys "
                         f"{sorted(config)}; this version reads 'text_vectorization'): train the recipe again.")
    vocabulary = directory / "vocabulary.txt"
    with open(vocabulary, encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    if lines != config["vocabulary_size"]:
        raise ValueError(f"{vocabulary} has {lines} lines; config.json says the vocabulary has "
                         f"{config['vocabulary_size']} tokens.")
    return keras.layers.TextVectorization(**config["text_vectorization"], vocabulary=str(vocabulary),
                                          name="text_vectorization")


def _token_count(token_ids):
    # Padding (id 0) only follows a text's tokens: out-of-vocabulary words are id 1. An empty text keeps one
    # (masked) step: a recurrent layer needs at least one.
    return tf.maximum(tf.math.count_nonzero(token_ids, axis=-1, dtype=tf.int32), 1)


def input_layout(vectorizer, masked_recurrent=False):
    """Token ids padded to `output_sequence_length` with 0, or counts of the whole text (bags of n-grams).

    `masked_recurrent`: the network masks the padding (`mask_zero`) and reads the ids in time steps, so ids cut to
    their length give the same outputs in fewer steps: they can be length-bucketed in training and are cut to the
    batch's longest text in serving (one chunk: a recurrent network's steps cost the same at any batch size). A
    network that reads the padding (an unmasked mean) must get it: fixed size."""
    config = vectorizer.get_config()
    if not masked_recurrent or config["output_mode"] != "int":
        return InputLayout(sequence_length=config["output_sequence_length"])
    return InputLayout(sequence_length=config["output_sequence_length"], lengths=_token_count, chunked_serving=False)
