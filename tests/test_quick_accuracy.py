"""Quick-budget accuracy on BBC News, the targets of the zoo (minutes each: `make test-large`)."""

import pytest

import zoo

from recipes import catalog
from zoo import backbones
from zoo import experiment
from zoo import training

TARGETS = {"ngram_linear": 0.95, "glove_bilstm": 0.90, "minilm_l6": 0.95}


@pytest.mark.large
@pytest.mark.parametrize("backbone", sorted(TARGETS))
def test_quick_budget_reaches_target_accuracy_on_bbc_news(backbone, tmp_path):
    recipe = {**catalog.resolve(f"{backbone}_bbc_news", "quick"), "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="auto",
                                         family=backbones.family(backbone))
    metrics = experiment.train_and_evaluate(recipe, tmp_path / "run", runtime)
    assert metrics["accuracy"] >= TARGETS[backbone], metrics["accuracy"]
