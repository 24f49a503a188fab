"""The backbone registry: every backbone is a preprocessor layer and a network with a `pooled_output`.

Contract (what makes backbones interchangeable):
- `preprocessor`: a Keras layer, strings `[batch]` in, model inputs out. It runs mapped over tf.data while training
  and inside the exported graph at serving time.
- `network`: a functional Keras model, preprocessor outputs in, a dict out with at least `"pooled_output"`
  (`[batch, features]`).
- `weights`: where pretrained weights came from (recorded in every result file).
- `family`: "transformer", "recurrent" or "bag_of_words"; the trainer picks the optimizer by it.
- the preprocessor's state (vocabularies) is saved as files by `save_preprocessor` and read back by
  `load_preprocessor` of the same module.

- an export reads the preprocessor back from those files (`serving_preprocessor`, by default `load_preprocessor`)
  so vocabularies become SavedModel assets.

Adding a backbone is one module with `build(name, options, sequence_length, train_texts)`,
`load_preprocessor(directory)`, `default_options(name)`, `recipe_settings(name)` (its training settings and what
each budget changes: the catalog, the tests and the benchmark take them from there) and `FAMILY`, plus one line in
`BACKBONES`.
"""

import dataclasses
import importlib


@dataclasses.dataclass
class Backbone:
    name: str
    family: str
    preprocessor: object
    network: object
    weights: dict
    options: dict
    save_preprocessor: object  # callable(directory)


# name -> module implementing the contract above.
BACKBONES = {
    "bert_small": "zoo.backbones.bert",
    "bert_base": "zoo.backbones.bert",
    "glove_bilstm": "zoo.backbones.glove_bilstm",
    "ngram_linear": "zoo.backbones.ngram_linear",
}


# The data of every backbone's `tiny` budget (seconds; the tests run it).
TINY_DATA = {"train": 64, "validation": 32, "test": 32}


def names():
    return sorted(BACKBONES)


def module(name):
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}. Allowed: {names()}.")
    return importlib.import_module(BACKBONES[name])


def default_options(name):
    return dict(module(name).default_options(name))


def family(name):
    return module(name).FAMILY


def recipe_settings(name):
    """{"settings": recipe fields, "budgets": {"tiny" | "quick" | "full": fields that budget changes}}."""
    return module(name).recipe_settings(name)


def check_options(name, options):
    """Rejects option keys the backbone does not know, naming the allowed ones."""
    allowed = default_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown options {unknown} for backbone {name!r}. Allowed: {sorted(allowed)}.")


def build(name, options=None, sequence_length=None, train_texts=None):
    """Builds backbone `name` with `options` (merged over its defaults); adapts vocabularies on `train_texts`."""
    options = dict(options or {})
    check_options(name, options)
    return module(name).build(name, {**default_options(name), **options}, sequence_length, train_texts)


def load_preprocessor(name, directory):
    return module(name).load_preprocessor(directory)


def serving_preprocessor(name, directory):
    """The preprocessor an export carries, read from the files `save_preprocessor` wrote, so that vocabularies are
    SavedModel assets rather than graph constants. A module may define `serving_preprocessor(directory)`; by default
    it is `load_preprocessor`."""
    backbone_module = module(name)
    return getattr(backbone_module, "serving_preprocessor", backbone_module.load_preprocessor)(directory)
