"""`MPNetBackbone` (Song et al., 2020), written in keras-hub's style since keras-hub has none: a functional
`keras_hub.models.Backbone` with `sequence_output` and `pooled_output`, after Hugging Face's `MPNetModel`, which it
equals on the same token ids (tests/test_transformer_parity.py). MPNet is BERT's layer stack with three differences:
a learned relative-position bias (T5's buckets, one table shared by all layers) added to every layer's attention
scores, no segment embeddings, and absolute positions that count real tokens from padding_idx + 1 (as RoBERTa).
It computes with the zoo's transformer kernels and offers what `transformer.Transformer` reads of a network."""

import math

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from zoo.backbones import transformer_kernels as kernels

PADDING_IDX = 1  # Hugging Face's MPNetEmbeddings: positions of real tokens start after it.


def relative_position_buckets(length, num_buckets=32, max_distance=128):
    """[length, length] int32: the bucket of each (query, key) offset, as Hugging Face's
    `MPNetEncoder.relative_position_bucket` (T5's, bidirectional): half the buckets per direction, exact up to a
    quarter of them, logarithmic up to `max_distance`."""
    positions = tf.range(length)
    n = positions[:, None] - positions[None, :]  # -(key - query)
    half = num_buckets // 2
    buckets = tf.cast(n < 0, tf.int32) * half
    n = tf.abs(n)
    max_exact = half // 2
    # Truncated toward zero, as torch's .to(long); n >= max_exact > 0 wherever it is used.
    large = max_exact + tf.cast(
        tf.math.log(tf.cast(tf.maximum(n, 1), tf.float32) / max_exact) / math.log(max_distance / max_exact)
        * (half - max_exact), tf.int32)
    return buckets + tf.where(n < max_exact, n, tf.minimum(large, half - 1))


class RelativePositionBias(keras.layers.Layer):
    """The learned [buckets, heads] table of MPNet's relative-position attention bias: hidden states
    [batch, length, ...] in, the bias [1, heads, length, length] out (one for every example: it depends only on
    the length)."""

    def __init__(self, num_buckets, num_heads, max_distance=128, **kwargs):
        super().__init__(**kwargs)
        self.num_buckets, self.num_heads, self.max_distance = num_buckets, num_heads, max_distance

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.num_buckets, self.num_heads), name="embeddings",
                                          initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def call(self, hidden):
        buckets = relative_position_buckets(tf.shape(hidden)[1], self.num_buckets, self.max_distance)
        bias = tf.gather(tf.convert_to_tensor(self.embeddings), buckets)  # [q, k, heads]
        return tf.cast(tf.transpose(bias, [2, 0, 1])[tf.newaxis], self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_buckets": self.num_buckets, "num_heads": self.num_heads,
                "max_distance": self.max_distance}


class MPNetEmbedding(keras.layers.Layer):
    """Token and position embeddings (positions from the padding mask: padding_idx + 1 onward for real tokens,
    padding_idx for padding), then layer norm and dropout."""

    def __init__(self, vocabulary_size, max_positions, hidden_dim, dropout, layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.max_positions, self.hidden_dim = vocabulary_size, max_positions, hidden_dim
        self.dropout, self.layer_norm_epsilon = dropout, layer_norm_epsilon
        self.token_embedding = keras.layers.Embedding(vocabulary_size, hidden_dim, dtype=self.dtype_policy,
                                                      name="token_embedding")
        self.position_embedding = keras.layers.Embedding(max_positions, hidden_dim, dtype=self.dtype_policy,
                                                         name="position_embedding")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=self.dtype_policy,
                                                          name="layer_norm")
        self.dropout_layer = kernels.Dropout16(dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding.build(input_shape)
        self.layer_norm.build(tuple(input_shape) + (self.hidden_dim,))

    def call(self, token_ids, padding_mask, training=None):
        mask = tf.cast(padding_mask, tf.int32)
        positions = tf.cumsum(mask, axis=-1) * mask + PADDING_IDX
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        return self.dropout_layer(self.layer_norm(x), training=training)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "max_positions": self.max_positions,
                "hidden_dim": self.hidden_dim, "dropout": self.dropout, "layer_norm_epsilon": self.layer_norm_epsilon}


class MPNetLayer(keras.layers.Layer):
    """One MPNet transformer layer (post-layer-norm, as BERT's): self-attention whose scores get the
    relative-position bias, then the feed-forward block with the exact GELU in float32 (`kernels.gelu_float32`)."""

    def __init__(self, num_heads, hidden_dim, intermediate_dim, dropout, layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.hidden_dim, self.intermediate_dim = num_heads, hidden_dim, intermediate_dim
        self.dropout, self.layer_norm_epsilon = dropout, layer_norm_epsilon
        self.head_dim = hidden_dim // num_heads
        dense = lambda units, name, **kw: kernels.FlatDense(units, dtype=self.dtype_policy, name=name, **kw)  # noqa
        self.query_dense, self.key_dense = dense(hidden_dim, "query"), dense(hidden_dim, "key")
        self.value_dense, self.output_dense = dense(hidden_dim, "value"), dense(hidden_dim, "attention_output")
        self.intermediate_dense = dense(intermediate_dim, "intermediate", activation=kernels.gelu_float32)
        self.feedforward_output_dense = dense(hidden_dim, "output")
        norm = lambda name: keras.layers.LayerNormalization(  # noqa: E731
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        self.attention_layer_norm, self.feedforward_layer_norm = norm("attention_layer_norm"), norm("output_norm")
        drop = lambda name: kernels.Dropout16(dropout, dtype=self.dtype_policy, name=name)  # noqa: E731
        self.attention_dropout = drop("attention_probabilities_dropout")
        self.attention_output_dropout, self.feedforward_dropout = drop("attention_dropout"), drop("output_dropout")

    def build(self, input_shape):
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense, self.intermediate_dense,
                      self.attention_layer_norm, self.feedforward_layer_norm):
            layer.build(input_shape)
        self.feedforward_output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))

    def call(self, x, padding_mask, position_bias, training=None):
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        heads = lambda d: tf.reshape(d(x), [batch, length, self.num_heads, self.head_dim])  # noqa: E731
        # Padding keys get no weight, as Hugging Face's mask gives them (its dtype's lowest score).
        context = kernels.attention(heads(self.query_dense), heads(self.key_dense), heads(self.value_dense),
                                 1 / math.sqrt(self.head_dim), keep=padding_mask[:, tf.newaxis, :],
                                 bias=position_bias,
                                 dropout=lambda p: self.attention_dropout(p, training=training))
        context = tf.reshape(context, [batch, length, self.hidden_dim])
        attended = self.attention_layer_norm(
            self.attention_output_dropout(self.output_dense(context), training=training) + x)
        feedforward = self.feedforward_output_dense(self.intermediate_dense(attended))
        return self.feedforward_layer_norm(self.feedforward_dropout(feedforward, training=training) + attended)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon}


@keras.saving.register_keras_serializable(package="textzoo")
class MPNetBackbone(keras_hub.models.Backbone):
    """MPNet: token ids and padding mask in, {"sequence_output": [batch, length, hidden], "pooled_output": the first
    token through a tanh dense layer (MPNet's pooler)} out.

    Args:
        vocabulary_size: int. Tokens in the vocabulary.
        num_layers, num_heads, hidden_dim, intermediate_dim: int. The transformer's shape.
        dropout: float. Dropout of embeddings, attention probabilities and residual branches.
        max_sequence_length: int. The most tokens an input holds (the position table has 2 more rows: padding_idx
            and the one before it).
        num_buckets, max_distance: int. The relative-position buckets.
        layer_norm_epsilon: float.
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, dropout=0.1,
                 max_sequence_length=512, num_buckets=32, max_distance=128, layer_norm_epsilon=1e-5, dtype=None,
                 **kwargs):
        # === Layers ===
        self.embeddings = MPNetEmbedding(vocabulary_size, max_sequence_length + PADDING_IDX + 1, hidden_dim, dropout,
                                         layer_norm_epsilon, dtype=dtype, name="embeddings")
        self.relative_attention_bias = RelativePositionBias(num_buckets, num_heads, max_distance, dtype=dtype,
                                                            name="relative_attention_bias")
        self.transformer_layers = [MPNetLayer(num_heads, hidden_dim, intermediate_dim, dropout, layer_norm_epsilon,
                                              dtype=dtype, name=f"transformer_layer_{i}") for i in range(num_layers)]
        self.pooled_dense = keras.layers.Dense(hidden_dim, activation="tanh", dtype=dtype, name="pooled_dense")

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_ids, padding_mask)
        x = self.run_layers(x, padding_mask)
        super().__init__(inputs={"token_ids": token_ids, "padding_mask": padding_mask},
                         outputs={"sequence_output": x, "pooled_output": self.pooled_dense(x[:, 0, :])},
                         dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size, self.num_layers, self.num_heads = vocabulary_size, num_layers, num_heads
        self.hidden_dim, self.intermediate_dim, self.dropout = hidden_dim, intermediate_dim, dropout
        self.max_sequence_length, self.num_buckets, self.max_distance = max_sequence_length, num_buckets, max_distance
        self.layer_norm_epsilon = layer_norm_epsilon

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "num_layers": self.num_layers,
                "num_heads": self.num_heads, "hidden_dim": self.hidden_dim, "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout, "max_sequence_length": self.max_sequence_length,
                "num_buckets": self.num_buckets, "max_distance": self.max_distance,
                "layer_norm_epsilon": self.layer_norm_epsilon}

    # What `transformer.Transformer` reads of a network (declared by `bert_backbone.BertBackbone`).
    def embedding_layers(self):
        return [self.embeddings, self.relative_attention_bias]

    @property
    def embeddings_output(self):
        return self.embeddings.output

    def run_layers(self, x, padding_mask, start=0):
        bias = self.relative_attention_bias(x)
        for layer in self.transformer_layers[start:]:
            x = layer(x, padding_mask=padding_mask, position_bias=bias)
        return x


def hf_weights_into(network, tensors):
    """Sets `network`'s weights from a Hugging Face MPNetModel's tensors ({name: array}, Linear kernels [out, in]).
    Every weight of the network must be set (the position_ids buffer is not a weight)."""
    prefix = next(n[:-len("embeddings.word_embeddings.weight")] for n in tensors
                  if n.endswith("embeddings.word_embeddings.weight"))

    def get(name):
        return np.asarray(tensors[prefix + name])

    def dense(layer, name):
        layer.kernel.assign(get(f"{name}.weight").T)
        layer.bias.assign(get(f"{name}.bias"))

    def norm(layer, name):
        layer.gamma.assign(get(f"{name}.weight"))
        layer.beta.assign(get(f"{name}.bias"))

    embeddings = network.embeddings
    embeddings.token_embedding.embeddings.assign(get("embeddings.word_embeddings.weight"))
    embeddings.position_embedding.embeddings.assign(get("embeddings.position_embeddings.weight"))
    norm(embeddings.layer_norm, "embeddings.LayerNorm")
    network.relative_attention_bias.embeddings.assign(get("encoder.relative_attention_bias.weight"))
    for i, layer in enumerate(network.transformer_layers):
        at = f"encoder.layer.{i}"
        for sublayer, name in ((layer.query_dense, "attention.attn.q"), (layer.key_dense, "attention.attn.k"),
                               (layer.value_dense, "attention.attn.v"), (layer.output_dense, "attention.attn.o"),
                               (layer.intermediate_dense, "intermediate.dense"),
                               (layer.feedforward_output_dense, "output.dense")):
            dense(sublayer, f"{at}.{name}")
        norm(layer.attention_layer_norm, f"{at}.attention.LayerNorm")
        norm(layer.feedforward_layer_norm, f"{at}.output.LayerNorm")
    dense(network.pooled_dense, "pooler.dense")
