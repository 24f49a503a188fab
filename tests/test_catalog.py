import pytest

from recipes import catalog
from zoo import backbones
from zoo import datasets


def test_catalog_covers_every_backbone_with_every_dataset():
    for backbone in backbones.names():
        for dataset in catalog.DATASET_SETTINGS:
            assert f"{backbone}_{dataset}" in catalog.RECIPES
    assert set(catalog.DATASET_SETTINGS) == set(datasets.names()) - {"custom"}


@pytest.mark.parametrize("budget", catalog.BUDGETS)
def test_every_recipe_resolves_at_every_budget(budget):
    for name in catalog.names():
        recipe = catalog.resolve(name, budget)
        assert set(catalog.FIELDS) <= set(recipe)
        assert recipe["recipe"] == name and recipe["budget"] == budget


def test_precedence_defaults_backbone_budget_overrides():
    quick = catalog.resolve("bert_small_bbc_news", "quick")
    assert quick["learning_rate"] == catalog.BACKBONE_SETTINGS["bert_small"]["settings"]["learning_rate"]
    tiny = catalog.resolve("bert_small_bbc_news", "tiny")
    assert tiny["sequence_length"] == 32 and tiny["epochs"] == 1
    overridden = catalog.resolve("bert_small_bbc_news", "tiny", {"epochs": 7, "backbone_options": {"dropout": 0.2}})
    assert overridden["epochs"] == 7 and overridden["sequence_length"] == 32
    assert overridden["backbone_options"] == {"dropout": 0.2}
    # Nested options merge: a budget's backbone options stay unless overridden.
    base_tiny = catalog.resolve("bert_base_bbc_news", "tiny", {"backbone_options": {"dropout": 0.0}})
    assert base_tiny["backbone_options"]["num_layers"] == 2 and base_tiny["backbone_options"]["dropout"] == 0.0
    assert catalog.resolve("glove_bilstm_imdb")["clean"] == ["html"]


def test_backbone_override_changes_settings():
    recipe = catalog.resolve("bert_small_bbc_news", "quick", {"backbone": "ngram_linear"})
    assert recipe["backbone"] == "ngram_linear"
    assert recipe["sequence_length"] is None


@pytest.mark.parametrize("args,message", [
    (("nope", "quick", {}), "Unknown recipe 'nope'"),
    (("bert_small_bbc_news", "huge", {}), "Unknown budget 'huge'. Allowed: ['tiny', 'quick', 'full']"),
    (("bert_small_bbc_news", "quick", {"epoch": 3}), "Unknown recipe fields ['epoch']"),
    (("bert_small_bbc_news", "quick", {"batch_size": -1}), "batch_size must be a positive integer, received -1"),
    (("bert_small_bbc_news", "quick", {"learning_rate": 0}), "learning_rate must be positive"),
    (("bert_small_bbc_news", "quick", {"warmup_fraction": 1.5}), "warmup_fraction must be in [0, 1)"),
    (("bert_small_bbc_news", "quick", {"head": "linear"}), "Unknown head 'linear'"),
    (("bert_small_bbc_news", "quick", {"dataset": "mnist"}), "Unknown dataset 'mnist'"),
    (("bert_small_bbc_news", "quick", {"backbone_options": {"layers": 2}}), "Unknown options ['layers']"),
])
def test_bad_recipes_give_clear_errors(args, message):
    with pytest.raises(ValueError) as error:
        catalog.resolve(*args)
    assert message in str(error.value)
