"""A TextVectorization's state as plain files (config.json, vocabulary.txt), read back without Keras serialisation:
the run directory stays readable by any tool, and the layer read back takes its vocabulary from the file (a lookup
table initialised from a file, which a SavedModel export carries as an asset instead of graph constants).

Shared by the backbones whose preprocessor is a TextVectorization (`VectorizerBackbone`, their base class): their
preprocessor's files, the export's vocabulary asset and their `input_layout` (GloVe's says its padding is
masked)."""

import json
import pathlib

import keras
import tensorflow as tf

from zoo.backbones import Backbone
from zoo.backbones import InputLayout

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "lower_unicode", "strip_punctuation", "none")
SPLIT = ("whitespace", "words")


@keras.saving.register_keras_serializable(package="textzoo")
def lower_unicode(texts):
    """Every letter lowercased, as Python's str.lower (Keras' "lower" lowercases ASCII only: "École" stays)."""
    return tf.strings.lower(texts, encoding="utf-8")


@keras.saving.register_keras_serializable(package="textzoo")
def words(texts):
    r"""scikit-learn's default tokens (`token_pattern=r"(?u)\b\w\w+\b"`): runs of two or more letters, digits or
    underscores; everything else separates, one-character runs are dropped. [batch] strings -> ragged tokens.
    Written as core string ops (RE2 has no findall) so that any TF Serving runs it."""
    tokens = tf.strings.split(tf.strings.regex_replace(texts, r"[^\pL\pN_]+", " "))
    return tf.ragged.boolean_mask(tokens, tf.strings.length(tokens, unit="UTF8_CHAR") >= 2)


# The layer's own config, less what is the vocabulary (a file beside it) or not an argument of the constructor.
_NOT_SAVED = ("name", "trainable", "dtype", "vocabulary", "idf_weights", "vocabulary_size")


def standardize_argument(value):
    """The TextVectorization `standardize` argument for an option value, checked."""
    if value not in STANDARDIZE:
        raise ValueError(f"Unknown standardize {value!r}. Allowed: {list(STANDARDIZE)}.")
    return {"none": None, "lower_unicode": lower_unicode}.get(value, value)


def split_argument(value):
    """The TextVectorization `split` argument for an option value, checked: "whitespace" (Keras') or "words"
    (`words`, scikit-learn's tokens)."""
    if value not in SPLIT:
        raise ValueError(f"Unknown split {value!r}. Allowed: {list(SPLIT)}.")
    return words if value == "words" else value


def _write_vocabulary(vectorizer, directory):
    """Writes vocabulary.txt (one token per line, no special tokens) into `directory`; returns (path, size)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocabulary = vectorizer.get_vocabulary(include_special_tokens=False)
    # Tokens come from splitting on whitespace, so none holds a newline: one token per line is lossless.
    (directory / "vocabulary.txt").write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")
    return directory / "vocabulary.txt", len(vocabulary)


def _with_vocabulary_file(arguments, vocabulary):
    """A TextVectorization of constructor `arguments` whose lookup table reads the file `vocabulary`."""
    return keras.layers.TextVectorization(**arguments, vocabulary=str(vocabulary), name="text_vectorization")


def _arguments(vectorizer):
    """The layer's constructor arguments, less what is the vocabulary (a file) or not an argument."""
    return {k: v for k, v in vectorizer.get_config().items() if k not in _NOT_SAVED}


def _json_arguments(vectorizer):
    """`_arguments` as JSON: a function (`words`) by its Keras registration, as the layer's own saving writes it."""
    plain = (str, int, float, bool, list, tuple, type(None))
    return {k: v if isinstance(v, plain) else keras.saving.serialize_keras_object(v)
            for k, v in _arguments(vectorizer).items()}


def _from_json_arguments(arguments):
    return {k: keras.saving.deserialize_keras_object(v) if k in ("split", "standardize") and isinstance(v, dict)
            else v for k, v in arguments.items()}


def save_preprocessor(vectorizer, directory):
    """Writes a TextVectorization's state: config.json (its constructor arguments) and vocabulary.txt."""
    _, size = _write_vocabulary(vectorizer, directory)
    config = {"text_vectorization": _json_arguments(vectorizer), "vocabulary_size": size}
    (pathlib.Path(directory) / "config.json").write_text(json.dumps(config, indent=2))


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
    return _with_vocabulary_file(_from_json_arguments(config["text_vectorization"]), vocabulary)


def serving_preprocessor(vectorizer, directory):
    """`vectorizer` as an export carries it: the same layer, its lookup table reading vocabulary.txt written into
    `directory` (a SavedModel asset)."""
    vocabulary, _ = _write_vocabulary(vectorizer, directory)
    return _with_vocabulary_file(_arguments(vectorizer), vocabulary)


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


class VectorizerBackbone(Backbone):
    """A backbone whose preprocessor is a TextVectorization: its files and export asset are this module's.
    `masked_recurrent`: see `input_layout`."""
    masked_recurrent = False

    def input_layout(self, preprocessor):
        return input_layout(preprocessor, masked_recurrent=self.masked_recurrent)

    def save_preprocessor(self, preprocessor, directory):
        save_preprocessor(preprocessor, directory)

    def load_preprocessor(self, directory):
        return load_preprocessor(directory)

    def serving_preprocessor(self, preprocessor, directory):
        return serving_preprocessor(preprocessor, directory)
