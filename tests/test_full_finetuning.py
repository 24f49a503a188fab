"""The benchmark's full fine-tuning timing (`benchmarks.timing.full_finetuning`) and the profile of a step
(`benchmarks.timing.op_seconds`): what trains, what the numbers are computed from, where a step's time goes."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import flops
from benchmarks import timing
from zoo import backbones
from zoo import classifier
from zoo.text_classifier import TextClassifier
from zoo import training

TEXTS = [("word " * n).strip() + " end" for n in (1, 3, 5, 40, 45, 2, 90, 7, 60, 33, 1, 120, 4, 9, 70, 20)]


@pytest.mark.parametrize("name, category", [
    ("classifier_core_1/bert/transformer_layer_0/self_attention/query/MatMul:_MklMatMul", "matmul"),
    ("gradient_tape/classifier_core_1/bert/transformer_layer_0/feedforward/Einsum:_MklEinsum", "matmul"),
    ("classifier_core/bert/transformer_layer_0/dropout/stateless_random_uniform:StatelessRandomUniformV2", "random"),
    ("gradient_tape/classifier_core_1/bert/transformer_layer_0/feedforward/mul_3:Mul", "elementwise"),
    ("classifier_core_1/bert/transformer_layer_0/feedforward/Cast:Cast", "cast"),
    ("adam_w/Sqrt_5:Sqrt", "optimizer and loss"),
    ("adam_w/MatMul:_MklBatchMatMulV2", "optimizer and loss"),  # Not the model's: no FLOPs of ours.
    ("classifier_core_other/x:Mul", "optimizer and loss"),  # Another model's scope, not this one's.
])
def test_profiled_ops_are_put_in_categories_by_scope_and_type(name, category):
    assert timing.op_category(name, "classifier_core") == category


def test_op_seconds_reads_the_traced_ops_of_a_step(tmp_path):
    a = tf.random.stateless_uniform((512, 512), seed=(1, 2))

    @tf.function
    def fn(seed):
        with tf.name_scope("net"):
            product = tf.linalg.matmul(a, a)
            mask = tf.random.stateless_uniform((512, 512), seed=seed) > 0.1  # A seed input: not constant-folded.
            return tf.reduce_sum(tf.where(mask, product, 0.0))

    seed = tf.constant([3, 4])
    fn(seed)  # Traced before the profiled call.
    profile = timing.op_seconds(lambda: fn(seed).numpy(), tmp_path / "trace", "net")
    seconds = profile["op_seconds"]
    assert profile["op_threads"] >= 1 and profile["wall_seconds"] > 0
    assert seconds["matmul"] > 0 and seconds["random"] > 0 and seconds["elementwise"] > 0
    assert set(seconds) <= {"matmul", "random", "elementwise", "cast", "optimizer and loss"}
    assert any(t.startswith("StatelessRandom") for t in profile["op_type_seconds"])
    assert sum(profile["op_type_seconds"].values()) == pytest.approx(sum(seconds.values()))
    assert sum(seconds.values()) <= profile["wall_seconds"] * profile["op_threads"] * 1.05


def test_full_finetuning_trains_every_layer_and_rates_it_against_the_bound(tmp_path):
    keras.mixed_precision.set_dtype_policy("float32")
    backbone = backbones.build("minilm_l6", {"dropout": 0.0, "trainable_layers": 1}, 128, None)
    layout = backbones.input_layout("minilm_l6", backbone.preprocessor)
    core = classifier.build_core(backbone, 3, "softmax")
    model = TextClassifier("minilm_l6", ["a", "b", "c"], head="softmax", preprocessor=backbone.preprocessor, core=core)
    batches = training.make_dataset(TEXTS, np.arange(len(TEXTS)) % 3, backbone.preprocessor, "softmax", 4,
                                    shuffle=False, bucket_width=32, layout=layout)
    recipe = {"learning_rate": 1e-3, "warmup_fraction": 0.0, "weight_decay": 0.01, "sequence_length": 128}
    network = next(layer for layer in core._flatten_layers() if isinstance(layer, keras_hub.models.BertBackbone))
    shape = flops.TransformerShape.of(network, "mean", 3)
    start = [np.asarray(w) for w in core.weights]

    result = timing.full_finetuning(model, recipe, "softmax", batches, shape, stock_rate=10.0, steps=2, warmup=1,
                                 profile_dir=tmp_path / "profile")

    # Every layer trained, the frozen prefix's bottom included (the pooler of [CLS] is unused under mean pooling).
    moved = {w.path for w, before in zip(core.weights, start) if not np.array_equal(np.asarray(w), before)}
    assert any("transformer_layer_0" in p for p in moved) and any("token_embedding" in p for p in moved)
    # The timed batches are the pipeline's 2nd and 3rd (its 1st is untimed), the profiled one the 4th (unshuffled
    # here, so that every pass gives the same batches).
    shapes = timing.batch_shapes(batches.take(4))
    assert result["steps_timed"] == 2 and [tuple(s) for s in result["batch_shapes"]] == shapes[1:3]
    assert tuple(result["profiled_step"]["batch_shape"]) == shapes[3]
    examples = sum(b for b, _ in shapes[1:3])
    tokens = sum(b * n for b, n in shapes[1:3])
    assert result["token_share_of_stock"] == pytest.approx(tokens / (examples * 128))
    assert result["speedup_vs_stock"] == pytest.approx(result["examples_per_second"] / 10.0)
    assert result["share_of_bound"] == pytest.approx(result["speedup_vs_stock"] * tokens / (examples * 128))
    seconds = examples / result["examples_per_second"]
    assert result["gflops_per_second"] == pytest.approx(flops.training_epoch(shape, shapes[1:3]) / seconds / 1e9)
    profile = result["profiled_step"]
    assert profile["op_seconds"]["matmul"] > 0 and profile["op_seconds"]["elementwise"] > 0
    assert profile["op_seconds"]["optimizer and loss"] > 0

    # More steps until `min_seconds` are timed, up to the pipeline's end: then its last batch is also profiled.
    longer = timing.full_finetuning(model, recipe, "softmax", batches, shape, stock_rate=10.0, steps=1, warmup=1,
                                    profile_dir=tmp_path / "profile_2", min_seconds=1e9)
    every = timing.batch_shapes(batches)
    assert [tuple(s) for s in longer["batch_shapes"]] == every[1:] and longer["steps_timed"] == len(every) - 1 > 3
    assert tuple(longer["profiled_step"]["batch_shape"]) == every[-1]


def test_report_gives_the_share_of_the_bound_the_flop_rate_and_where_a_step_went():
    from benchmarks import report

    row = {"recipe": "minilm_l6_reuters_r8", "dtype_policy": "mixed_bfloat16",
           "matmul_peak_gflops": {"float32": 300.0, "bfloat16": 1200.0},
           "stock_keras_hub": {"train_examples_per_second": 12.0, "train_steps_timed": 3},
           "full_finetuning": {"examples_per_second": 30.0, "steps_timed": 11, "speedup_vs_stock": 2.5,
                               "token_share_of_stock": 0.38,
                               "share_of_bound": 0.95, "gflops_per_second": 192.0,
                               "profiled_step": {"batch_shape": [32, 96], "wall_seconds": 0.8, "op_threads": 2,
                                                 "op_seconds": {"matmul": 0.3, "elementwise": 0.9, "random": 0.1,
                                                                "optimizer and loss": 0.1}}}}
    lines = report.full_finetuning_table([row, {"recipe": "ngram_linear_reuters_r8"}])
    assert len([line for line in lines if line.startswith("| minilm_l6")]) == 1
    assert not any("ngram" in line for line in lines)
    line = next(line for line in lines if line.startswith("| minilm_l6"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[2:7] == ["30.0 (11)", "12.0 (3)", "2.50x", "0.38", "0.95"]
    assert cells[7] == "192 (64% of float32 peak)"
    assert cells[8] == "32x96, 0.80 s, 88% of 2"  # 1.4 busy thread-seconds of 2 x 0.8.
    assert cells[9] == "21% / 64% / - / 7% / 7%"  # Casts counted as elementwise then.
    profiled = {**row["full_finetuning"]["profiled_step"], "op_type_seconds": {"Cast": 0.2},
                "op_seconds": {"matmul": 0.3, "elementwise": 0.7, "cast": 0.2, "random": 0.1,
                               "optimizer and loss": 0.1}}
    casts = {**row, "full_finetuning": {**row["full_finetuning"], "profiled_step": profiled}}
    line = next(line for line in report.full_finetuning_table([casts]) if line.startswith("| minilm_l6"))
    assert [c.strip() for c in line.split("|")[1:-1]][9] == "21% / 50% / 14% / 7% / 7%"
    shared = {**row, "recipe": "minilm_l6_spam_assassin",
              "stock_keras_hub": {**row["stock_keras_hub"], "measured_by": "minilm_l6_reuters_r8"}}
    line = next(line for line in report.full_finetuning_table([shared]) if line.startswith("| minilm_l6"))
    assert [c.strip() for c in line.split("|")[1:-1]][3] == "12.0 (3, as in minilm_l6_reuters_r8)"
    assert report.full_finetuning_table([{"recipe": "x"}]) == []
