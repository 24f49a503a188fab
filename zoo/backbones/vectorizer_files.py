"""A TextVectorization's state as plain files (config.json, vocabulary.txt), read back without Keras serialisation:
the run directory stays readable by any tool, and the layer read back takes its vocabulary from the file (a lookup
table initialised from a file, which a SavedModel export carries as an asset instead of graph constants)."""

import json
import pathlib

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")


def standardize_argument(value):
    """The TextVectorization `standardize` argument for an option value, checked."""
    if value not in STANDARDIZE:
        raise ValueError(f"Unknown standardize {value!r}. Allowed: {list(STANDARDIZE)}.")
    return None if value == "none" else value


def save(vectorizer, options, sequence_length, directory):
    """Writes a TextVectorization's state: config.json and vocabulary.txt (one token per line, no special tokens)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocabulary = vectorizer.get_vocabulary(include_special_tokens=False)
    # Tokens come from splitting on whitespace, so none holds a newline: one token per line is lossless.
    (directory / "vocabulary.txt").write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")
    config = {"options": options, "sequence_length": sequence_length,
              "output_mode": vectorizer.get_config()["output_mode"], "sparse": vectorizer.get_config()["sparse"],
              "vocabulary_size": len(vocabulary)}
    (directory / "config.json").write_text(json.dumps(config, indent=2))


def read(directory):
    """Returns (config, path of vocabulary.txt), checking that the file holds the vocabulary config.json counts."""
    directory = pathlib.Path(directory)
    for name in ("config.json", "vocabulary.txt"):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory} is not a saved vectorizer: {name} is missing.")
    config = json.loads((directory / "config.json").read_text())
    vocabulary = directory / "vocabulary.txt"
    with open(vocabulary, encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    if lines != config["vocabulary_size"]:
        raise ValueError(f"{vocabulary} has {lines} lines; config.json says the vocabulary has "
                         f"{config['vocabulary_size']} tokens.")
    return config, str(vocabulary)
