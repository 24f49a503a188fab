"""Every work-around of a Keras, keras-hub or TensorFlow limitation, and every use of their private (`_`-prefixed)
names, in this one module.

Each names what it works around and the upstream report where there is one, was written for the versions in
`WRITTEN_FOR` (`check_versions` warns once on others), and has a test in tests/test_compat.py that fails when the
upstream behaviour it works around changes: delete the work-around then. `tests/test_compat.py` also fails when any
other module of zoo/, recipes/ or benchmarks/ reaches into private names of these libraries.

Not here: `zoo/serving_check.py`, which runs alone in a fresh process importing only tensorflow and
tensorflow_text (as a serving host does) and lists the registered ops through TensorFlow's C API binding.
"""

import contextlib
import logging
import types

import keras
import keras_hub
import tensorflow as tf
# WordPieceTokenizer's word limit, which an export's tokenizer must share.
from keras_hub.src.tokenizers.word_piece_tokenizer import MAX_BYTES_PER_WORD  # noqa: F401

# The versions every work-around below was written for and tested with.
WRITTEN_FOR = {"keras": "3.15", "keras_hub": "0.32", "tensorflow": "2.21"}

WORKAROUNDS = {
    # name: (library, what it works around, upstream report or None)
    "all_layers": ("keras", "no public recursive list of a model's layers (`Model.layers` is the top level only)",
                   None),
    "cast_seed": ("keras", "the TensorFlow backend's seed conversion for stateless ops is private", None),
    "MAX_BYTES_PER_WORD": ("keras_hub", "WordPieceTokenizer's word limit is a private module constant", None),
    "set_feedforward_activation": ("keras_hub", "BertBackbone hard-codes the tanh GELU; Hugging Face checkpoints "
                                   "with hidden_act=gelu were trained with the exact one", None),
    "wordpiece_from_file": ("keras_hub", "WordPieceTokenizer compiles its vocabulary into a FastWordpiece model, a "
                            "1.85 MB graph constant in a SavedModel", None),
    "convert_bert_weights": ("keras_hub", "the Hugging Face BERT weight mapping is not public", None),
    "preset_file": ("keras_hub", "fetching one file of a preset is not public", None),
    "adapted_idf": ("keras", "TextVectorization has no public getter for the IDF weights `adapt` computed", None),
    "store_served_weights_once": ("keras", "ExportArchive stores every weight twice",
                                  "keras-team/keras#23553 (fix PR #23563)"),
    "add_saved_model_asset": ("keras", "ExportArchive has no way to add an asset file", None),
    "FusedAdamUpdate": ("keras", "Keras 3's Adam runs a dozen elementwise ops per variable, not TensorFlow's fused "
                        "kernel", "keras-team/keras#19992"),
    "multi_worker_fit": ("keras", "`fit` fails under MultiWorkerMirroredStrategy with more than one worker",
                         "keras-team/keras#20329"),
    "untrack_layer": ("keras", "deleting a layer attribute does not untrack the layer (`Layer.__delattr__` untracks "
                      "variables only): a replaced sublayer stays in `weights` and in saved files", None),
    "set_op_determinism": ("tensorflow", "op determinism can be enabled publicly but not disabled (and Keras "
                           "compiles nothing with XLA while it is on)", None),
    "rnn_dropout_off": ("keras", "RNN layers draw dropout masks on every call, at inference too", None),
    "encoder_sublayers": ("keras_hub", "TransformerEncoder's attention and feed-forward layers are private "
                          "attributes (the zoo gives them oneDNN-friendly kernels)", None),
    "FastAttention": ("keras", "MultiHeadAttention's documented extension point, `_compute_attention`, is private, "
                      "as are the attention axes, dropout and scale an override reads", None),
    "become": ("keras_hub", "`from_preset` builds the class its preset names and keras-hub's layers make their "
               "sublayers' classes: a subclass adding kernels only is had by changing an object's class in place",
               None),
    "add_special_token": ("keras_hub", "a tokenizer registers its special tokens through the private "
                          "`Tokenizer._add_special_token`", None),
}

_warned = []


def _version(module):
    return ".".join(module.__version__.split(".")[:2])


def check_versions():
    """Warns once per process where an installed library is not the version the work-arounds were written for
    (they still run: tests/test_compat.py says which still hold). Returns {library: installed} of those."""
    installed = {"keras": _version(keras), "keras_hub": _version(keras_hub), "tensorflow": _version(tf)}
    other = {name: version for name, version in installed.items() if version != WRITTEN_FOR[name]}
    if other and not _warned:
        _warned.append(True)
        names = sorted(n for n, (library, _, _) in WORKAROUNDS.items() if library in other)
        logging.warning("zoo.compat was written for %s; installed: %s. Re-check %s (tests/test_compat.py).",
                        WRITTEN_FOR, other, names)
    return other


check_versions()


# === Keras ===

def all_layers(model):
    """Every layer of `model`, nested ones included, `model` first."""
    return list(model._flatten_layers(include_self=True, recursive=True))


def untrack_layer(owner, layer):
    """Removes `layer` from what `owner` (a Keras layer or model) tracks, before the attribute holding it is replaced
    or deleted."""
    owner._tracker.untrack(layer)


def set_op_determinism(enabled):
    """Enables or disables TensorFlow's op determinism for this process (TensorFlow exports only the enable)."""
    from tensorflow.python.framework import config

    if enabled:
        tf.config.experimental.enable_op_determinism()
    else:
        config.disable_op_determinism()


def cast_seed(seed):
    """A Keras seed (SeedGenerator.next()) as TensorFlow's stateless random ops take it, as Keras' own TensorFlow
    backend converts it for its dropout."""
    from keras.src.backend.tensorflow.random import _cast_seed

    return _cast_seed(seed)


def onednn_enabled():
    """Whether TensorFlow runs oneDNN's kernels in this process (its own test utilities ask the same)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def adapted_idf(text_vectorization):
    """The IDF weights of a TextVectorization adapted in "tf_idf" mode (the [UNK] slot included)."""
    return text_vectorization._lookup_layer.idf_weights.numpy()


@contextlib.contextmanager
def rnn_dropout_off(core):
    """Keras 3's RNN layers draw their dropout masks on every call, training or not (`RNN._maybe_config_dropout_masks`,
    Keras 3.15), and use them only when training: a graph traced for prediction would run the random ops and write
    the seed generator's state variable on every call (in a served model, a stateful op in a graph that only reads).
    Dropout is the identity at inference, so prediction graphs are traced with the rates at 0."""
    cells = [layer for layer in all_layers(core) if hasattr(layer, "get_recurrent_dropout_mask")]
    saved = [(cell.dropout, cell.recurrent_dropout) for cell in cells]
    for cell in cells:
        cell.dropout = cell.recurrent_dropout = 0.0
    try:
        yield
    finally:
        for cell, (dropout, recurrent_dropout) in zip(cells, saved):
            cell.dropout, cell.recurrent_dropout = dropout, recurrent_dropout


def store_served_weights_once(archive, served):
    """Keeps in the archive's variable lists only the weights the endpoints read (those `served`, a concrete
    function, captures), each stored once.

    Once: `ExportArchive.track()` lists the Keras variables under `variables` (and `trainable_variables`,
    `non_trainable_variables`), while `write_out()` lists the tf.Variables the endpoints capture (the ones those
    Keras variables wrap) under `_all_variables`: SavedModel serialises both, so every weight is stored twice (a
    BERT-base export is 660 MB instead of 332 MB). Pointing the tracked lists at the wrapped tf.Variables makes all
    lists reference the same objects, which SavedModel stores once; the reloaded archive keeps its `.variables`.

    Only the served ones: the dropout layers' seed-generator states are model variables too, which no serving graph
    reads (it runs no random op); each stored variable also costs save and restore graph nodes (~1.5 KB).
    """
    served = {v.ref() for v in served.variables}
    trackable = archive._tf_trackable
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        # `_value` is the tf.Variable a TensorFlow-backend keras.Variable wraps (`.value` may be an autocast copy).
        values = [getattr(v, "_value", v) for v in getattr(trackable, name)]
        setattr(trackable, name, [v for v in values if v.ref() in served])


def add_saved_model_asset(archive, name, path):
    """Adds the file `path` to what `archive` writes (SavedModel copies it into assets/)."""
    setattr(archive._tf_trackable, name, tf.saved_model.Asset(str(path)))


class FusedAdamUpdate:
    """Adam's update of one variable as TensorFlow's fused `ResourceApplyAdam` kernel, the one tf.keras 2's Adam ran:
    one multithreaded pass over the variable, its two moments and its gradient. Keras 3's backend-neutral
    `update_step` runs about a dozen full-size elementwise ops per variable instead
    (docs/measurements.md#fused-adam). Same arithmetic as Keras' Adam (tested against Adam in float64); other
    backends and amsgrad keep Keras' own update. A mixin before a Keras Adam class."""

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            # Adam's moments decay everywhere: a sparse (embedding) gradient is applied densely, as Keras does.
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype))


@contextlib.contextmanager
def multi_worker_fit(core):
    """Makes Keras 3.15's `fit` work under MultiWorkerMirroredStrategy with more than one worker; elsewhere it does
    nothing. Keras' TensorFlow trainer fails there in two places:
    - `_maybe_symbolic_build` reduces the first batch with `strategy.reduce("MEAN", batch)`, which a collective
      strategy cannot do for a nest ("Attempt to convert a value (PerReplica ..."). The build needs only shapes and
      dtypes: the dataset's element_spec has them, and reading it does not start an extra pass over the data,
      which would advance a reshuffling dataset by one epoch (the one-worker run would then see other batches).
    - `reduce_per_replica` averages the logs with `strategy.reduce("MEAN", v, axis=0)`, and the logs are scalars
      ("Invalid reduction dimension 0 for input with 0 dimensions"); averaging across replicas only (`axis=None`)
      gives every worker the same loss and metrics, which early stopping and the checkpoints must agree on.
    Tested (tests/test_training.py::test_multi_worker_*): the workers' weights equal a one-worker run of the same
    global batch."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    strategy = core.distribute_strategy
    if not tf_trainer._collective_all_reduce_multi_worker(strategy):
        yield
        return

    def symbolic_build(self, iterator=None, data_batch=None):
        if data_batch is None and iterator is not None:
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        if reduction not in ("auto", "mean"):
            return original_reduce(values, strategy, reduction)

        def mean(v):
            if not tf_trainer._is_per_replica_instance(v):
                return v
            return strategy.reduce("MEAN", v, axis=None)

        return tf.nest.map_structure(mean, values)

    core._maybe_symbolic_build = types.MethodType(symbolic_build, core)
    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original_reduce
        del core._maybe_symbolic_build


class FastAttention(keras.layers.MultiHeadAttention):
    """Keras' `MultiHeadAttention` (same config, weights and outputs) whose attention is computed by the subclass'
    `fast_attention(query, key, value, scale, keep=None, dropout=None)` where it applies: self-attention over one
    axis, at inference, on the TensorFlow backend, no scores returned, no causal mask. Keras' own computation runs
    everywhere else. (`_compute_attention` and the attributes read here are MultiHeadAttention's private ones.)"""

    def fast_attention(self, query, key, value, scale, keep=None, dropout=None):
        raise NotImplementedError(f"{type(self).__name__} must define fast_attention.")

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):
        if (training or keras.backend.backend() != "tensorflow" or return_attention_scores or use_causal_mask
                or len(query.shape) != 4 or tuple(self._attention_axes) != (1,)):
            return super()._compute_attention(query, key, value, attention_mask=attention_mask, training=training,
                                              return_attention_scores=return_attention_scores,
                                              use_causal_mask=use_causal_mask)
        dropout = None
        if self._dropout > 0.0:
            dropout = lambda p: self._dropout_layer(p, training=training)  # noqa: E731
        return self.fast_attention(query, key, value, self._inverse_sqrt_key_dim, keep=attention_mask,
                                   dropout=dropout), None


def become(obj, cls):
    """Makes `obj` an instance of `cls`, a subclass of its class adding no state of its own, in place (the same
    layers, weights and config): how the zoo gives keras-hub's networks and their sublayers its kernels."""
    if not issubclass(cls, type(obj)):
        raise TypeError(f"{type(obj).__name__} cannot become a {cls.__name__}: not a subclass of its class.")
    obj.__class__ = cls
    return obj


# === keras-hub ===

def encoder_sublayers(bert):
    """[(self-attention layer, [feed-forward intermediate Dense, feed-forward output Dense])] for each keras-hub
    TransformerEncoder of a keras-hub BertBackbone `bert`."""
    return [(layer._self_attention_layer, [layer._feedforward_intermediate_dense, layer._feedforward_output_dense])
            for layer in bert.transformer_layers]


def set_feedforward_activation(bert, activation):
    """Makes the feed-forward layers of a keras-hub BertBackbone `bert` use `activation` (their Dense layers read it
    at call time)."""
    for _, (intermediate, _) in encoder_sublayers(bert):
        intermediate.activation = activation


def wordpiece_from_file(tokenizer, vocabulary_file):
    """Makes a keras-hub WordPieceTokenizer tokenize with `tf_text.WordpieceTokenizer` over `vocabulary_file` (a
    table initialised from the file, which a SavedModel carries as an asset) instead of its FastWordpiece model
    (same greedy longest-match WordPiece: same suffix indicator, unknown token and word limit)."""
    import tensorflow_text as tf_text

    if not hasattr(tokenizer, "_fast_word_piece"):
        raise RuntimeError(f"keras-hub {keras_hub.__version__} changed WordPieceTokenizer (no _fast_word_piece "
                           "attribute): update zoo.compat.wordpiece_from_file.")
    tokenizer._fast_word_piece = tf_text.WordpieceTokenizer(
        str(vocabulary_file), suffix_indicator=tokenizer.suffix_indicator, max_bytes_per_word=MAX_BYTES_PER_WORD,
        token_out_type=tf.as_dtype(tokenizer.compute_dtype), unknown_token=tokenizer.oov_token)
    return tokenizer


def convert_bert_weights(network, loader):
    """keras-hub's Hugging Face BERT weight mapping into `network` (a BertBackbone), reading tensors through
    `loader` (an object with keras-hub's SafetensorLoader's `port_weight`)."""
    from keras_hub.src.utils.transformers import convert_bert

    convert_bert.convert_weights(network, loader, {})


def preset_file(preset, name):
    """The local path of file `name` of keras-hub preset `preset`, fetched into keras-hub's cache."""
    from keras_hub.src.utils.preset_utils import get_file

    return get_file(preset, name)


def add_special_token(tokenizer, token, role):
    """Registers `token` as `tokenizer`'s special token `role` ("cls_token", "pad_token", ...), as keras-hub's own
    tokenizers do in their constructors (before `super().__init__`): `tokenizer.<role>` and `<role>_id` then read it."""
    tokenizer._add_special_token(token, role)
