"""The recipe catalog: recipes are data.

A recipe pairs a backbone with a dataset and fixes the head and the training hyperparameters. The catalog holds
every backbone with every dataset it makes sense for (all of them: each backbone reads raw text), named
`<backbone>_<dataset>`. `resolve(name, budget, overrides)` gives the full, flat recipe: the field defaults, the
backbone's settings, the budget's settings for that backbone, then the overrides (flags), in that order.

Budgets: `tiny` runs in seconds (tests), `quick` in minutes on a 2-core CPU, `full` is the published setting
(meant for a GPU).
"""

import copy

from zoo import backbones
from zoo import datasets

BUDGETS = ("tiny", "quick", "full")

# Every field a recipe has, with its default. Flags of recipes.train override any of them.
FIELDS = {
    "backbone": None,
    "dataset": None,
    "dataset_path": None,
    "dataset_options": {},
    "head": "auto",
    "head_hidden_units": [],
    "head_dropout": 0.0,
    "sequence_length": 256,
    "batch_size": 32,
    # Transformers: batch texts by token length in buckets this wide, each batch padded to its longest text.
    # None pads every batch to sequence_length.
    "bucket_width": None,
    "learning_rate": 1e-3,
    "epochs": 3,
    "warmup_fraction": 0.0,
    "weight_decay": 0.0,
    "patience": 2,
    "max_examples": None,
    "balance": None,
    "clean": [],
    "backbone_options": {},
}

_TINY_DATA = {"train": 64, "validation": 32, "test": 32}

# Per backbone: its settings, then per budget what changes. Published settings ("full"): BERT fine-tuning as in
# Devlin et al. (AdamW, warmup 10 %, 2-4 epochs, lr 2e-5..5e-5); GloVe RNN and TF-IDF as the keras-io examples.
BACKBONE_SETTINGS = {
    "bert_small": {
        "settings": {"sequence_length": 256, "batch_size": 32, "bucket_width": 32, "learning_rate": 1e-4,
                     "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2},
        "budgets": {
            "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": _TINY_DATA},
            # Sized for the whole quick benchmark (every recipe) in 45 minutes on a 2-core CPU.
            "quick": {"epochs": 2, "max_examples": {"train": 800, "validation": 150, "test": 500}},
            "full": {"epochs": 4, "sequence_length": 512, "learning_rate": 5e-5},
        },
    },
    "bert_base": {
        "settings": {"sequence_length": 256, "batch_size": 16, "bucket_width": 32, "learning_rate": 3e-5,
                     "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2},
        "budgets": {
            "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": _TINY_DATA,
                     "backbone_options": {"num_layers": 2, "hidden_dim": 64, "num_heads": 2, "intermediate_dim": 128}},
            "quick": {"epochs": 1, "sequence_length": 128, "max_examples": {"train": 400, "validation": 200,
                                                                             "test": 400}},
            "full": {"epochs": 4, "sequence_length": 512, "learning_rate": 2e-5, "batch_size": 32},
        },
    },
    "glove_bilstm": {
        "settings": {"sequence_length": 256, "batch_size": 32, "learning_rate": 2e-3, "epochs": 15,
                     "patience": 3, "head_hidden_units": [64], "head_dropout": 0.2},
        "budgets": {
            "tiny": {"epochs": 1, "sequence_length": 32, "max_examples": _TINY_DATA},
            # Validation accuracy flattens after 8-11 epochs on every dataset but 20 Newsgroups (measured).
            "quick": {"epochs": 10, "max_examples": {"train": 4000, "validation": 500, "test": 2000}},
            "full": {"epochs": 30, "sequence_length": 400, "patience": 5,
                     "backbone_options": {"glove_dim": 100, "layers": 2}},
        },
    },
    "ngram_linear": {
        # L2-normalised TF-IDF inputs need large weights: a high learning rate (0.05 gave 0.979 on BBC News, 0.005
        # underfit at 0.958).
        "settings": {"sequence_length": None, "batch_size": 32, "learning_rate": 0.05, "epochs": 30,
                     "patience": 3},
        "budgets": {
            "tiny": {"epochs": 2, "max_examples": _TINY_DATA},
            # Validation accuracy flattens after about 10 epochs (measured on all four default datasets).
            "quick": {"epochs": 12},
            "full": {"epochs": 40, "patience": 5, "backbone_options": {"max_tokens": 200000}},
        },
    },
}

# Datasets in the catalog (`custom` is used through --dataset on any recipe), and what a dataset changes.
DATASET_SETTINGS = {
    "bbc_news": {},
    "spam_assassin": {},
    "sms_spam": {"sequence_length": 64},
    "newsgroups20": {},
    "reuters_r8": {},
    "imdb": {"clean": ["html"]},
    "github_issues": {},
}


def _name(backbone, dataset):
    return f"{backbone}_{dataset}"


RECIPES = {
    _name(backbone, dataset): {"backbone": backbone, "dataset": dataset, **DATASET_SETTINGS[dataset]}
    for backbone in BACKBONE_SETTINGS
    for dataset in DATASET_SETTINGS
}


def names():
    return sorted(RECIPES)


def _merge(base, update):
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("max_examples",):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(name, budget="quick", overrides=None):
    """The full recipe `name` at `budget`, with `overrides` (field -> value) applied last.

    Raises:
        ValueError: unknown recipe, budget or field, naming the allowed ones.
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Allowed: {names()} (see `python -m recipes.train --list`).")
    if budget not in BUDGETS:
        raise ValueError(f"Unknown budget {budget!r}. Allowed: {list(BUDGETS)}.")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ValueError(f"Unknown recipe fields {unknown}. Allowed: {sorted(FIELDS)}.")
    recipe = RECIPES[name]
    backbone = overrides.get("backbone", recipe["backbone"])
    if backbone not in BACKBONE_SETTINGS:
        raise ValueError(f"Unknown backbone {backbone!r}. Allowed: {sorted(BACKBONE_SETTINGS)}.")
    settings = BACKBONE_SETTINGS[backbone]
    resolved = _merge(FIELDS, settings["settings"])
    resolved = _merge(resolved, {k: v for k, v in recipe.items() if k != "backbone"})
    resolved = _merge(resolved, settings["budgets"][budget])
    resolved = _merge(resolved, overrides)
    resolved["backbone"] = backbone
    resolved["recipe"] = name
    resolved["budget"] = budget
    validate(resolved)
    return resolved


def validate(recipe):
    """Checks field values early, with what was received and what is allowed."""
    datasets.get_spec(recipe["dataset"])
    backbones.check_options(recipe["backbone"], recipe["backbone_options"])
    for field in ("batch_size", "epochs"):
        if not isinstance(recipe[field], int) or recipe[field] < 1:
            raise ValueError(f"{field} must be a positive integer, received {recipe[field]!r}.")
    if recipe["sequence_length"] is not None and (not isinstance(recipe["sequence_length"], int)
                                                   or recipe["sequence_length"] < 2):
        raise ValueError(f"sequence_length must be an integer of at least 2, received {recipe['sequence_length']!r}.")
    if recipe["bucket_width"] is not None and (not isinstance(recipe["bucket_width"], int)
                                               or recipe["bucket_width"] < 1):
        raise ValueError(f"bucket_width must be a positive integer or None, received {recipe['bucket_width']!r}.")
    if not recipe["learning_rate"] > 0:
        raise ValueError(f"learning_rate must be positive, received {recipe['learning_rate']!r}.")
    if not 0 <= recipe["warmup_fraction"] < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), received {recipe['warmup_fraction']!r}.")
    if recipe["weight_decay"] < 0:
        raise ValueError(f"weight_decay must be at least 0, received {recipe['weight_decay']!r}.")
    if not isinstance(recipe["patience"], int) or recipe["patience"] < 0:
        raise ValueError(f"patience must be an integer of at least 0, received {recipe['patience']!r}.")
    if not 0 <= recipe["head_dropout"] < 1:
        raise ValueError(f"head_dropout must be in [0, 1), received {recipe['head_dropout']!r}.")
    from zoo import heads

    if recipe["head"] not in heads.HEAD_TYPES:
        raise ValueError(f"Unknown head {recipe['head']!r}. Allowed: {list(heads.HEAD_TYPES)}.")
