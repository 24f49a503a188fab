"""BERT backbones (keras-hub `BertBackbone`): `bert_small` (all-MiniLM-L6-v2 here), `minilm_l3`
(paraphrase-MiniLM-L3-v2) and `bert_base`.

Weights come from `zoo.pretrained.BERT_WEIGHTS` (keras-hub preset, else the registry package, else a local
checkpoint). `bert_base` without reachable weights falls back to random initialisation, flagged in the logs and in
`provenance["pretrained"] = False`, which every result file carries.
"""

import copy
import json
import logging
import math
import pathlib

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from zoo import assets
from zoo import compat
from zoo import pretrained
from zoo.backbones import Backbone
from zoo.backbones import BackboneParts
from zoo.backbones import FrozenPrefix
from zoo.backbones import InputLayout

# keras-hub's default `truncate="round_robin"` emits TFText>RoundRobinTrim, which TF Serving 2.12-2.19 do not
# link; "waterfall" gives the same result for one segment with core ops only.
TRUNCATE = "waterfall"

# bert-base-uncased shapes, for random initialisation when no weights can be had.
_RANDOM_ARCHITECTURES = {
    "bert_small": dict(num_layers=4, num_heads=8, hidden_dim=512, intermediate_dim=2048),
    "minilm_l3": dict(num_layers=3, num_heads=12, hidden_dim=384, intermediate_dim=1536),
    "bert_base": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072),
}
_VOCABULARY_SIZE = 30522
_MAX_POSITIONS = 512



_GELU_C = math.sqrt(2 / math.pi)


@tf.custom_gradient
def gelu_approximate_float32(x):
    """keras-hub's tanh-approximate GELU, computed in float32 whatever `x`'s dtype, with its derivative in closed form.

    Under mixed_bfloat16 the feed-forward GELU and autodiff's chain of products for its gradient were the largest
    block of a fine-tuning step's elementwise time on CPU (profiled in `benchmarks.timing.full_finetuning`):
    TensorFlow's CPU kernels are vectorised for float32, not bfloat16, and one expression replaces the chain. On
    Reuters R8 (batch 32, AMX) full fine-tuning steps ran 9-10 % faster; the same closed form in bfloat16 gained
    nothing. Only rounding differs from `keras_hub`'s `gelu_approximate` (tested against it, value and gradient).
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
    tanh form; the two differ by up to 5e-4 per activation, which parity with a checkpoint's reference sees. Forward
    and backward of a 32x128x1536 bfloat16 activation: 14.1 ms, the tanh form 22.6 ms (2-core AMD EPYC)."""
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
# 2^-17 (0.1 -> 0.100006; keras' stateless_dropout compares a uniform drawn in the input's dtype, bfloat16's
# 0.1 being 0.1001).
_DROPOUT_BITS = 16


def dropout_16bit(x, rate, seed):
    """Inverted dropout of `x` (kept elements scaled by 1 / (1 - rate), as Keras' `Dropout`), its keep mask drawn
    as 16-bit random integers, two from each 32-bit word of TensorFlow's stateless Philox generator.

    What Keras' TensorFlow backend runs instead (`tf.nn.experimental.stateless_dropout`) draws one uniform float per
    element in the input's dtype, and converting Philox's words to bfloat16 uniforms was the largest elementwise op
    of a full fine-tuning step (attention probabilities: batch x heads x length^2 elements per layer; 13 % of a
    32x256 R8 step's op time, profiled). Raw words cost a fraction of that and half as many are drawn. Only the
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


# Why `FlatDense` and `BatchMatMulAttention` compute as Keras' own layers in training (training=True): with both in
# training, Reuters R8's quick recipe (top layer trained on cached features, mixed_bfloat16, bucketed batches) ran its
# second epoch in 75.4 and 79.2 s against 41.7 and 39.5 s with Keras' layers (2-core AMD EPYC, fresh process per fit,
# alternated; first epochs alike, 95-96 s), although whole-network training steps at fixed shapes, timed in one
# process in turn, were 6-9 % faster with them. Inference (evaluation, caching the frozen layers, exports) is where
# their gain was measured.

class FlatDense(keras.layers.Dense):
    """Keras' `Dense` that multiplies a [..., features] input as one [N, features] matrix: same config, weights and
    outputs. Keras' TensorFlow backend multiplies a rank-3 input by `tensordot` (Reshape, MatMul, Reshape), then
    adds the bias and applies the activation to the reshaped result, so grappler's oneDNN remapper cannot fuse
    them: a BERT feed-forward layer ran its MatMul, BiasAdd, and the GELU's Erf, Mul and AddV2 as separate passes
    over [batch, length, 1536] (profiled served bf16-at-load: the GELU and bias took more time than the MatMul).
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
    hidden]-sized tensors are transposed. Measured on a [32, 128, 12, 32] attention (2-core AMD EPYC): 29.2 ->
    12.4 ms in float32, 19.8 -> 7.6 ms rewritten to bfloat16. Rows whose every key is masked (padding queries)
    get a softmax over all keys where Keras gives zeros: nothing reads them (later layers mask them as keys,
    pooling skips them)."""
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


@keras.saving.register_keras_serializable(package="textzoo")
class BertBackbone(keras_hub.models.BertBackbone):
    """keras-hub's BertBackbone (same config, weights and outputs) whose feed-forward layers use the checkpoint's
    GELU (`activation`: a key of `ACTIVATIONS`) computed in float32, and whose dropout layers draw their masks as
    `Dropout16`. Registered, so that a saved classifier loads with it.

    Args:
        activation: str. "gelu_approximate" (keras-hub's own) or "gelu" (exact, as Hugging Face BERT checkpoints).
        **kwargs: keras-hub BertBackbone's arguments.
    """

    def __init__(self, activation="gelu_approximate", **kwargs):
        super().__init__(**kwargs)
        self.hidden_activation = _check_activation(activation)
        _use_fast_kernels(self)

    def get_config(self):
        return {**super().get_config(), "activation": self.hidden_activation}

    # What `Transformer` (pooling, frozen prefixes) reads of a network: the interface MPNet's network offers too.
    def embedding_layers(self):
        """The layers before the transformer layers that hold weights (frozen with a frozen prefix)."""
        return [self.token_embedding, self.position_embedding, self.segment_embedding, self.embeddings_layer_norm]

    @property
    def embeddings_output(self):
        return self.embeddings_dropout.output

    def run_layers(self, x, padding_mask, start=0):
        """Transformer layers `start`.. on hidden states `x`."""
        for layer in self.transformer_layers[start:]:
            x = layer(x, padding_mask=padding_mask)
        return x

    @classmethod
    def of(cls, network, activation="gelu_approximate"):
        """`network`, a keras-hub BertBackbone (as `from_preset` returns it), made one of this class in place: the
        same layers and weights. keras-hub's `from_preset` builds the class its preset names and refuses
        subclasses; copying into a second model (from_config + set_weights) took ~1 s per bert_small build. A
        network of this class already (a preset saved from one) is returned as it is."""
        if isinstance(network, cls):
            return network
        if type(network) is not keras_hub.models.BertBackbone:
            raise TypeError(f"Expected a keras_hub.models.BertBackbone, received {type(network).__name__}.")
        _check_activation(activation)
        compat.become(network, cls)  # Adds no state beyond the activation's name: it only swaps kernels.
        network.hidden_activation = activation
        _use_fast_kernels(network)
        return network


def basic_normalize(inputs, uncased, strip_accents):
    """Hugging Face BasicTokenizer's normalization of strings, with core TensorFlow ops and tf-text's NormalizeUTF8:
    NUL, U+FFFD and control characters (not tab, newline, return) dropped, every whitespace character made a space
    (`_clean_text`); then, for uncased vocabularies, Unicode lowercasing, and accents stripped (NFD, marks
    removed)."""
    text = tf.convert_to_tensor(inputs, dtype=tf.string)
    text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}]", " ")
    text = tf.strings.regex_replace(text, r"[\x{0}\x{FFFD}\p{Cc}\p{Cf}]", "")
    if uncased:
        text = tf.strings.lower(text, encoding="utf-8")
    if strip_accents:
        text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFD"), r"\p{Mn}", "")
    return text


@keras.saving.register_keras_serializable(package="textzoo")
class BertTokenizer(keras_hub.models.BertTokenizer):
    """keras-hub's BertTokenizer (same vocabulary, splitting and WordPiece) whose text normalization is Hugging
    Face's BasicTokenizer's, with which BERT checkpoints were trained: control characters dropped and whitespace
    made spaces; for an uncased vocabulary, Unicode lowercasing then accents stripped (NFD, marks removed).

    keras-hub strips accents before it case-folds with NFKC, which recomposes what NFD split and rewrites more than
    case: Korean became [UNK] where Hugging Face gives its jamo, "ß" became "ss", "ﬁ" "fi", full-width digits
    ASCII ones (tests/test_transformer_parity.py compares the ids with Hugging Face's tokenizers). Here keras-hub's
    own lowercasing and accent stripping are off, and this normalization runs before its pretokenization, with core
    TensorFlow ops and tf-text's NormalizeUTF8 (both in TF Serving).

    Args:
        vocabulary: a vocabulary file or list, as keras-hub's.
        lowercase: bool. Whether the vocabulary is uncased (Hugging Face's `do_lower_case`).
        strip_accents: bool or None. Hugging Face's `strip_accents`; None: as `lowercase`.
        **kwargs: keras-hub BertTokenizer's other arguments.
    """

    def __init__(self, vocabulary=None, lowercase=False, strip_accents=None, **kwargs):
        super().__init__(vocabulary=vocabulary, lowercase=False, strip_accents=False, **kwargs)
        self.uncased = bool(lowercase)
        self.hf_strip_accents = bool(lowercase) if strip_accents is None else bool(strip_accents)

    def tokenize(self, inputs):
        return super().tokenize(basic_normalize(inputs, self.uncased, self.hf_strip_accents))

    def get_config(self):
        config = super().get_config()
        config.update(lowercase=self.uncased, strip_accents=self.hf_strip_accents)
        return config


def _check_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown BERT activation {name!r}. Allowed: {sorted(ACTIVATIONS)}.")
    return name


def _use_fast_kernels(bert):
    # BertBackbone hard-codes its activation; the Dense layers read it at call time.
    compat.set_feedforward_activation(bert, ACTIVATIONS[bert.hidden_activation])
    # Feed-forward Dense and self-attention layers: their Keras classes' state only, so the same in place.
    for self_attention, feedforward in compat.encoder_sublayers(bert):
        if type(self_attention) is keras.layers.MultiHeadAttention:
            compat.become(self_attention, BatchMatMulAttention)
        for dense in feedforward:
            if type(dense) is keras.layers.Dense:
                compat.become(dense, FlatDense)
    # Embedding, attention-probability, attention-output and feed-forward dropout: layers without state of their
    # own beyond Keras' Dropout's, so converting them in place keeps their config and seed generators.
    for layer in compat.all_layers(bert):
        if type(layer) is keras.layers.Dropout:
            compat.become(layer, Dropout16)


POOLINGS = ("cls", "mean")


def _vocabulary_file():
    """bert-base-uncased WordPiece vocabulary, for a randomly initialised model (the MiniLM package ships it)."""
    directory, _ = pretrained.resolve_bert("bert_small")
    vocab = pathlib.Path(directory) / "vocab.txt"
    if not vocab.exists():
        vocab = next(iter(sorted(pathlib.Path(directory).rglob("vocabulary.txt"))))
    return str(vocab)


def _random_backbone(name, options, reason):
    logging.warning(
        "!!! %s: NO PRETRAINED WEIGHTS (%s). Using RANDOM INITIALISATION: results will be far below a "
        "pretrained BERT. Pass --backbone_options=weights_path=DIR with a keras-hub preset or a Hugging Face "
        "BERT checkpoint to fix this.", name, reason)
    tokenizer = BertTokenizer(vocabulary=_vocabulary_file(), lowercase=True)
    network = BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=options["num_layers"],
        num_heads=options["num_heads"],
        hidden_dim=options["hidden_dim"],
        intermediate_dim=options["intermediate_dim"],
        dropout=options["dropout"],
        max_sequence_length=_MAX_POSITIONS,
    )
    provenance = {
        "pretrained": False,
        "source": "random initialisation",
        "warning": f"{name} uses RANDOM weights: {reason}",
        "architecture": {k: options[k] for k in _RANDOM_ARCHITECTURES[name]},
    }
    return tokenizer, network, provenance


def _mean_pooling(sequence_output, padding_mask):
    # Keras' masked average (the padding positions left out); in float32 under mixed precision, as a bfloat16 sum
    # over hundreds of tokens would lose the low bits.
    return keras.layers.GlobalAveragePooling1D(dtype="float32", name="mean_pooling")(sequence_output,
                                                                                     mask=padding_mask)


@keras.saving.register_keras_serializable(package="textzoo")
class MeanPooledBackbone(keras.Model):
    """A transformer backbone (keras-hub's BertBackbone, or MPNet's) whose "pooled_output" is the mean of its
    sequence output over the real tokens, as sentence-transformers checkpoints were trained; its other outputs are
    the backbone's "sequence_output".

    Args:
        backbone: a keras-hub `Backbone` with a "sequence_output" and a "padding_mask" input.
    """

    def __init__(self, backbone, **kwargs):
        # === Layers ===
        if hasattr(backbone, "pooled_dense"):
            backbone.pooled_dense.trainable = False  # Its output is not used: no gradient reaches it.
        # === Functional model ===
        inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in backbone.input}
        sequence_output = backbone(inputs)["sequence_output"]
        super().__init__(inputs, {"sequence_output": sequence_output,
                                  "pooled_output": _mean_pooling(sequence_output, inputs["padding_mask"])}, **kwargs)
        # === Config ===
        self.backbone = backbone

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.saving.serialize_keras_object(self.backbone)}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "backbone": keras.saving.deserialize_keras_object(config["backbone"])})


def _pooled_network(bert, pooling, name):
    """keras-hub's BertBackbone, whose "pooled_output" is the pooling asked for."""
    if pooling == "cls":
        return bert
    return MeanPooledBackbone(bert, name=f"{name}_mean_pooled")


def _trainable_layers(value, num_layers):
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= num_layers:
        raise ValueError(f"trainable_layers must be 'all' or an integer from 0 to {num_layers} (the model's "
                         f"layers), received {value!r}.")
    return value


def _frozen_prefix(bert, network, pooling, trainable, sequence_length):
    """Freezes the embeddings and the transformer layers below the top `trainable`, and splits the network there.

    The prefix is cut out of keras-hub's own graph (the output of the last frozen layer), and the top calls the
    remaining layers again on features of that shape, as BertBackbone does: both are the network's layers."""
    frozen_layers = bert.transformer_layers[:bert.num_layers - trainable]
    for layer in [*bert.embedding_layers(), *frozen_layers]:
        layer.trainable = False
    if trainable == 0:  # Everything is frozen, the pooling too: the head trains on the pooled features.
        bert.pooled_dense.trainable = False
        prefix = keras.Model(network.input, {"pooled_output": network.output["pooled_output"]})
        features = keras.Input(shape=(bert.hidden_dim,), name="pooled_output")
        top = keras.Model({"pooled_output": features}, {"pooled_output": features})
        return FrozenPrefix(prefix, top, InputLayout())
    mask = bert.input["padding_mask"]
    prefix = keras.Model(bert.input, {"hidden": frozen_layers[-1].output if frozen_layers else bert.embeddings_output,
                                      "padding_mask": keras.layers.Identity(name="mask_through")(mask)})
    hidden = keras.Input(shape=(None, bert.hidden_dim), name="hidden")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    x = bert.run_layers(hidden, padding_mask, start=bert.num_layers - trainable)
    pooled = bert.pooled_dense(x[:, 0, :]) if pooling == "cls" else _mean_pooling(x, padding_mask)
    top = keras.Model({"hidden": hidden, "padding_mask": padding_mask}, {"pooled_output": pooled})
    return FrozenPrefix(prefix, top, InputLayout(sequence_length=sequence_length, lengths=_lengths))


def _tokenizer(directory):
    """The checkpoint's tokenizer (`BertTokenizer`): its vocabulary, casing and accent stripping from a Hugging Face
    directory's tokenizer_config.json, or from a keras-hub preset's tokenizer."""
    directory = pathlib.Path(directory)
    hf_config = directory / "tokenizer_config.json"
    if hf_config.exists() and (directory / "vocab.txt").exists():
        config = json.loads(hf_config.read_text())
        return BertTokenizer(vocabulary=str(directory / "vocab.txt"), lowercase=config.get("do_lower_case", True),
                             strip_accents=config.get("strip_accents"))
    try:
        preset = keras_hub.models.BertTokenizer.from_preset(str(directory))
    except Exception as e:  # A Hugging Face directory without tokenizer_config.json.
        config = json.loads((directory / "config.json").read_text()) if (directory / "config.json").exists() else {}
        lowercase = config.get("do_lower_case", "uncased" in str(directory).lower())
        logging.info("BertTokenizer.from_preset(%s) failed (%s); reading vocab.txt with lowercase=%s",
                     directory, e, lowercase)
        return BertTokenizer(vocabulary=str(directory / "vocab.txt"), lowercase=lowercase)
    return BertTokenizer(vocabulary=preset.get_vocabulary(), lowercase=preset.lowercase)


def _lengths(inputs):
    return tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=-1)




def check_sequence_length(sequence_length, max_positions, architecture="BERT"):
    if sequence_length is None or sequence_length > max_positions:
        raise ValueError(f"Cannot use sequence length {sequence_length} because the {architecture} model was only "
                         f"trained up to sequence length {max_positions}.")


class Transformer(Backbone):
    """What the zoo's transformers share, over a network that offers what `BertBackbone` declares for it
    (`transformer_layers`, `num_layers`, `hidden_dim`, `embedding_layers()`, `embeddings_output`, `run_layers`,
    `pooled_dense` where it pools [CLS], an input with a "padding_mask"): the pooling and frozen prefix its options
    ask for (`assemble`), keras-hub's inputs (`input_layout`), the preprocessor as a keras-hub preset, and the
    export's WordPiece over a vocabulary file. Subclasses load the network and the tokenizer (`build`)."""
    family = "transformer"

    def assemble(self, network, preprocessor, provenance, options, sequence_length):
        """The `BackboneParts` of `network` with `preprocessor`: the pooling (`pooling`: "auto" pools as the weights
        were trained, `provenance` says how) and the frozen prefix (`trainable_layers`) its options ask for."""
        pooling = provenance.get("pooling", "cls") if options["pooling"] == "auto" else options["pooling"]
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {options['pooling']!r}. Allowed: {['auto', *POOLINGS]}.")
        provenance["pooling"] = pooling
        network = _pooled_network(network, pooling, self.name)
        return BackboneParts(self.name, self.family, preprocessor, network, provenance, options,
                             self.frozen_prefix(network, options, sequence_length))

    def frozen_prefix(self, network, options, sequence_length):
        """The `FrozenPrefix` option `trainable_layers` asks for (None for "all"), of `network` as `assemble` made
        it: a fresh one, or one taken out of a trained or loaded classifier (its frozen layers' flags are not
        saved), so that every fit trains the top on cached features."""
        pooled = isinstance(network, MeanPooledBackbone)
        bert = network.backbone if pooled else network
        trainable = _trainable_layers(options["trainable_layers"], bert.num_layers)
        if trainable is None:
            return None
        return _frozen_prefix(bert, network, "mean" if pooled else "cls", trainable, sequence_length)

    def input_layout(self, preprocessor):
        """keras-hub's inputs (token_ids, segment_ids, padding_mask) are padded at the end and attention masks the
        padding, so an input cut to its real tokens gives the same outputs with less compute."""
        return InputLayout(sequence_length=int(preprocessor.sequence_length), lengths=_lengths,
                           padding_values={"token_ids": preprocessor.tokenizer.pad_token_id})

    def save_preprocessor(self, preprocessor, directory):
        preprocessor.save_to_preset(str(directory))

    def load_preprocessor(self, directory):
        """Reads a preprocessor written by `save_to_preset` (preprocessor.json, tokenizer assets).

        keras-hub's `from_preset` wants a backbone config.json beside it; a preprocessor alone is restored from its
        own config and the tokenizer assets, the way keras-hub's preset loader does it.
        """
        config = json.loads((pathlib.Path(directory) / "preprocessor.json").read_text())
        preprocessor = keras.saving.deserialize_keras_object(config)
        preprocessor.load_preset_assets(str(directory))
        return preprocessor

    def serving_preprocessor(self, preprocessor, directory):
        """`preprocessor` as an export carries it: the same configuration, with WordPiece reading the vocabulary
        from vocabulary.txt written into `directory` (a SavedModel asset).

        keras-hub tokenizes with `tf_text.FastWordpieceTokenizer`, whose vocabulary is compiled into a model buffer
        that a SavedModel holds as a graph constant (1.85 MB for a 30k vocabulary, 8x the vocabulary file).
        `tf_text.WordpieceTokenizer` does the same greedy longest-match WordPiece (same suffix indicator, unknown
        token and 100-byte word limit; equality tested in tests/test_export.py) through a table initialised from
        the vocabulary file; its op is in tf-text 2.12.1, which TF Serving links.
        """
        tokenizer = preprocessor.tokenizer
        pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
        tokenizer.save_assets(str(directory))  # vocabulary.txt, as in a keras-hub preset.
        vocabulary = pathlib.Path(directory) / "vocabulary.txt"
        tokenizer = type(tokenizer).from_config({**tokenizer.get_config(), "vocabulary": str(vocabulary)})
        compat.wordpiece_from_file(tokenizer, vocabulary)
        return type(preprocessor).from_config({**preprocessor.get_config(), "tokenizer": tokenizer})


class Bert(Transformer):
    """BERT: keras-hub's BertBackbone (as `BertBackbone`, with the zoo's kernels) and its WordPiece tokenizer (as
    `BertTokenizer`, with Hugging Face's normalization), from the weights `pretrained.resolve_bert` finds for the
    name, or randomly initialised where asked (or, for bert_base, where none can be found)."""
    # The recipe fields each BERT trains with by default, as in Devlin et al.'s fine-tuning (AdamW, warm-up 10 %,
    # 2-4 epochs; lr 2e-5 to 5e-5 for BERT-base, higher for the small ones). What a budget changes is recipes/'s.
    SETTINGS = {
        "bert_small": {"sequence_length": 256, "batch_size": 32, "bucket_width": 32, "learning_rate": 1e-4,
                       "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2},
        "minilm_l3": {"sequence_length": 256, "batch_size": 32, "bucket_width": 32, "learning_rate": 1e-4,
                      "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2},
        "bert_base": {"sequence_length": 256, "batch_size": 16, "bucket_width": 32, "learning_rate": 3e-5,
                      "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2},
    }

    def default_settings(self):
        return copy.deepcopy(self.SETTINGS[self.name])

    def default_options(self):
        return {
            # None: the registered sources of the name; or a keras-hub preset / Hugging Face checkpoint directory.
            "weights_path": None,
            # "auto": random initialisation only where no weights can be found (bert_base); True forces it.
            "random_init": "auto" if self.name == "bert_base" else False,
            # Architecture of a randomly initialised model (tests use tiny ones); ignored for pretrained weights.
            **_RANDOM_ARCHITECTURES[self.name],
            "dropout": 0.1,
            # "cls": keras-hub's pooled_output ([CLS] through BERT's pooler); "mean": the mean of sequence_output
            # over the real tokens; "auto": as the weights were trained (pretrained.resolve_bert says; cls for
            # random ones).
            "pooling": "auto",
            # "all": fine-tune everything. An integer k: embeddings and all but the top k transformer layers are
            # frozen, computed once per training example, and only the top k layers, the pooling and the head train
            # (0: the head alone, on the pooled features).
            "trainable_layers": "all",
        }

    def missing_weights(self):
        """Why no pretrained weights can be had here, and what to provide (None when they can be had): the
        benchmark skips the backbone then."""
        try:
            pretrained.resolve_bert(self.name)
        except Exception as e:  # Every failure to find weights is a reason to report, not to stop.
            local = next((s.env for s in pretrained.BERT_WEIGHTS[self.name].sources if getattr(s, "env", None)),
                         None)
            return (f"no pretrained {self.name} weights reachable (tried: {assets.tried(e)}); provide a keras-hub "
                    f"preset or a Hugging Face BERT checkpoint directory with --backbone_options=weights_path=DIR"
                    + (f" or ${local}" if local else ""))
        return None

    def build(self, options, sequence_length, train_texts=None):
        del train_texts  # The vocabulary comes with the weights.
        name = self.name
        if options["random_init"] is True:
            tokenizer, network, provenance = _random_backbone(name, options, "random_init=True was asked for")
        else:
            try:
                directory, provenance = pretrained.resolve_bert(name, path=options["weights_path"])
            except Exception as e:
                if options["random_init"] != "auto":
                    raise
                tokenizer, network, provenance = _random_backbone(name, options, f"weights not found: {e}")
            else:
                network = BertBackbone.of(
                    keras_hub.models.BertBackbone.from_preset(str(directory), dropout=options["dropout"]),
                    activation=provenance["activation"])
                tokenizer = _tokenizer(directory)
                provenance = {"pretrained": True, **provenance}
        check_sequence_length(sequence_length, network.max_sequence_length)
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
            tokenizer, sequence_length=sequence_length, truncate=TRUNCATE)
        provenance["lowercase"] = tokenizer.uncased
        return self.assemble(network, preprocessor, provenance, options, sequence_length)
