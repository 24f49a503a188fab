import json
import pathlib

import pytest

from recipes import budgets
from recipes import catalog
from zoo import backbones
from zoo import datasets


def test_catalog_covers_every_backbone_with_every_dataset():
    entries = catalog.recipes()
    assert len(entries) == len(backbones.names()) * len(catalog.dataset_names())
    for backbone in backbones.names():
        for dataset in catalog.dataset_names():
            assert entries[f"{backbone}_{dataset}"]["backbone"] == backbone
            assert entries[f"{backbone}_{dataset}"]["dataset"] == dataset
    # One dataset registry (zoo.datasets): the catalog has every dataset of it, and settings only for those.
    assert set(catalog.dataset_names()) == set(datasets.names()) - {"custom"}
    assert set(catalog.DATASET_SETTINGS) <= set(catalog.dataset_names())


@pytest.mark.parametrize("budget", catalog.BUDGETS)
def test_every_recipe_resolves_at_every_budget(budget):
    for name in catalog.names():
        recipe = catalog.resolve(name, budget)
        assert set(catalog.FIELDS) <= set(recipe)
        assert recipe["recipe"] == name and recipe["budget"] == budget


def test_precedence_defaults_backbone_budget_overrides():
    quick = catalog.resolve("minilm_l6_bbc_news", "quick")
    defaults, budget = backbones.default_settings("minilm_l6"), budgets.of("minilm_l6")
    quick_rate = budget["quick"]["learning_rate"]
    assert quick["learning_rate"] == quick_rate != defaults["learning_rate"]
    assert quick["max_examples"] == budget["quick"]["max_examples"]
    assert quick["backbone_options"] == budget["quick"]["backbone_options"]
    tiny = catalog.resolve("minilm_l6_bbc_news", "tiny")
    assert tiny["sequence_length"] == 32 and tiny["epochs"] == 1
    assert tiny["learning_rate"] == defaults["learning_rate"]
    overridden = catalog.resolve("minilm_l6_bbc_news", "tiny", {"epochs": 7, "backbone_options": {"dropout": 0.2}})
    assert overridden["epochs"] == 7 and overridden["sequence_length"] == 32
    assert overridden["backbone_options"] == {"dropout": 0.2}
    # Nested options merge: a budget's backbone options stay unless overridden.
    base_tiny = catalog.resolve("bert_base_bbc_news", "tiny", {"backbone_options": {"dropout": 0.0}})
    assert base_tiny["backbone_options"]["num_layers"] == 2 and base_tiny["backbone_options"]["dropout"] == 0.0
    assert catalog.resolve("glove_bilstm_imdb")["clean"] == ["html"]


def test_a_budget_can_change_one_dataset_of_one_backbone(monkeypatch):
    """A backbone's budget may change settings for one dataset (its `datasets` entry), after the budget's own and
    before the overrides; an entry for a dataset the catalog lacks is named."""
    settings = budgets.of("minilm_l6")
    for name in backbones.names():
        for budget, changes in budgets.of(name).items():
            assert set(changes.get("datasets", {})) <= set(catalog.dataset_names()), (name, budget)
    settings["quick"]["datasets"] = {"bbc_news": {"sequence_length": 384, "epochs": 5}}
    monkeypatch.setitem(budgets.BACKBONES, "minilm_l6", settings)
    bbc = catalog.resolve("minilm_l6_bbc_news", "quick")
    assert (bbc["sequence_length"], bbc["epochs"]) == (384, 5)
    assert "datasets" not in bbc
    r8 = catalog.resolve("minilm_l6_reuters_r8", "quick")
    assert (r8["sequence_length"], r8["epochs"]) == (256, settings["quick"]["epochs"])
    assert catalog.resolve("minilm_l6_bbc_news", "quick", {"sequence_length": 128})["sequence_length"] == 128
    settings["quick"]["datasets"] = {"bbc": {"epochs": 1}}
    with pytest.raises(ValueError, match=r"unknown datasets \['bbc'\]. Allowed: \['bbc_news'"):
        catalog.resolve("minilm_l6_reuters_r8", "quick")


@pytest.mark.parametrize("budget", catalog.BUDGETS)
def test_every_backbone_of_a_dataset_is_tested_on_the_same_split(budget):
    """What decides a recipe's test texts (the data, its options and cleaning, the test cap) is the same for every
    backbone of a dataset at a budget: budgets cap training, never one backbone's test."""
    deciding = ("dataset", "dataset_path", "dataset_options", "clean")
    for dataset in catalog.dataset_names():
        tests = {name: (*(json.dumps(recipe[k]) for k in deciding), _test_cap(recipe["max_examples"]))
                 for name, recipe in ((b, catalog.resolve(f"{b}_{dataset}", budget)) for b in backbones.names())}
        assert len(set(tests.values())) == 1, (dataset, budget, tests)
        assert set(tests.values()).pop()[-1] == budgets.TEST_EXAMPLES[budget]


def _test_cap(caps):
    return caps if isinstance(caps, int) else (caps or {}).get("test")


@pytest.mark.parametrize("caps", [{"train": 100, "test": 50}, 500])
def test_a_budget_that_caps_one_backbones_test_is_refused(monkeypatch, caps):
    capped = catalog.resolve("glove_bilstm_bbc_news", "quick", {"max_examples": {"test": 10}})
    assert capped["max_examples"] == {"test": 10}  # Your own choice, on the command line, is yours.
    settings = budgets.of("glove_bilstm")
    settings["quick"]["max_examples"] = caps
    monkeypatch.setitem(budgets.BACKBONES, "glove_bilstm", settings)
    with pytest.raises(ValueError, match=r"Backbone 'glove_bilstm', budget 'quick': max_examples=.* caps the test "
                                         r"split; a budget caps train and validation only"):
        catalog.resolve("glove_bilstm_bbc_news", "quick")


def test_budgets_are_recipe_data_and_the_library_holds_none():
    """Every budget of every backbone is in recipes/budgets.py; the library's backbone modules hold defaults only."""
    import importlib

    for name in backbones.names():
        assert set(budgets.of(name)) == set(budgets.NAMES), name
        module = importlib.import_module(backbones.BACKBONES[name].partition(":")[0])
        assert not hasattr(module, "recipe_settings") and not hasattr(module, "TINY_DATA"), name
        assert set(backbones.default_settings(name)) <= set(catalog.FIELDS), name
    # A backbone without budgets of its own: its defaults, one epoch on a few examples when tiny.
    assert budgets.of("not_listed") == budgets.DEFAULT and budgets.DEFAULT["tiny"]["max_examples"] == budgets.TINY_DATA


def test_backbone_override_changes_settings():
    recipe = catalog.resolve("minilm_l6_bbc_news", "quick", {"backbone": "ngram_linear"})
    assert recipe["backbone"] == "ngram_linear"
    assert recipe["sequence_length"] is None


@pytest.mark.parametrize("args,message", [
    (("nope", "quick", {}), "Unknown recipe 'nope'"),
    (("minilm_l6_bbc_news", "huge", {}), "Unknown budget 'huge'. Allowed: ['tiny', 'quick', 'full']"),
    (("minilm_l6_bbc_news", "quick", {"epoch": 3}), "Unknown recipe fields ['epoch']"),
    (("minilm_l6_bbc_news", "quick", {"batch_size": -1}), "batch_size must be a positive integer, received -1"),
    (("ngram_linear_bbc_news", "quick", {"epochs": 0}), "epochs must be a positive integer, received 0"),
    (("glove_bilstm_bbc_news", "quick", {"backbone_options": {"colour": "red"}}), "Unknown options ['colour']"),
    (("minilm_l6_bbc_news", "quick", {"learning_rate": 0}), "learning_rate must be positive"),
    (("minilm_l6_bbc_news", "quick", {"warmup_fraction": 1.5}), "warmup_fraction must be in [0, 1)"),
    (("minilm_l6_bbc_news", "quick", {"head": "linear"}), "Unknown head 'linear'"),
    (("minilm_l6_bbc_news", "quick", {"dataset": "mnist"}), "Unknown dataset 'mnist'"),
    (("minilm_l6_bbc_news", "quick", {"backbone_options": {"layers": 2}}), "Unknown options ['layers']"),
])
def test_bad_recipes_give_clear_errors(args, message):
    with pytest.raises(ValueError) as error:
        catalog.resolve(*args)
    assert message in str(error.value)


# The one registry line a new backbone needs (its module is tests/throwaway/mean_embedding.py).
REGISTER = ("import sys; sys.path.insert(0, {tests!r}); from zoo import backbones; "
            "backbones.BACKBONES['mean_embedding'] = 'throwaway.mean_embedding:MeanEmbedding'; ")


def run_registered(code):
    import os
    import subprocess
    import sys

    repo = pathlib.Path(__file__).resolve().parents[1]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", REGISTER.format(tests=str(repo / "tests")) + code], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=600)


def test_a_backbone_and_your_file_are_a_recipe_named_after_the_data():
    recipe = catalog.for_data("glove_bilstm", "/data/support/tickets.csv", "tiny",
                              {"dataset_options": {"text_columns": ["title", "body"], "label_column": "queue"}})
    assert recipe["recipe"] == "glove_bilstm_tickets" and recipe["dataset"] == "custom"
    assert recipe["dataset_path"] == "/data/support/tickets.csv"
    assert recipe["dataset_options"] == {"text_columns": ["title", "body"], "label_column": "queue"}
    assert recipe["epochs"] == catalog.resolve("glove_bilstm_bbc_news", "tiny")["epochs"]  # The backbone's budget.
    # A file named for its split says nothing of the data: its directory does.
    assert catalog.for_data("ngram_linear", "/data/Support Tickets/train.csv")["recipe"] == (
        "ngram_linear_support_tickets")
    with pytest.raises(ValueError, match=r"Unknown backbone 'gpt'. Allowed: \['bert_base'"):
        catalog.for_data("gpt", "tickets.csv")


def test_a_new_backbone_is_one_module_and_one_registry_line(monkeypatch):
    """The throwaway backbone shows up in `recipes.train --list`, in the contract tests (which it passes) and in the
    benchmark's recipe selection, without touching any other file."""
    listed = run_registered("from absl import app; from recipes import train; "
                            "app.run(train.main, argv=['train', '--list', '--budget=tiny'])")
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("mean_embedding_")]
    assert sorted(r[0] for r in rows) == sorted(f"mean_embedding_{d}" for d in catalog.dataset_names())
    assert rows[0][3:] == ["64", "32", "1e-02", "1"]  # Its own settings at the tiny budget.

    contract = run_registered("import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
                              "'tests/test_backbones_and_heads.py', '-k', 'mean_embedding']))")
    assert contract.returncode == 0, contract.stdout[-3000:]
    import re

    contract_tests = re.findall(r"^def test_\w+\(built\b", (pathlib.Path(__file__).parent
                                                           / "test_backbones_and_heads.py").read_text(), re.M)
    assert f"\n{len(contract_tests)} passed" in contract.stdout, contract.stdout[-1000:]

    from benchmarks import run
    from zoo import backbones as registry

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent))
    monkeypatch.setitem(registry.BACKBONES, "mean_embedding", "throwaway.mean_embedding:MeanEmbedding")
    assert run.plan(backbone_names=["mean_embedding"], dataset_names=["bbc_news", "reuters_r8"]) == (
        ["mean_embedding_bbc_news", "mean_embedding_reuters_r8"], {})
