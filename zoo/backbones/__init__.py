"""The backbone registry: every backbone is a preprocessor layer and a network with a `pooled_output`.

Each registered name is a `Backbone`: a class whose methods are the contract that makes backbones interchangeable,
whose defaults are data, and whose Keras layers (networks, tokenizers, kernels) live in its own module, as in
keras-hub's model families.
- `build(options, sequence_length, train_texts)` -> `BackboneParts`: `preprocessor` (a Keras layer, strings
  `[batch]` in, model inputs out; mapped over tf.data while training, inside the exported graph when serving),
  `network` (a functional Keras model, preprocessor outputs in, a dict out with at least `"pooled_output"`,
  `[batch, features]`), `provenance` (where pretrained weights came from, recorded in every result file) and
  `frozen_prefix`.
- `family`: "transformer", "recurrent" or "bag_of_words"; the trainer picks the optimizer and the dtype policy by it.
- `input_layout(preprocessor)`: what generic code needs to know of the preprocessed inputs (`InputLayout`).
- `frozen_prefix(network, options, sequence_length)`: a `FrozenPrefix` where only the top of the network trains
  (the trainer caches the prefix's outputs once and trains the top on them), for a built, trained or loaded
  network; None (the default) where every layer trains.
- `save_preprocessor(preprocessor, directory)` / `load_preprocessor(directory)`: the preprocessor's state as files;
  `serving_preprocessor(preprocessor, directory)`: the preprocessor an export carries, its vocabularies as files in
  `directory` (SavedModel assets rather than graph constants).
- `missing_weights()`: why no pretrained weights can be had here (None, the default, when they can, or none are
  needed); the benchmark skips the backbone's recipes then.
- `default_options()`, `default_settings()`: its options and the recipe fields it trains with by default.

Adding a backbone is one module with a `Backbone` subclass plus one line in `BACKBONES`; what each budget changes
is recipe data (`recipes/budgets.py`; a backbone without an entry there trains one epoch on a few examples at the
tiny budget and its defaults otherwise).
"""

import copy
import dataclasses
import functools
import importlib
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:  # Annotations only: the registry imports no TensorFlow.
    import keras


@dataclasses.dataclass
class BackboneParts:
    """What `build` returns: the parts of a backbone, before a head is put on it (not keras-hub's `Backbone`)."""
    name: str
    family: str  # Its `Backbone.family`.
    preprocessor: "keras.layers.Layer"  # Strings [batch] -> model inputs.
    network: "keras.Model"  # Functional: model inputs -> {"pooled_output": [batch, features], ...}.
    provenance: dict  # Where the weights came from; `pretrained`, `source`, and what the backbone adds.
    options: dict  # The options it was built with (its defaults merged with the recipe's).
    frozen_prefix: Optional["FrozenPrefix"] = None  # Where only the top of the network trains.


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


class Backbone:
    """A registered backbone (the module docstring gives the contract). Subclasses set `family` and their defaults
    as data (`DEFAULT_OPTIONS`, `DEFAULT_SETTINGS`, or per name by overriding `default_options`/`default_settings`)
    and define `build`, `input_layout` and the preprocessor's persistence; the rest have defaults."""
    family = None
    DEFAULT_OPTIONS = {}
    DEFAULT_SETTINGS = {}

    def __init__(self, name):
        self.name = name

    def default_options(self):
        return copy.deepcopy(self.DEFAULT_OPTIONS)

    def default_settings(self):
        """The recipe fields (`recipes.catalog.FIELDS`) it trains with by default: hyperparameters suited to the
        architecture. What a budget changes is recipe data (`recipes/budgets.py`)."""
        return copy.deepcopy(self.DEFAULT_SETTINGS)

    def build(self, options, sequence_length, train_texts):
        raise NotImplementedError(f"{type(self).__name__}.build")

    def input_layout(self, preprocessor):
        raise NotImplementedError(f"{type(self).__name__}.input_layout")

    def save_preprocessor(self, preprocessor, directory):
        raise NotImplementedError(f"{type(self).__name__}.save_preprocessor")

    def load_preprocessor(self, directory):
        raise NotImplementedError(f"{type(self).__name__}.load_preprocessor")

    def serving_preprocessor(self, preprocessor, directory):
        raise NotImplementedError(f"{type(self).__name__}.serving_preprocessor")

    def frozen_prefix(self, network, options, sequence_length):
        del network, options, sequence_length
        return None

    def missing_weights(self):
        return None


# name -> "module:class" of its `Backbone`.
BACKBONES = {
    "minilm_l6": "zoo.backbones.bert:Bert",
    "bert_small": "zoo.backbones.bert:Bert",
    "bert_base": "zoo.backbones.bert:Bert",
    "minilm_l3": "zoo.backbones.bert:Bert",
    "mpnet_base": "zoo.backbones.mpnet:MPNet",
    "glove_bilstm": "zoo.backbones.glove_bilstm:GloveRecurrent",
    "ngram_linear": "zoo.backbones.ngram_linear:NgramLinear",
}


def names():
    return sorted(BACKBONES)


def get(name):
    """The registered `Backbone` `name` (its module imported: its Keras classes are then registered too)."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}. Allowed: {names()}.")
    return _instance(BACKBONES[name], name)


@functools.lru_cache(maxsize=None)
def _instance(where, name):
    module, _, cls = where.partition(":")
    return getattr(importlib.import_module(module), cls)(name)


def default_options(name):
    return get(name).default_options()


def family(name):
    return get(name).family


def default_settings(name):
    return get(name).default_settings()


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
    return get(name).build({**default_options(name), **options}, sequence_length, train_texts)


def save_preprocessor(name, preprocessor, directory):
    get(name).save_preprocessor(preprocessor, directory)


def load_preprocessor(name, directory):
    return get(name).load_preprocessor(directory)


def serving_preprocessor(name, preprocessor, directory):
    """The preprocessor an export of backbone `name` carries: `preprocessor`'s, its vocabularies written as files
    into `directory`, so that they become SavedModel assets rather than graph constants."""
    return get(name).serving_preprocessor(preprocessor, directory)


def frozen_prefix(name, network, options, sequence_length):
    """The `FrozenPrefix` of `network` (a built backbone network: one a classifier trained or was loaded with) that
    backbone `name`'s `options` ask for; None where every layer trains."""
    return get(name).frozen_prefix(network, {**default_options(name), **options}, sequence_length)


def input_layout(name, preprocessor):
    return get(name).input_layout(preprocessor)


def missing_weights(name):
    """Why backbone `name` has no pretrained weights here (None when it has them, or needs none)."""
    return get(name).missing_weights()
