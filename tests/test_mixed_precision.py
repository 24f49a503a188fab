"""Every backbone family under mixed_float16 (what `--dtype_policy=auto` picks on a GPU) and XLA, on the CPU, where
TensorFlow runs float16 too (issue 39); and each choice that only a GPU changes, with a GPU faked."""

import json
import pathlib
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import zoo
from recipes import budgets
from recipes import catalog
from zoo import backbones
from zoo import classifier
from zoo import compat
from zoo import experiment
from zoo import training
from zoo.backbones import transformer_kernels
from zoo.backbones import mpnet_backbone

TEXTS = ["Shares rose after the results.",
         "The striker scored twice in the second half and the home side won the league title on goal difference.",
         "New phone.",
         "Parliament voted on the budget late on Tuesday, after a long debate over taxes, schools and hospitals."]


@pytest.fixture(autouse=True)
def float32_after():
    yield
    keras.mixed_precision.set_dtype_policy("float32")
    compat.set_op_determinism(True)  # What the rest of the suite runs with.


def test_masked_attention_in_float16_is_the_float32_one():
    """Padding keys get a large negative that float16 can hold (-1e9 is -inf there, and 0 x -inf is NaN)."""
    rng = np.random.default_rng(0)
    query, key, value = (rng.normal(size=(2, 6, 2, 4)).astype(np.float32) for _ in range(3))
    keep = np.ones((2, 1, 6), bool)
    keep[1, :, 3:] = False  # The second example has 3 real tokens.
    outputs = {dtype: transformer_kernels.attention(*(tf.constant(x, dtype) for x in (query, key, value)), 0.5,
                                                    keep=keep)
               for dtype in (tf.float16, tf.float32)}
    half = outputs[tf.float16].numpy().astype(np.float32)
    assert np.isfinite(half).all()
    np.testing.assert_allclose(half, outputs[tf.float32].numpy(), atol=5e-3)


def _small_mpnet_parts():
    network = mpnet_backbone.MPNetBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                           intermediate_dim=64, max_sequence_length=16, dropout=0.0)
    token_ids = [[0, 5, 9, 17, 2, 1, 1], [0, 33, 2, 1, 1, 1, 1]]  # <s> ... </s> <pad>
    inputs = {"token_ids": tf.constant(token_ids), "padding_mask": tf.constant(np.array(token_ids) != 1, tf.int32)}
    return network, inputs


# (backbone, options, sequence length); real weights where the family has them here: MiniLM-L3 (a keras-hub
# BertBackbone), GloVe. MPNet's own layers are checked on a small random network (`_small_mpnet_parts`).
FAMILIES = {
    "transformer": ("minilm_l3", {}, 64),
    "recurrent": ("glove_bilstm", {"units": 16, "max_tokens": 500}, 64),
    "bag_of_words": ("ngram_linear", {}, None),
}

# Largest differences from float32 allowed to the float16 computation of the same weights: float16 keeps 11
# significant bits (relative error 5e-4 per operation) over a few layers. Measured: MiniLM-L3's pooled features
# within 2e-3 (values of order 1), probabilities within 2e-4.
FEATURE_TOLERANCE = 1e-2
PROBABILITY_TOLERANCE = 5e-3


@pytest.mark.parametrize("family", sorted(FAMILIES) + ["mpnet"])
def test_inference_in_float16_agrees_with_float32(family):
    """The inference path (what validation, the frozen-prefix cache and evaluation run): pooled features and
    probabilities of a network built under mixed_float16, against its float32 copy (same weights)."""
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    keras.utils.set_random_seed(3)
    if family == "mpnet":
        network, inputs = _small_mpnet_parts()
        symbolic = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in inputs}
        half = keras.Model(symbolic, keras.layers.Dense(3, activation="softmax", dtype="float32", name="head")(
            network(symbolic)["pooled_output"]))
        full = classifier.computing_in(half, "float32")
        features = [classifier.network_of(c)(inputs, training=False)["pooled_output"] for c in (half, full)]
        probabilities = [c(inputs, training=False) for c in (half, full)]
    else:
        name, options, sequence_length = FAMILIES[family]
        parts = backbones.build(name, options, sequence_length, TEXTS * 4)
        half = classifier.build_core(parts, 3, "softmax")
        full = classifier.computing_in(half, "float32")
        inputs = classifier.preprocess(parts.preprocessor, tf.constant(TEXTS))
        features = [classifier.network_of(c)(inputs, training=False)["pooled_output"] for c in (half, full)]
        layout = backbones.input_layout(name, parts.preprocessor)
        probabilities = [classifier.run_core(c, inputs, layout) for c in (half, full)]
    assert "mixed_float16" in {layer.dtype_policy.name for layer in compat.all_layers(half)}
    features = [tf.sparse.to_dense(f) if isinstance(f, tf.SparseTensor) else f for f in features]
    features = [np.asarray(tf.cast(f, tf.float32)) for f in features]
    assert np.isfinite(features[0]).all() and np.abs(features[1]).max() > 0
    np.testing.assert_allclose(features[0], features[1], atol=FEATURE_TOLERANCE * np.abs(features[1]).max())
    probabilities = [np.asarray(p, np.float32) for p in probabilities]
    assert np.isfinite(probabilities[0]).all()
    np.testing.assert_allclose(probabilities[0], probabilities[1], atol=PROBABILITY_TOLERANCE)


# The tiny recipe of each family: (recipe, backbone options). bert_base is keras-hub's BERT at random initialisation,
# small (the tiny budget's architecture): the transformer family's training path; real weights are checked above.
RECIPES = {
    "transformer": "bert_base_bbc_news",
    "recurrent": "glove_bilstm_bbc_news",
    "bag_of_words": "ngram_linear_bbc_news",
}


def _train(tmp_path, recipe_name, jit_compile, **overrides):
    recipe = {**catalog.resolve(recipe_name, "tiny", overrides), "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="mixed_float16",
                                         jit_compile=jit_compile, family=backbones.family(recipe["backbone"]))
    metrics = experiment.train_and_evaluate(recipe, tmp_path / "run", runtime, export_dir=tmp_path / "exports")
    return tmp_path / "run", metrics


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("family", sorted(RECIPES))
def test_tiny_recipe_trains_in_mixed_float16_and_exports_float32(family, jit_compile, tmp_path):
    # The transformer without XLA trains its top layer on features of its frozen layers cached in float16 (validated
    # on the whole network); with XLA, the whole network, as on a GPU.
    options = {"backbone_options": {"trainable_layers": 1}} if family == "transformer" and not jit_compile else {}
    run, metrics = _train(tmp_path, RECIPES[family], jit_compile, epochs=2, patience=2, **options)
    config = json.loads((run / "config.json").read_text())["runtime"]
    assert (config["dtype_policy"], config["jit_compile"], config["deterministic"]) == (
        "mixed_float16", jit_compile, not jit_compile)
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2
    for row in history:
        assert all(np.isfinite(row[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy")), row
    assert np.isfinite(metrics["accuracy"]) and np.isfinite(metrics["macro_f1"])
    assert (metrics["caching_seconds"] is not None) == bool(options)
    info = json.loads((pathlib.Path(metrics["export"]) / "export_info.json").read_text())
    assert info["verification"]["ok"] and info["verification"]["compute_dtype"] == "float32"
    # The run saves the classifier alone: one core computing in float32, no optimizer (nor a replaced core).
    with zipfile.ZipFile(run / "model.keras") as archive, h5py.File(archive.open("model.weights.h5")) as weights:
        names = []
        weights.visit(names.append)
    assert not [n for n in names if "optimizer" in n] and not [n for n in names if n.startswith("layers/functional")]


def _export_devices(export):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((pathlib.Path(export) / "saved_model.pb").read_bytes())
    return {(node.op, node.device) for meta_graph in proto.meta_graphs
            for function in meta_graph.graph_def.library.function for node in function.node_def
            if "_traced_save" not in function.signature.name and "_traced_restore" not in function.signature.name}


def test_export_places_string_preprocessing_on_the_cpu(tmp_path):
    """A GPU host runs the string ops on the CPU (their only kernels) and only the model's tensors on the GPU."""
    _, metrics = _train(tmp_path, RECIPES["bag_of_words"], False)
    string_ops = {(op, device) for op, device in _export_devices(metrics["export"])
                  if op.startswith(("String", "Regex", "StaticRegex"))}
    assert {op for op, _ in string_ops} >= {"StringNGrams", "StaticRegexReplace"}
    assert {device for _, device in string_ops} == {"/device:CPU:0"}


class OptimizerState(keras.callbacks.Callback):
    """The optimizer's variables at the end of epoch `at` (`moment="end"`) or at the start of the first epoch run."""

    def __init__(self, moment, at=None):
        super().__init__()
        self.moment, self.at, self.state, self.optimizer = moment, at, None, None

    def _take(self):
        self.optimizer = self.model.optimizer
        self.state = [v.numpy().copy() for v in self.optimizer.variables]
        self.steps_at_this_scale = int(self.optimizer.step_counter.numpy())

    def on_epoch_end(self, epoch, logs=None):
        if self.moment == "end" and epoch + 1 == self.at:
            self._take()

    def on_epoch_begin(self, epoch, logs=None):
        if self.moment == "begin" and self.state is None:
            self._take()


def test_interrupted_mixed_float16_run_resumes_its_optimizer_and_loss_scale(tmp_path):
    from test_training import Interrupt

    recipe = {**catalog.resolve("ngram_linear_bbc_news", "tiny", {"epochs": 3, "patience": 3}),
              "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="mixed_float16", family="bag_of_words")
    run = tmp_path / "run"
    saved = OptimizerState("end", at=2)
    with pytest.raises(KeyboardInterrupt):  # After epoch 3, before its backup: the backup holds epoch 2.
        experiment.train_and_evaluate(recipe, run, runtime, callbacks=[saved, Interrupt(at=3)])
    assert isinstance(saved.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(saved.optimizer.inner_optimizer, training.Adam)  # The fused update, under the loss scale.
    assert saved.steps_at_this_scale == 4  # 2 epochs of 2 finite steps since the scale was set.
    restored = OptimizerState("begin")
    experiment.train_and_evaluate(recipe, run, runtime, callbacks=[restored])
    assert len(restored.state) == len(saved.state)
    for before, after in zip(saved.state, restored.state):
        np.testing.assert_array_equal(before, after)


def test_loss_scaling_unscales_the_fused_adamw_gradients_once_and_skips_overflows():
    """Keras' LossScaleOptimizer around the zoo's AdamW: a scaled gradient makes the unscaled float32 step (epsilon
    1 makes Adam's step depend on the gradient's size, so a gradient unscaled twice or not at all would show), and a
    step with an infinite gradient changes nothing but halves the scale."""
    def make(weights):
        return keras.Variable(weights), training.AdamW(learning_rate=0.1, weight_decay=0.01, epsilon=1.0)

    start = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    (scaled_var, inner), (plain_var, plain) = make(start), make(start)
    optimizer = keras.optimizers.LossScaleOptimizer(inner)
    optimizer.build([scaled_var])
    gradient = tf.constant([0.3, -2.0, 0.01, 1.0])
    scale = float(optimizer.dynamic_scale.numpy())
    optimizer.apply([gradient * scale], [scaled_var])
    plain.apply([gradient], [plain_var])
    np.testing.assert_allclose(scaled_var.numpy(), plain_var.numpy(), rtol=1e-6)
    assert not np.allclose(scaled_var.numpy(), start)

    before = scaled_var.numpy()
    optimizer.apply([tf.constant([np.inf, 0.0, 0.0, 0.0])], [scaled_var])
    np.testing.assert_array_equal(scaled_var.numpy(), before)
    assert float(optimizer.dynamic_scale.numpy()) == scale / 2
    assert int(inner.iterations.numpy()) == 1


def test_pure_16_bit_policies_are_refused():
    for policy in ("float16", "bfloat16"):
        with pytest.raises(ValueError, match=rf"Unknown dtype policy '{policy}'\. Allowed: \['auto', 'float32', "
                                             r"'mixed_float16', 'mixed_bfloat16'\] \(pure float16"):
            training.configure_runtime(dtype_policy=policy)


def test_xla_and_determinism_exclude_each_other():
    assert training.xla_and_determinism(None, None, "transformer", gpu=True) == (True, False)
    assert training.xla_and_determinism(None, None, "recurrent", gpu=True) == (False, True)
    assert training.xla_and_determinism(None, None, "transformer", gpu=False) == (False, True)
    assert training.xla_and_determinism(True, None, "bag_of_words", gpu=False) == (True, False)
    assert training.xla_and_determinism(None, True, "transformer", gpu=True) == (False, True)
    with pytest.raises(ValueError, match="jit_compile=True and deterministic=True exclude each other.*"
                                         "--nodeterministic for XLA, or --nojit_compile"):
        training.xla_and_determinism(True, True, "transformer", gpu=False)


@pytest.fixture
def fake_gpu(monkeypatch):
    """A machine with one GPU as TensorFlow's device listing sees it; hiding it is recorded, not done."""
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    hidden = []
    real_list = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [gpu] if kind == "GPU" and not hidden else real_list(kind))
    monkeypatch.setattr(tf.config, "set_visible_devices",
                        lambda devices, kind=None: hidden.append((list(devices), kind)))
    return hidden


def test_on_a_gpu_transformers_train_in_mixed_float16_with_xla(fake_gpu):
    runtime = training.configure_runtime(family="transformer")
    assert (runtime.dtype_policy, runtime.jit_compile, runtime.deterministic) == ("mixed_float16", True, False)
    assert runtime.device == "1 GPU" and fake_gpu == []
    assert keras.mixed_precision.dtype_policy().name == "mixed_float16"


def test_on_a_gpu_recurrent_models_train_in_mixed_float16_with_cudnn_not_xla(fake_gpu):
    runtime = training.configure_runtime(family="recurrent")
    assert (runtime.dtype_policy, runtime.jit_compile, runtime.deterministic) == ("mixed_float16", False, True)
    assert backbones.default_options("glove_bilstm")["use_cudnn"] == "auto"


def test_on_a_gpu_deterministic_bag_of_words_runs_on_the_cpu(fake_gpu):
    runtime = training.configure_runtime(family="bag_of_words")
    assert fake_gpu == [([], "GPU")]  # Hidden before TensorFlow uses a device.
    assert (runtime.dtype_policy, runtime.jit_compile, runtime.deterministic) == ("float32", False, True)
    assert runtime.device.startswith("CPU")


def test_on_a_gpu_bag_of_words_may_use_it_when_not_deterministic(fake_gpu):
    runtime = training.configure_runtime(family="bag_of_words", deterministic=False)
    assert fake_gpu == [] and runtime.device == "1 GPU" and runtime.dtype_policy == "mixed_float16"


def test_exported_recurrent_layers_use_the_portable_kernel():
    """A GloVe network trains with use_cudnn="auto" (cuDNN on a GPU); what ships is a copy with the portable kernel,
    whose graph CPU servers run, with the same weights."""
    parts = backbones.build("glove_bilstm", {"units": 4, "max_tokens": 200, "layers": 2}, 8, TEXTS)
    core = classifier.build_core(parts, 2, "sigmoid")
    recurrent = lambda model: [layer for layer in compat.all_layers(model)  # noqa: E731
                               if isinstance(layer, keras.layers.LSTM)]
    assert {layer.use_cudnn for layer in recurrent(core)} == {"auto"}
    shipped = classifier.computing_in_float32(core)
    assert shipped is not core and {layer.use_cudnn for layer in recurrent(shipped)} == {False}
    for a, b in zip(core.get_weights(), shipped.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert classifier.computing_in_float32(shipped) is shipped


def test_benchmark_runs_every_backbone_on_a_gpu():
    assert budgets.benchmark_skip("mpnet_base") is not None  # Too slow for the 2-core matrix.
    assert budgets.benchmark_skip("mpnet_base", gpu=True) is None
    assert all(budgets.benchmark_skip(name, gpu=True) is None for name in backbones.names())
