"""What every part of the dataset registry shares: the splits, the dataset and reader types, the error, the
limits and modes."""

import dataclasses
import pathlib

import numpy as np

from zoo import assets
from zoo import text as text_lib

SPLITS = ("train", "validation", "test")
# Fractions of the whole dataset, used where the source has no official split.
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2
# Readers read at most this much of one file or field (a guard on memory); the model cuts a text to its input limit
# (zoo.text.MAX_INPUT_BYTES) where the text enters it.
READ_LIMIT_BYTES = 4 * text_lib.MAX_INPUT_BYTES
BALANCE_MODES = (None, "downsample", "class_weight")
EMAIL_HEADER_MODES = ("subject", "none", "all")


class DatasetError(ValueError):
    """Bad dataset input: names the file (and line) and what is allowed."""


class MissingColumnError(DatasetError):
    """A file lacks a column it was asked to read (the message lists the columns it has)."""


@dataclasses.dataclass
class Split:
    texts: list
    labels: np.ndarray

    def __len__(self):
        return len(self.texts)


@dataclasses.dataclass
class TextDataset:
    """A dataset ready for training: `splits["train" | "validation" | "test"]`, class names, provenance."""

    name: str
    class_names: list
    splits: dict
    source: dict
    variant: str
    stats: dict
    class_weight: dict = None

    @property
    def num_classes(self):
        return len(self.class_names)

    def summary(self):
        """A JSON-ready description: source, variant, split sizes and class counts."""
        splits = {}
        for name, split in self.splits.items():
            counts = np.bincount(split.labels, minlength=self.num_classes)
            splits[name] = {
                "size": len(split),
                "class_counts": {c: int(n) for c, n in zip(self.class_names, counts)},
            }
        return {
            "dataset": self.name,
            "variant": self.variant,
            "source": self.source,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "splits": splits,
            **self.stats,
            **({"class_weight": self.class_weight} if self.class_weight else {}),
        }


@dataclasses.dataclass
class RawData:
    """What a reader returns: texts and label ids per split ("all", or "train"/"test"[/"validation"])."""

    splits: dict
    class_names: list
    variant: str
    decode: dict = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    asset: assets.Asset
    reader: object
    description: str
    default_options: dict = dataclasses.field(default_factory=dict)


def find_dir(root, predicate, what):
    root = pathlib.Path(root)
    candidates = [root] + sorted(p for p in root.rglob("*") if p.is_dir())
    for candidate in candidates:
        if predicate(candidate):
            return candidate
    raise DatasetError(f"Could not find {what} under {root}.")


def find_file(root, name):
    root = pathlib.Path(root)
    if root.is_file():
        return root
    matches = sorted(root.rglob(name))
    if not matches:
        raise DatasetError(f"Could not find a file named {name!r} under {root}.")
    return matches[0]


def read_bytes(path, decoder):
    with open(path, "rb") as f:
        data = f.read(READ_LIMIT_BYTES)
    return decoder.decode(data, where=str(path))
