"""The zoo's transformer kernels, shared by BERT and MPNet: GELUs computed in float32 with closed-form gradients,
16-bit dropout masks, a Dense that multiplies as one matrix, and batched-matmul self-attention. Each computes what
the Keras or keras-hub layer it stands in for computes (tests/test_fast_kernels.py), in fewer or fused ops."""

import math

import keras
import tensorflow as tf

from zoo import compat

_GELU_C = math.sqrt(2 / math.pi)


@tf.custom_gradient
def gelu_approximate_float32(x):
    """keras-hub's tanh-approximate GELU, computed in float32 whatever `x`'s dtype, with its derivative in closed form.

    Under mixed_bfloat16 the feed-forward GELU and autodiff's chain of products for its gradient were the largest
    block of a fine-tuning step's elementwise time on CPU: TensorFlow's CPU kernels are vectorised for float32, not
    bfloat16, and one expression replaces the chain (docs/measurements.md#gelu-float32). Only rounding differs from
    `keras_hub`'s `gelu_approximate` (tested against it, value and gradient).
    """
    x32 = tf.cast(x, tf.float32)
    t = tf.tanh(_GELU_C * (x32 + 0.044715 * x32 * x32 * x32))
    scope = tf.get_current_name_scope()

    def grad(dy):
        # Named as autodiff names gradients (gradient_tape/<the forward's scope>/), not at the graph's root:
        # profiles (`benchmarks.timing.op_category`) attribute ops to the model by their scope.
        with tf.name_scope(f"gradient_tape/{scope}/" if scope else "gradient_tape/"):
            derivative = 0.5 * (1 + t) + 0.5 * x32 * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * x32 * x32)
            return tf.cast(tf.cast(dy, tf.float32) * derivative, x.dtype)

    return tf.cast(0.5 * x32 * (1 + t), x.dtype), grad


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@tf.custom_gradient
def gelu_float32(x):
    """The exact (erf) GELU of Hugging Face BERT checkpoints (`hidden_act: "gelu"`), computed in float32 whatever
    `x`'s dtype, with its derivative in closed form (Phi(x) + x phi(x)), as `gelu_approximate_float32` does for the
    tanh form; the two differ by up to 5e-4 per activation, which parity with a checkpoint's reference sees. Faster
    than the tanh form (docs/measurements.md#gelu-float32)."""
    x32 = tf.cast(x, tf.float32)
    cdf = 0.5 * (1 + tf.math.erf(x32 * _SQRT_HALF))
    scope = tf.get_current_name_scope()

    def grad(dy):
        with tf.name_scope(f"gradient_tape/{scope}/" if scope else "gradient_tape/"):
            derivative = cdf + x32 * tf.exp(-0.5 * x32 * x32) * _INV_SQRT_2PI
            return tf.cast(tf.cast(dy, tf.float32) * derivative, x.dtype)

    return tf.cast(x32 * cdf, x.dtype), grad


# The feed-forward activation of a BertBackbone, by name: "gelu_approximate" (keras-hub's, and google-research/bert's
# checkpoints'), "gelu" (Hugging Face BERT's `hidden_act: "gelu"`).
ACTIVATIONS = {"gelu_approximate": gelu_approximate_float32, "gelu": gelu_float32}


# Dropout keeps an element where a 16-bit random number is at least this share of 2^16: the rate is met within
# 2^-17 (0.1 -> 0.10000610...; keras' stateless_dropout compares a uniform drawn in the input's dtype, and
# bfloat16's nearest value to 0.1 is 0.10009765625).
_DROPOUT_BITS = 16


def dropout_16bit(x, rate, seed):
    """Inverted dropout of `x` (kept elements scaled by 1 / (1 - rate), as Keras' `Dropout`), its keep mask drawn
    as 16-bit random integers, two from each 32-bit word of TensorFlow's stateless Philox generator.

    What Keras' TensorFlow backend runs instead (`tf.nn.experimental.stateless_dropout`) draws one uniform float per
    element in the input's dtype, and converting Philox's words to bfloat16 uniforms was the largest elementwise op
    of a full fine-tuning step (attention probabilities: batch x heads x length^2 elements per layer;
    docs/measurements.md#dropout-16bit). Raw words cost a fraction of that and half as many are drawn. Only the
    random stream differs: each element is kept independently with probability 1 - rate (to 2^-17)."""
    x = tf.convert_to_tensor(x)
    threshold = round(rate * 2 ** _DROPOUT_BITS)
    if threshold >= 2 ** _DROPOUT_BITS:
        return tf.zeros_like(x)
    count = tf.size(x)
    words = tf.random.stateless_uniform([(count + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count]
    keep = tf.reshape(halves, tf.shape(x)) >= tf.constant(threshold, tf.uint16)
    return tf.where(keep, x * tf.constant(1.0 / (1.0 - rate), x.dtype), tf.zeros_like(x))


class Dropout16(keras.layers.Dropout):
    """Keras' `Dropout` whose training-time mask is `dropout_16bit`'s (TensorFlow backend, no noise_shape); the
    same layer otherwise (config, seed generator, identity at inference). Never saved by this name: BERT layers
    make their Dropout layers when built, and `BertBackbone` converts them (`_use_fast_kernels`)."""

    def call(self, inputs, training=False):
        if not training or self.rate <= 0 or self.noise_shape is not None or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training)
        # The seed as Keras' TensorFlow backend draws it for its own dropout.
        return dropout_16bit(inputs, self.rate, compat.cast_seed(self.seed_generator.next()))


# `FlatDense` and `BatchMatMulAttention` compute as Keras' own layers in training (training=True): training epochs
# ran slower with them, inference (evaluation, caching the frozen layers, exports) faster
# (docs/measurements.md#kernels-in-training).

class FlatDense(keras.layers.Dense):
    """Keras' `Dense` that multiplies a [..., features] input as one [N, features] matrix: same config, weights and
    outputs. Keras' TensorFlow backend multiplies a rank-3 input by `tensordot` (Reshape, MatMul, Reshape), then
    adds the bias and applies the activation to the reshaped result, so grappler's oneDNN remapper cannot fuse
    them: a BERT feed-forward layer ran its MatMul, BiasAdd, and the GELU's Erf, Mul and AddV2 as separate passes
    over [batch, length, 1536] (docs/measurements.md#flat-dense).
    On a 2-D input, MatMul, BiasAdd and the GELU become one `_MklNativeFusedMatMul` (float32 and bfloat16).
    Inference only (the note above); never saved by this name: BERT layers make their Dense layers when built
    and `BertBackbone` converts them."""

    def call(self, inputs, training=None):
        if training or len(inputs.shape) <= 2 or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training)
        flat = super().call(tf.reshape(inputs, [-1, inputs.shape[-1]]), training=training)
        out = tf.reshape(flat, tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        out.set_shape(inputs.shape[:-1].concatenate([self.units]))
        return out


def masked_score(dtype):
    """What a masked attention score gets added: a large negative that softmax gives no weight, representable in
    `dtype` (Keras' own `Softmax` values): -1e9 overflows float16 (max 65504) to -inf, and 0 x -inf is NaN."""
    return -3e4 if tf.as_dtype(dtype) == tf.float16 else -1e9


def attention(query, key, value, scale, keep=None, bias=None, dropout=None):
    """Dot-product attention of [batch, length, heads, head_dim] projections: softmax(query key^T * scale + bias +
    masked keys' large negative) value, as [batch, length, heads, head_dim]; `keep` [batch, 1 or query length,
    key length] (True: attend), `bias` broadcast to [batch, heads, query length, key length], `dropout` applied to
    the probabilities.

    Why not Keras' `MultiHeadAttention._compute_attention`: its two einsums ran as _MklEinsum or as transposes of
    the [batch, heads, length, length] scores, and its masked softmax as two SelectV2 passes over them; here the
    scores come from one BatchMatMul of head-major tensors, scaling and the mask are one Mul and one AddV2 that
    oneDNN's remapper fuses into the BatchMatMul where it can (`_MklFusedBatchMatMulV2`), and only [batch, length,
    hidden]-sized tensors are transposed (docs/measurements.md#batched-attention). Rows whose every key is masked
    (padding queries) get a softmax over all keys where Keras gives zeros: nothing reads them (later layers mask
    them as keys, pooling skips them)."""
    heads_first = lambda x: tf.transpose(x, [0, 2, 1, 3])  # noqa: E731
    scores = tf.matmul(heads_first(query), heads_first(key), transpose_b=True) * tf.cast(scale, query.dtype)
    if bias is not None:
        scores += bias
    if keep is not None:
        scores += ((1 - tf.cast(keep, scores.dtype)) * masked_score(scores.dtype))[:, tf.newaxis]
    probabilities = _softmax(scores)
    if dropout is not None:
        probabilities = dropout(probabilities)
    return heads_first(tf.matmul(probabilities, heads_first(value)))


def _softmax(scores):
    """Softmax over the last axis; float16 scores are normalised in float32 (a float16 sum of exponentials over a
    row of hundreds of keys keeps 11 bits). bfloat16 scores keep their own (float32's range; the bf16 rewrite's
    kernels)."""
    if scores.dtype != tf.float16:
        return tf.nn.softmax(scores, axis=-1)
    return tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), tf.float16)


class BatchMatMulAttention(compat.FastAttention):
    """Keras' `MultiHeadAttention` (same config, weights and outputs) computing self-attention with `attention`
    where `compat.FastAttention` says it applies (inference), Keras' own computation elsewhere. Never saved by this
    name: keras-hub's TransformerEncoder makes its attention layer when built and `BertBackbone` converts it."""

    def fast_attention(self, query, key, value, scale, keep=None, dropout=None):
        return attention(query, key, value, scale, keep=keep, dropout=dropout)
