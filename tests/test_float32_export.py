"""What ships computes in float32 whatever it trained in; bfloat16 is the serving host's choice (issue 25)."""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo

from recipes import catalog
from zoo import backbones
from zoo import classifier
from zoo import compat
from zoo import datasets
from zoo import experiment
from zoo import export
from zoo import serving_check
from zoo import training

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory):
    """minilm_l3's tiny BBC News recipe trained in mixed_bfloat16 and exported."""
    root = tmp_path_factory.mktemp("bf16")
    recipe = {**catalog.resolve("minilm_l3_bbc_news", "tiny"), "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="mixed_bfloat16",
                                         family=backbones.family("minilm_l3"))
    try:
        metrics = experiment.train_and_evaluate(recipe, root / "run", runtime, export_dir=root / "exports")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    return root / "run", metrics


def _policies(core):
    return {layer.dtype_policy.name for layer in core._flatten_layers()}


def test_bf16_training_saves_and_exports_a_float32_model(bf16_run):
    run, metrics = bf16_run
    assert json.loads((run / "config.json").read_text())["runtime"]["dtype_policy"] == "mixed_bfloat16"
    saved = keras.saving.load_model(run / "model.keras", compile=False)  # The file itself, as saved.
    assert _policies(saved.core) == {"float32"}
    check = json.loads((pathlib.Path(metrics["export"]) / "export_info.json").read_text())["verification"]
    assert check["ok"] and check["compute_dtype"] == "float32" and check["tolerance"] == 1e-5
    assert serving_check.half_precision_ops(metrics["export"]) == {}


def test_bf16_trained_test_metrics_are_the_float32_exports(bf16_run):
    run, metrics = bf16_run
    rows = [json.loads(line) for line in (run / "test_predictions.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    texts = datasets.for_recipe(config["recipe"], seed=config["runtime"]["seed"]).splits["test"].texts
    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"].numpy(), [r["probabilities"] for r in rows], atol=1e-5)


def test_float32_copy_has_the_weights_and_float32_outputs():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        parts = backbones.build("bert_base", {"random_init": True, "num_layers": 2, "hidden_dim": 16,
                                              "num_heads": 2, "intermediate_dim": 32, "pooling": "mean"}, 16)
        core = classifier.build_core(parts, 3, "softmax")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert "mixed_bfloat16" in _policies(core)
    copy = classifier.computing_in_float32(core)
    assert _policies(copy) == {"float32"} and keras.mixed_precision.dtype_policy().name == "float32"
    for a, b in zip(core.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    inputs = parts.preprocessor(tf.constant(["a short text", "another one, a little longer than that"]))
    # The bfloat16 model's outputs to bfloat16's precision; the copy's in float32.
    assert copy(inputs).dtype == tf.float32
    np.testing.assert_allclose(copy(inputs).numpy(), core(inputs).numpy().astype(np.float32), atol=2e-2)
    assert classifier.computing_in_float32(copy) is copy  # Already float32: the model itself.


def test_half_precision_check_finds_bfloat16_compute(tmp_path):
    """The export check's detector, on a SavedModel computing in bfloat16 and on its float32 twin."""
    for dtype in (tf.float32, tf.bfloat16):
        module = tf.Module()
        module.w = tf.Variable(tf.ones([4, 4]))
        module.f = tf.function(lambda x: tf.cast(tf.matmul(tf.cast(x, dtype), tf.cast(module.w, dtype)),
                                                 tf.float32), input_signature=[tf.TensorSpec([None, 4])])
        tf.saved_model.save(module, str(tmp_path / dtype.name))
    assert serving_check.half_precision_ops(str(tmp_path / "float32")) == {}
    found = serving_check.half_precision_ops(str(tmp_path / "bfloat16"))
    assert found["MatMul"] == ["DT_BFLOAT16"] and "Cast" in found


def test_serve_mixed_precision_resolves_and_sets_the_rewrite(monkeypatch):
    try:
        assert export.serve_mixed_precision("bfloat16") == "bfloat16"
        assert tf.config.optimizer.get_experimental_options()["auto_mixed_precision_onednn_bfloat16"] is True
        assert export.serve_mixed_precision("none") == "none"
        assert tf.config.optimizer.get_experimental_options()["auto_mixed_precision_onednn_bfloat16"] is False
        # A CPU where TensorFlow runs oneDNN and computes bfloat16 natively (AVX512_BF16 or AMX).
        monkeypatch.setattr(compat, "onednn_enabled", lambda: True)
        monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
        assert export.serve_mixed_precision("auto", "transformer") == "bfloat16"
        # Where it made them slower (the benchmark's served precisions), and where nothing says what it serves.
        assert export.serve_mixed_precision("auto", "recurrent") == "none"
        assert export.serve_mixed_precision("auto") == "none"
        assert export.serve_mixed_precision("bfloat16", "bag_of_words") == "bfloat16"  # Asked for: as asked.
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
        assert export.serve_mixed_precision("auto", "transformer") == "none"
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
        monkeypatch.setattr(compat, "onednn_enabled", lambda: False)  # An AVX2-only CPU: TensorFlow runs Eigen.
        assert export.serve_mixed_precision("auto", "transformer") == "none"
        monkeypatch.setattr(compat, "onednn_enabled", lambda: True)
        monkeypatch.setattr(training, "cpu_has_bf16", lambda: False)
        assert export.serve_mixed_precision("auto", "transformer") == "none"
        with pytest.raises(ValueError, match=r"Unknown mixed precision 'fp8'\. Allowed: \['auto', 'bfloat16'"):
            export.serve_mixed_precision("fp8")
    finally:
        export.serve_mixed_precision("none")


def test_predict_serves_the_float32_export_rewritten_to_bfloat16(bf16_run):
    _, metrics = bf16_run
    result = subprocess.run([sys.executable, "-m", "recipes.predict", f"--model={metrics['export']}",
                             "--mixed_precision=bfloat16", "--text=The match ended in a draw"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(result.stdout.strip().splitlines()[-1])
    # bfloat16 keeps 8 significant bits: a row of probabilities sums to 1 within a few of its units.
    assert row["label"] in metrics["per_class"] and sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-2)


def test_predict_gives_the_exports_float32_answers_unless_asked():
    """`textzoo predict` serves as TF Serving does by default: float32, as exported. It used to rewrite transformers
    to bfloat16 on CPUs that have it ("auto"): printed probabilities rounded and labels that TF Serving would not
    return."""
    from tests import commands

    result = commands.run("predict", "--help", cwd=pathlib.Path(__file__).parent, timeout=120)
    flag = " ".join(result.stdout[result.stdout.index("--mixed_precision"):].split())
    assert "a close call's label can change" in flag and "(default: 'none')" in flag, flag[:800]
