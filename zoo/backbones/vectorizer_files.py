"""A TextVectorization's state as plain files (config.json, vocabulary.txt, idf.npy), read back without Keras
serialisation: the run directory stays readable by any tool."""

import json
import pathlib

import numpy as np

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")


def standardize_argument(value):
    """The TextVectorization `standardize` argument for an option value, checked."""
    if value not in STANDARDIZE:
        raise ValueError(f"Unknown standardize {value!r}. Allowed: {list(STANDARDIZE)}.")
    return None if value == "none" else value


def save(vectorizer, options, sequence_length, directory, idf_weights=None):
    """Writes a TextVectorization's state as plain files: config.json, vocabulary.txt (and idf.npy)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocabulary = vectorizer.get_vocabulary(include_special_tokens=False)
    (directory / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    config = {"options": options, "sequence_length": sequence_length,
              "output_mode": vectorizer.get_config()["output_mode"], "vocabulary_size": len(vocabulary)}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    if idf_weights is not None:
        np.save(directory / "idf.npy", np.asarray(idf_weights, dtype=np.float32))


def read(directory):
    directory = pathlib.Path(directory)
    config = json.loads((directory / "config.json").read_text())
    vocabulary = (directory / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:config["vocabulary_size"]]
    idf = np.load(directory / "idf.npy") if (directory / "idf.npy").exists() else None
    return config, vocabulary, idf
