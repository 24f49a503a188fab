"""What each budget changes, per backbone: recipe data, with the measurements each choice was made on.

`tiny` runs in seconds (the tests), `quick` in minutes on a 2-core CPU (the default benchmark: the whole matrix in
60 minutes), `full` is the published setting (meant for a GPU). A budget entry changes recipe fields
(`catalog.FIELDS`) after the backbone's defaults (`zoo.backbones.default_settings`) and the dataset's settings;
its `datasets` entry changes fields for one dataset only, after the rest. A backbone without an entry here gets
`DEFAULT`: its own defaults, one epoch on `TINY_DATA` at the tiny budget.
"""

import copy

NAMES = ("tiny", "quick", "full")

# The data of every backbone's `tiny` budget (seconds; the tests run it).
TINY_DATA = {"train": 64, "validation": 32, "test": 32}

DEFAULT = {"tiny": {"epochs": 1, "max_examples": TINY_DATA}, "quick": {}, "full": {}}

_BERT_SMALL = {
    "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": TINY_DATA},
    # Measured on Reuters R8 (whole training split, 3 epochs, mixed_bfloat16, 2 cores with AMX): top 2
    # layers 0.9752 in 245 s, top 1 layer 0.9697 in 162 s at lr 1e-4 and 0.9724 at 3e-4 (TF-IDF + LR:
    # 0.9637). The whole quick matrix must fit in 45 minutes: top 1 layer.
    # 2 epochs (test accuracy / macro-F1, 3 epochs -> 2, caching included): R8 0.9715 / 0.9395 -> 0.9729 /
    # 0.9415 (training 175 -> 128 s), SpamAssassin 0.9789 / 0.9749 -> 0.9806 / 0.9772 (325 -> 226 s),
    # 20 Newsgroups 0.8197 -> 0.8085 (290 -> 221 s), BBC News 0.9812 / 0.9804 -> 0.9741 / 0.9735: 3 there.
    "quick": {"epochs": 2, "learning_rate": 3e-4, "max_examples": {"train": 5000, "validation": 600},
              "backbone_options": {"trainable_layers": 1},
              "datasets": {
                  # BBC articles fill 256 positions (89 %) and BERT saw their first ~200 words: 0.9624 at
                  # 256 (top 2 layers: 0.9671), 0.9812 / macro-F1 0.9804 at 512 in 278 s of training
                  # (TF-IDF + LR: 0.9741 / 0.9728).
                  "bbc_news": {"sequence_length": 512, "epochs": 3},
                  # 20 Newsgroups: 0.7960 on 5000 examples at 256 (298 s); 0.8197 on all 10135 at 128
                  # (374 s, evaluation of the 7519 test texts 60 s instead of ~125 s).
                  "newsgroups20": {"sequence_length": 128, "max_examples": {"validation": 600}},
              }},
    "full": {"epochs": 4, "sequence_length": 512, "learning_rate": 5e-5},
}

BACKBONES = {
    "bert_small": _BERT_SMALL,
    # minilm_l3 trains as bert_small does (same width, half the layers): its accuracies are in the benchmark's
    # results.
    "minilm_l3": _BERT_SMALL,
    "bert_base": {
        "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": TINY_DATA,
                 "backbone_options": {"num_layers": 2, "hidden_dim": 64, "num_heads": 2, "intermediate_dim": 128}},
        "quick": {"epochs": 1, "sequence_length": 128, "max_examples": {"train": 400, "validation": 200,
                                                                         "test": 400}},
        "full": {"epochs": 4, "sequence_length": 512, "learning_rate": 2e-5, "batch_size": 32},
    },
    "mpnet_base": {
        "tiny": {"epochs": 1, "sequence_length": 32, "batch_size": 16, "max_examples": TINY_DATA,
                 "backbone_options": {"trainable_layers": 1}},
        # Measured on Reuters R8 (run 20261202T160847Z, 2-core AMD EPYC, mixed_bfloat16, whole test split):
        # 0.9738 / macro-F1 0.9237 in 431 s for the recipe (training 138 s, caching 65 s of it; evaluation of
        # 2176 texts in float32 ~90 s; served 25 ex/s at batch 32, p50 77 ms, export 441 MB), where bert_small
        # on all 4873 examples at 256 reached 0.9729 / 0.9415 and TF-IDF + LR 0.9642.
        # The same settings on the other datasets (2026-12-03, same kind of machine, `python -m recipes.train
        # --recipe=mpnet_base_<dataset> --budget=quick`; seconds inflated ~1.3-2x by tests running beside them):
        # 20 Newsgroups 0.7828 / 0.7634 in 1216 s (training 300 s, caching 129 s of it; evaluating the 7519 test
        # texts 829 s), below bert_small on all 10135 examples (0.8090) and TF-IDF + LR (0.8456); SpamAssassin
        # 0.9679 / 0.9618 in 532 s (bert_small 0.9831, TF-IDF + LR 0.9789); BBC News at 256 positions
        # (--sequence_length=256, all 1487 examples) 0.9788 / 0.9783 in 814 s (training 548 s), bert_small's at 512.
        # So 2000 examples are too few where bert_small trains on all, and 20 Newsgroups' full test split alone
        # costs MPNet-base ~7 minutes here: it does not fit the 60-minute matrix on 2 cores without AMX.
        "quick": {"epochs": 2, "learning_rate": 3e-4, "sequence_length": 128, "batch_size": 32,
                  "max_examples": {"train": 2000, "validation": 300},
                  "backbone_options": {"trainable_layers": 1}},
        "full": {"epochs": 4, "sequence_length": 384, "learning_rate": 2e-5},
    },
    # Validation accuracy flattens after 8-11 epochs on every dataset but 20 Newsgroups (measured), hence 10 quick
    # epochs.
    "glove_bilstm": {
        "tiny": {"epochs": 1, "sequence_length": 32, "max_examples": TINY_DATA},
        "quick": {"epochs": 10, "max_examples": {"train": 4000, "validation": 500, "test": 2000}},
        "full": {"epochs": 30, "sequence_length": 400, "patience": 5,
                 "backbone_options": {"glove_dim": 100, "layers": 2}},
    },
    # Validation accuracy flattens after about 10 epochs (all four default datasets).
    "ngram_linear": {
        "tiny": {"epochs": 2, "max_examples": TINY_DATA},
        "quick": {"epochs": 12},
        "full": {"epochs": 40, "patience": 5, "backbone_options": {"max_tokens": 200000}},
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
                   "bert_small's work per token); run it with --backbones=mpnet_base"),
}
