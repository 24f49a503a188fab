"""What each budget changes, per backbone: recipe data, each choice linked to the measurements it was made on
(docs/measurements.md).

`tiny` runs in seconds (the tests), `quick` in minutes on a 2-core CPU (the default benchmark: the whole matrix within
an hour), `full` is the published setting (meant for a GPU). A budget entry changes recipe fields
(`catalog.FIELDS`) after the backbone's defaults (`zoo.backbones.default_settings`) and the dataset's settings;
its `datasets` entry changes fields for one dataset only, after the rest. A backbone without an entry here gets
`DEFAULT`: its own defaults, one epoch on `TINY_DATA` at the tiny budget.

A budget caps training and validation examples, never one backbone's test split: the test split of a dataset at a
budget is `TEST_EXAMPLES`' (all of it, or a stratified sample of the same size for every backbone), so that every
backbone of a dataset is scored on the same texts and the benchmark can compare them text by text.
"""

import copy

NAMES = ("tiny", "quick", "full")

# The data of every backbone's `tiny` budget (seconds; the tests run it).
TINY_DATA = {"train": 64, "validation": 32}

# The test examples of every recipe at each budget (None: the whole test split).
TEST_EXAMPLES = {"tiny": 32, "quick": None, "full": None}

DEFAULT = {"tiny": {"epochs": 1, "max_examples": TINY_DATA}, "quick": {}, "full": {}}

_SMALL_BERT = {
    "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": TINY_DATA},
    # The top layer on cached features, 2 epochs at a higher rate: what fits the quick matrix at the accuracy of
    # more layers and epochs (docs/measurements.md#minilm_l6-quick).
    "quick": {"epochs": 2, "learning_rate": 3e-4, "max_examples": {"train": 5000, "validation": 600},
              "backbone_options": {"trainable_layers": 1},
              "datasets": {
                  # BBC articles fill 256 positions: 512 reads them (docs/measurements.md#minilm_l6-bbc-news).
                  "bbc_news": {"sequence_length": 512, "epochs": 3},
                  # Every example at 128 positions beats 5000 at 256 (docs/measurements.md#minilm_l6-newsgroups20).
                  "newsgroups20": {"sequence_length": 128, "max_examples": {"validation": 600}},
              }},
    "full": {"epochs": 4, "sequence_length": 512, "learning_rate": 5e-5},
}

BACKBONES = {
    "minilm_l6": _SMALL_BERT,
    # minilm_l3 (minilm_l6's width, half its layers) and bert_small (4 layers, 512 wide) train as minilm_l6 does.
    "bert_small": _SMALL_BERT,
    "minilm_l3": _SMALL_BERT,
    "bert_base": {
        "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": TINY_DATA,
                 "backbone_options": {"num_layers": 2, "hidden_dim": 64, "num_heads": 2, "intermediate_dim": 128}},
        "quick": {"epochs": 1, "sequence_length": 128, "max_examples": {"train": 400, "validation": 200}},
        "full": {"epochs": 4, "sequence_length": 512, "learning_rate": 2e-5, "batch_size": 32},
    },
    "mpnet_base": {
        "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": TINY_DATA,
                 "backbone_options": {"trainable_layers": 1}},
        # Not yet sized for the 2-core matrix: 2000 examples are too few, all of them too slow
        # (docs/measurements.md#mpnet_base-quick).
        "quick": {"epochs": 2, "learning_rate": 3e-4, "sequence_length": 128, "batch_size": 32,
                  "max_examples": {"train": 2000, "validation": 300},
                  "backbone_options": {"trainable_layers": 1}},
        "full": {"epochs": 4, "sequence_length": 384, "learning_rate": 2e-5},
    },
    # Validation accuracy flattens after about 10 epochs (docs/measurements.md#epochs-of-the-small-models).
    "glove_bilstm": {
        "tiny": {"epochs": 1, "sequence_length": 32, "max_examples": TINY_DATA},
        "quick": {"epochs": 10, "max_examples": {"train": 4000, "validation": 500}},
        "full": {"epochs": 30, "sequence_length": 400, "patience": 5,
                 "backbone_options": {"glove_dim": 100, "layers": 2}},
    },
    # The quick and full budgets solve the head to its optimum, its penalty chosen on validation
    # (docs/measurements.md#ngram-solver); the tiny budget (the tests of Keras' fit) keeps Adam, whose validation
    # accuracy flattens after about 10 epochs (docs/measurements.md#epochs-of-the-small-models).
    "ngram_linear": {
        "tiny": {"epochs": 2, "max_examples": TINY_DATA},
        "quick": {"epochs": 12, "backbone_options": {"solver": "newton-cg"}},
        "full": {"epochs": 40, "patience": 5, "backbone_options": {"max_tokens": 200000, "solver": "newton-cg"}},
    },
}


def of(backbone):
    """{budget: the fields it changes (and under "datasets", per dataset)} for `backbone`."""
    return copy.deepcopy(BACKBONES.get(backbone, DEFAULT))


def benchmark_skip(backbone, gpu=False):
    """Why the default benchmark leaves `backbone` out (None: it runs it); asked for by name (`--backbones`,
    `--recipes`), its recipes run. The reasons are CPU time: on a machine with a GPU (`gpu`) every backbone runs."""
    return None if gpu else _BENCHMARK_SKIP_ON_CPU.get(backbone)


# Backbones whose quick budget is not yet sized for the default matrix on the 2-core CPU.
_BENCHMARK_SKIP_ON_CPU = {
    "mpnet_base": ("mpnet_base's quick budget is not yet sized for the 2-core matrix (12 layers, 768 wide: ~8x "
                   "minilm_l6's work per token); run it with --backbones=mpnet_base"),
}
