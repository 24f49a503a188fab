"""The backbone registry: every backbone is a preprocessor layer and a network with a `pooled_output`.

Contract (what makes backbones interchangeable):
- `preprocessor`: a Keras layer, strings `[batch]` in, model inputs out. It runs mapped over tf.data while training
  and inside the exported graph at serving time.
- `network`: a functional Keras model, preprocessor outputs in, a dict out with at least `"pooled_output"`
  (`[batch, features]`).
- `provenance`: where pretrained weights came from, and what they are (recorded in every result file).
- `family`: "transformer", "recurrent" or "bag_of_words"; the trainer picks the optimizer and the dtype policy by it.
- `input_layout(preprocessor)`: what generic code needs to know of the preprocessed inputs (`InputLayout`).
- `frozen_prefix`: optional, a `FrozenPrefix` where only the top of the network trains; the trainer then caches the
  prefix's outputs once and trains the top on them (the saved network is whole). A module with frozen prefixes
  defines `frozen_prefix(network, options, sequence_length)`, so that a trained or loaded network gets its own.
- the preprocessor's state (vocabularies) is written as files by `save_preprocessor(preprocessor, directory)` and
  read back by `load_preprocessor(directory)` of the same module; an export reads it back from those files
  (`serving_preprocessor(directory)`, by default `load_preprocessor`) so vocabularies become SavedModel assets.

Adding a backbone is one module with `build(name, options, sequence_length, train_texts)` (returning
`BackboneParts`), `save_preprocessor`, `load_preprocessor`, `input_layout`, `default_options(name)`,
`default_settings(name)` (the recipe fields it trains with by default) and `FAMILY`, plus one line in `BACKBONES`;
what each budget changes is recipe data (`recipes/budgets.py`; a backbone without an entry there trains one epoch
on a few examples at the tiny budget and its defaults otherwise). A module whose weights may be missing defines
`missing_weights(name)` (the reason, or None); the benchmark skips its recipes then.
A transformer whose network offers what `bert.assemble` reads (MPNet's does) shares BERT's pooling, frozen prefix,
input layout and preprocessor files.
"""

import dataclasses
import importlib
from typing import Callable, Optional


@dataclasses.dataclass
class BackboneParts:
    """What `build` returns: the parts of a backbone, before a head is put on it (not keras-hub's `Backbone`)."""
    name: str
    family: str  # FAMILY of its module.
    preprocessor: object  # A Keras layer: strings [batch] -> model inputs.
    network: object  # A functional Keras model: model inputs -> {"pooled_output": [batch, features], ...}.
    provenance: dict  # Where the weights came from; `pretrained`, `source`, and what the module adds.
    options: dict  # The options it was built with (its defaults merged with the recipe's).
    frozen_prefix: object = None  # A `FrozenPrefix` where only the top of the network trains, else None.


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """What generic code (the input pipeline, serving) needs to know of a backbone's preprocessed inputs.

    - `sequence_length`: the most tokens an input holds; None for inputs that read the whole text (bags of words).
    - `lengths`: for inputs that can be cut to their own length (every input tensor's last axis is the token axis,
      and outputs do not change when trailing padding is cut), a function of the inputs (one example or a batch)
      giving the number of real tokens (int32, over the last axis); None where inputs have a fixed size.
    - `padding_values`: the value each input key is padded with when examples of different lengths are batched
      (keys not named, and inputs that are one tensor, pad with 0).
    - `chunked_serving`: whether serving runs a request batch as length-sorted chunks (`classifier.run_core`),
      each cut to its longest text; else the batch runs whole, cut to its longest text. Chunks suit networks whose
      work follows the tokens (transformers); a recurrent network's follows the time steps, which every chunk pays.
    """
    sequence_length: Optional[int] = None
    lengths: Optional[Callable] = None
    padding_values: dict = dataclasses.field(default_factory=dict)
    chunked_serving: bool = True

    @property
    def variable_length(self):
        return self.lengths is not None


@dataclasses.dataclass
class FrozenPrefix:
    """A network whose bottom is frozen, split in two so that training computes the frozen part once per example:
    `prefix` (preprocessed inputs -> features, a dict; deterministic: run in inference mode) and `top` (features ->
    the network's outputs, at least "pooled_output"). Both are made of the network's own layers, so that
    `top(prefix(x))` is `network(x)` and training `top` trains the network. `layout`: the `InputLayout` of the
    features (cut to their length and bucketed like inputs)."""
    prefix: object
    top: object
    layout: InputLayout


# name -> module implementing the contract above.
BACKBONES = {
    "bert_small": "zoo.backbones.bert",
    "bert_base": "zoo.backbones.bert",
    "minilm_l3": "zoo.backbones.bert",
    "mpnet_base": "zoo.backbones.mpnet",
    "glove_bilstm": "zoo.backbones.glove_bilstm",
    "ngram_linear": "zoo.backbones.ngram_linear",
}


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


def default_settings(name):
    """The recipe fields (`recipes.catalog.FIELDS`) backbone `name` trains with by default: hyperparameters suited
    to the architecture. What a budget changes is recipe data (`recipes/budgets.py`)."""
    return module(name).default_settings(name)


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


def save_preprocessor(name, preprocessor, directory):
    module(name).save_preprocessor(preprocessor, directory)


def load_preprocessor(name, directory):
    return module(name).load_preprocessor(directory)


def frozen_prefix(name, network, options, sequence_length):
    """The `FrozenPrefix` of `network` (a built backbone network: one a classifier trained or was loaded with) that
    backbone `name`'s `options` ask for; None where its module has no frozen prefixes (no `frozen_prefix`)."""
    hook = getattr(module(name), "frozen_prefix", None)
    return hook(network, {**default_options(name), **options}, sequence_length) if hook else None


def input_layout(name, preprocessor):
    return module(name).input_layout(preprocessor)


def missing_weights(name):
    """Why backbone `name` has no pretrained weights here (None when it has them, or needs none)."""
    hook = getattr(module(name), "missing_weights", None)
    return hook(name) if hook else None


def serving_preprocessor(name, directory):
    """The preprocessor an export carries, read from the files `save_preprocessor` wrote, so that vocabularies are
    SavedModel assets rather than graph constants. A module may define `serving_preprocessor(directory)`; by default
    it is `load_preprocessor`."""
    backbone_module = module(name)
    return getattr(backbone_module, "serving_preprocessor", backbone_module.load_preprocessor)(directory)
