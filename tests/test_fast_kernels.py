"""The transformer kernels of `zoo.backbones.transformer_kernels` (`FlatDense`, `attention`,
`BatchMatMulAttention`): Keras' outputs, and the oneDNN fusions they exist for (what ran, read from a profile; not
how fast: speeds are the benchmark's)."""

import platform

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import timing
from zoo import compat
from zoo import training
from zoo.backbones import bert_backbone
from zoo.backbones import transformer_kernels
from zoo.backbones import mpnet_backbone


def test_flat_dense_is_keras_dense_on_inputs_of_any_rank():
    keras.utils.set_random_seed(1)
    layer = transformer_kernels.FlatDense(24, activation=transformer_kernels.gelu_float32)
    stock = keras.layers.Dense(24, activation=transformer_kernels.gelu_float32)
    x = np.random.default_rng(0).standard_normal((3, 7, 16)).astype("float32")
    layer.build(x.shape), stock.build(x.shape)
    stock.set_weights(layer.get_weights())
    for inputs in (x, x[0], x[None]):
        np.testing.assert_allclose(layer(inputs), stock(inputs), atol=1e-6)
    symbolic = layer(keras.Input((None, 16)))
    assert tuple(symbolic.shape) == (None, None, 24)
    # Traced with an unknown batch and length, as a SavedModel signature is: the static shape is kept.
    traced = tf.function(layer).get_concrete_function(tf.TensorSpec([None, 7, 16]))
    assert traced.output_shapes.as_list() == [None, 7, 24]


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_batch_matmul_attention_is_keras_attention(dtype):
    keras.mixed_precision.set_dtype_policy(dtype)
    try:
        keras.utils.set_random_seed(2)
        stock = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8, dropout=0.1)
        ours = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8, dropout=0.1)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 11, 32)).astype("float32")
        keep = np.arange(11)[None] < np.array([11, 6, 1])[:, None]
        mask = np.repeat(keep[:, None, :], 11, axis=1)  # keras-hub's padding mask: [batch, query, key]
        stock(x, x, attention_mask=mask), ours(x, x, attention_mask=mask)
        ours.set_weights(stock.get_weights())
        ours.__class__ = transformer_kernels.BatchMatMulAttention
        atol = 1e-5 if dtype == "float32" else 2e-2
        for attention_mask in (mask, None):
            np.testing.assert_allclose(ours(x, x, attention_mask=attention_mask),
                                       stock(x, x, attention_mask=attention_mask), atol=atol)
        # Masked keys get no weight: changing them changes nothing.
        changed = np.where(keep[..., None], x, 100.0).astype("float32")
        np.testing.assert_allclose(ours(x, changed, attention_mask=mask)[0], ours(x, x, attention_mask=mask)[0],
                                   atol=atol)
        # Training draws the probabilities' dropout mask: outputs change; with scores asked for, Keras' own path.
        assert np.abs(ours(x, x, attention_mask=mask, training=True) - ours(x, x, attention_mask=mask)).max() > 1e-3
        out, scores = ours(x, x, attention_mask=mask, return_attention_scores=True)
        assert tuple(scores.shape) == (3, 4, 11, 11)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


onednn = pytest.mark.skipif(training.onednn_off() or platform.machine().lower() not in ("x86_64", "amd64"),
                            reason="oneDNN's fusions are what is tested; TensorFlow runs oneDNN by default only on "
                                   "CPUs with AVX512_VNNI, AVX512_BF16 or AMX")


@onednn
def test_bert_layers_run_as_onednns_fused_kernels(tmp_path):
    network = bert_backbone.BertBackbone(activation="gelu", vocabulary_size=100, num_layers=2, num_heads=2,
                                         hidden_dim=32, intermediate_dim=64, max_sequence_length=16)
    layer = network.transformer_layers[0]  # Its ops alone (the embeddings' lookups run selects of their own).
    x = tf.constant(np.random.default_rng(0).standard_normal((4, 16, 32)), tf.float32)
    padding_mask = tf.constant(np.arange(16)[None] < np.array([16, 9, 3, 12])[:, None])
    forward = tf.function(lambda x: layer(x, padding_mask=padding_mask))
    forward(x)
    ran = timing.op_seconds(lambda: forward(x).numpy(), tmp_path, layer.name)["op_type_seconds"]
    # Feed-forward: MatMul, BiasAdd and the exact GELU in one kernel (Keras' Dense left Erf to run on its own);
    # attention: the scores' scaling and mask fused into their BatchMatMul, no select over them.
    assert "_MklNativeFusedMatMul" in ran and "_MklFusedBatchMatMulV2" in ran, ran
    assert not {"Erf", "SelectV2"} & set(ran), " ".join(sorted(ran))


KERAS_CLASSES = {transformer_kernels.FlatDense: keras.layers.Dense,
                 transformer_kernels.BatchMatMulAttention: keras.layers.MultiHeadAttention,
                 transformer_kernels.Dropout16: keras.layers.Dropout}


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_weights_saved_with_keras_layers_load_into_the_fast_ones(family, tmp_path):
    """Keras names a functional model's layers in a weights file by their class: a layer converted where Keras
    saves it by class (a top-level layer of keras-hub's functional BertBackbone) would not find the weights of a
    classifier saved with Keras' own classes (before the conversion existed)."""
    small = dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
                 max_sequence_length=16)
    make = (lambda: bert_backbone.BertBackbone(activation="gelu", **small)) if family == "bert" else (
        lambda: mpnet_backbone.MPNetBackbone(**small))
    keras.utils.set_random_seed(5)
    saved = make()
    for layer in compat.all_layers(saved):
        layer.__class__ = KERAS_CLASSES.get(type(layer), type(layer))
    saved.save_weights(tmp_path / "keras_layers.weights.h5")
    keras.utils.set_random_seed(6)
    loaded = make()
    loaded.load_weights(tmp_path / "keras_layers.weights.h5")
    for a, b in zip(saved.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)
