"""The recipe catalog: recipes are data.

A recipe pairs a backbone with a dataset and fixes the head and the training hyperparameters. The catalog holds
every registered backbone with every dataset it makes sense for (all of them: each backbone reads raw text), named
`<backbone>_<dataset>`. `resolve(name, budget, overrides)` gives the full, flat recipe: the field defaults, the
backbone's default settings (`zoo.backbones.default_settings`), the dataset's settings, what the budget changes
for that backbone (`budgets.py`), what that budget changes for that backbone on that dataset (its `datasets`
entry), then the overrides (flags), in that order.

Budgets: `tiny` runs in seconds (tests), `quick` in minutes on a 2-core CPU, `full` is the published setting
(meant for a GPU).
"""

import copy
import json

from recipes import budgets
from zoo import backbones
from zoo import datasets
from zoo import settings

BUDGETS = budgets.NAMES

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
    # batch_size, epochs, learning_rate, warmup_fraction, weight_decay, patience, bucket_width.
    **settings.TrainingSettings.defaults(),
    "max_examples": None,
    "balance": None,
    "clean": [],
    "backbone_options": {},
}

# What a dataset changes in its recipes (the datasets themselves are zoo.datasets' registry).
DATASET_SETTINGS = {
    "sms_spam": {"sequence_length": 64},
    "imdb": {"clean": ["html"]},
}


def dataset_names():
    """The datasets of the catalog: every registered one (`custom` is used through --dataset on any recipe)."""
    return [name for name in datasets.names() if name != "custom"]


def _name(backbone, dataset):
    return f"{backbone}_{dataset}"


def recipes(dataset_path=None):
    """{recipe name: catalog entry}: every registered backbone with every registered dataset (a backbone added to
    the registries is in the catalog, the tests and the benchmark); with `dataset_path`, every backbone with your
    data instead (a CSV, TSV, JSON or JSONL file, or a directory of train / validation / test files), named
    `<backbone>_<data name>` after it (`zoo.datasets.data_name`), as its run directory, export and MLflow run then
    are."""
    if dataset_path is not None:
        data = datasets.data_name(dataset_path)
        return {_name(backbone, data): {"backbone": backbone, "dataset": "custom", "dataset_path": str(dataset_path)}
                for backbone in backbones.names()}
    return {_name(backbone, dataset): {"backbone": backbone, "dataset": dataset, **DATASET_SETTINGS.get(dataset, {})}
            for backbone in backbones.names() for dataset in dataset_names()}


def names(dataset_path=None):
    return sorted(recipes(dataset_path))


def recipe(name, dataset_path=None):
    """The catalog entry `name` (backbone, dataset and what the dataset changes), or a ValueError naming them all."""
    entries = recipes(dataset_path)
    if name not in entries:
        raise ValueError(f"Unknown recipe {name!r}. Allowed: {sorted(entries)} (see `textzoo train --list`).")
    return entries[name]


def data_label(recipe):
    """What a recipe's results are grouped and named under: its registered dataset, or your data's name."""
    return datasets.data_name(recipe["dataset_path"]) if recipe["dataset"] == "custom" else recipe["dataset"]


def reference_recipe(label):
    """The benchmark's row name of the TF-IDF + LogisticRegression reference on the data `label` names."""
    return f"reference_sklearn_tfidf_lr_{label}"


def _merge(base, update):
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("max_examples",):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(name, budget="quick", overrides=None, dataset_path=None):
    """The full recipe `name` (of `recipes(dataset_path)`) at `budget`, with `overrides` (field -> value) applied
    last.

    Raises:
        ValueError: unknown recipe, budget or field, naming the allowed ones.
    """
    return _resolve(name, recipe(name, dataset_path), budget, overrides)


def for_data(backbone, dataset_path, budget="quick", overrides=None):
    """The recipe of `backbone` on your own data (`recipes(dataset_path)`; `dataset_options` say which columns),
    trained with the backbone's settings at `budget`."""
    if backbone not in backbones.names():
        raise ValueError(f"Unknown backbone {backbone!r}. Allowed: {backbones.names()}.")
    return resolve(_name(backbone, datasets.data_name(dataset_path)), budget, overrides, dataset_path)


def _resolve(name, entry, budget, overrides):
    if budget not in BUDGETS:
        raise ValueError(f"Unknown budget {budget!r}. Allowed: {list(BUDGETS)}.")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ValueError(f"Unknown recipe fields {unknown}. Allowed: {sorted(FIELDS)}.")
    backbone = overrides.get("backbone", entry["backbone"])
    if backbone not in backbones.names():
        raise ValueError(f"Unknown backbone {backbone!r}. Allowed: {backbones.names()}.")
    resolved = _merge(FIELDS, backbones.default_settings(backbone))
    resolved = _merge(resolved, {k: v for k, v in entry.items() if k != "backbone"})
    budget_settings = budgets.of(backbone)[budget]
    # What a budget changes for one dataset only (long texts may need more positions at the same budget).
    per_dataset = budget_settings.pop("datasets", {})
    unknown = sorted(set(per_dataset) - set(dataset_names()))
    if unknown:
        raise ValueError(f"Backbone {backbone!r}, budget {budget!r}: settings for unknown datasets {unknown}. "
                         f"Allowed: {sorted(dataset_names())}.")
    for changes in (budget_settings, per_dataset.get(entry["dataset"], {})):
        _check_test_uncapped(backbone, budget, changes.get("max_examples"))
        resolved = _merge(resolved, changes)
    if budgets.TEST_EXAMPLES[budget] is not None:
        resolved["max_examples"] = {**(resolved["max_examples"] or {}), "test": budgets.TEST_EXAMPLES[budget]}
    resolved = _merge(resolved, overrides)
    resolved["backbone"] = backbone
    resolved["recipe"] = name
    resolved["budget"] = budget
    validate(resolved)
    return resolved


def _check_test_uncapped(backbone, budget, max_examples):
    """A budget's caps leave the test split alone (`budgets.TEST_EXAMPLES` sizes it for every backbone alike)."""
    if max_examples is not None and not (isinstance(max_examples, dict) and "test" not in max_examples):
        raise ValueError(f"Backbone {backbone!r}, budget {budget!r}: max_examples={max_examples!r} caps the test "
                         "split; a budget caps train and validation only (budgets.TEST_EXAMPLES sizes every "
                         "backbone's test split alike).")


def make_classifier(name, budget="quick", class_names=None, **overrides):
    """The `zoo.TextClassifier` of recipe `name` (`textzoo train --list`) at `budget`, its fields
    (`FIELDS`) overridden by `overrides`. The recipe's dataset is not read: `fit` takes the data.

        classifier = catalog.make_classifier("ngram_linear_bbc_news", budget="tiny", epochs=5)
    """
    # Imported here: the catalog itself (flags, --list) loads no TensorFlow.
    from zoo import text_classifier

    return text_classifier.TextClassifier.from_fields(resolve(name, budget, overrides), class_names)


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


def parse_value(text):
    """A flag value as JSON where it parses (numbers, true/false, null), a string otherwise; '+' makes a list."""
    if "+" in text:
        return [parse_value(part) for part in text.split("+")]
    lowered = text.lower()
    if lowered in ("true", "false", "null", "none"):
        return {"true": True, "false": False}.get(lowered)
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(items, flag_name):
    """Flag items `key=value` -> {key: parsed value}; the flag's name is for the error."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--{flag_name} takes key=value items, received {item!r}.")
        options[key.strip()] = parse_value(value.strip())
    return options
