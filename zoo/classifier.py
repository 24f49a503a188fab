"""The classifier's computation: preprocessor -> backbone network -> head, and the one function from text to
probabilities (`probabilities`) that `zoo.TextClassifier` calls, evaluation measures and the export serves.

Training runs on `core` (preprocessed inputs -> probabilities) with the preprocessor mapped over tf.data.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from zoo import compat
from zoo import heads
from zoo import text as text_lib
from zoo import windows as windows_lib


def _inputs_like(network):
    """Fresh Inputs with the network's input structure, so the backbone stays one nested layer of the model."""
    return keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, sparse=t.sparse,
                              name=t.name.split(":")[0].split("/")[0]),
        network.input)


def build_core(backbone, num_classes, head_type, hidden_units=(), dropout=0.0):
    """The core: preprocessed inputs -> probabilities, the backbone's network then the head."""
    inputs = _inputs_like(backbone.network)
    # The network's own output says whether its features are sparse (a nested call's symbolic output does not).
    pooled = backbone.network.output["pooled_output"]
    head = heads.build_head(num_classes, head_type, hidden_units, dropout,
                            sparse_features=pooled.shape[-1] if pooled.sparse else None)
    return keras.Model(inputs, head(backbone.network(inputs)["pooled_output"]), name="classifier_core")


def network_of(core):
    """The backbone network inside `core` (`build_core`'s nested layer beside the head)."""
    return next(layer for layer in core.layers if not isinstance(layer, keras.layers.InputLayer)
                and layer.name != "head")


def build_top_core(frozen_prefix, core):
    """For a backbone with a frozen prefix: what trains, cached features -> probabilities: the backbone's top, then
    `core`'s head. Both are the very layers of `core`, so training this trains `core`."""
    top = frozen_prefix.top
    inputs = _inputs_like(top)
    return keras.Model(inputs, core.get_layer("head")(top(inputs)["pooled_output"]), name="classifier_top")


def trim_padding(inputs, layout):
    """Cuts a batch of inputs that can be cut to their length (`layout`, the backbone's `InputLayout`) to its
    longest text: padded positions are masked, so the outputs are the same, without the compute. Other inputs pass
    through."""
    if not layout.variable_length:
        return inputs
    longest = tf.maximum(tf.reduce_max(layout.lengths(inputs)), 1)  # An empty batch reduces to the smallest int32.
    return tf.nest.map_structure(lambda v: v[:, :longest], inputs)


def preprocess(preprocessor, texts):
    """The model's door: a [batch] string tensor -> the preprocessor's inputs, each text cut at the input limit and
    its UTF-8 repaired (`zoo.text.cut_to_input_limit`) first. What training batches, cached features and served
    requests are made with, so that a text reads the same in each. A batch of any size, 0 included: TensorFlow's
    sparse n-gram count (RaggedCountSparseOutput) rejects a batch of 0, so one empty text is added and its row
    dropped."""
    texts = text_lib.cut_to_input_limit(texts)
    count = tf.shape(texts)[0]
    outputs = preprocessor(tf.concat([texts, tf.constant([""])], axis=0))

    def first_rows(x):
        if isinstance(x, tf.SparseTensor):
            return tf.sparse.slice(x, [0, 0], tf.stack([tf.cast(count, tf.int64), x.dense_shape[1]]))
        return x[:count]

    return tf.nest.map_structure(first_rows, outputs, expand_composites=False)


# Serving sorts a request batch by token length and runs it in chunks of this many texts, each padded only to its
# own longest text: a batch of mixed lengths then costs about its real tokens, not batch size x longest text.
SERVING_CHUNK = 8


def run_core(core, inputs, layout, chunk_size=SERVING_CHUNK):
    """Applies `core` to preprocessed inputs; inputs that can be cut to their length go trimmed, and where the
    layout says so length-sorted and chunked."""
    if not layout.variable_length:
        return core(inputs, training=False)
    if not layout.chunked_serving:
        return core(trim_padding(inputs, layout), training=False)
    lengths = layout.lengths(inputs)
    order = tf.argsort(lengths)
    ordered = tf.nest.map_structure(lambda v: tf.gather(v, order), inputs)
    count = tf.shape(lengths)[0]

    def step(i, chunks):
        chunk = tf.nest.map_structure(lambda v: v[i * chunk_size:(i + 1) * chunk_size], ordered)
        return i + 1, chunks.write(i, tf.cast(core(trim_padding(chunk, layout), training=False), tf.float32))

    # An explicit while_loop (not a Python loop left to autograph): endpoints may be traced without autograph.
    _, chunks = tf.while_loop(
        lambda i, _: i * chunk_size < count, step,
        (tf.constant(0), tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False)))
    width = core.output.shape[-1]
    outputs = tf.cond(count > 0, lambda: tf.reshape(chunks.concat(), [-1, width]),
                      lambda: tf.zeros([0, width], tf.float32))
    return tf.gather(outputs, tf.math.invert_permutation(order))


_HALF_DTYPES = ("float16", "bfloat16")


def _for_inference(config, policy):
    """A serialized Keras object as an inference copy is made of it:
    - every dtype policy made `policy` (variables stay float32), and input layers that a 16-bit policy gave 16-bit
      tensors (a Sequential's, made for its first layer's compute dtype) given its compute dtype;
    - recurrent layers on their portable kernel (`use_cudnn=False`): a graph traced where a GPU is visible would
      otherwise hold `CudnnRNNV3`, which CPU servers cannot run;
    - no compile state: a compiled model's config carries its optimizer, which deserializing would build again and
      a saved classifier would carry."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": policy}}
        if config.get("class_name") == "InputLayer" and config["config"].get("dtype") in _HALF_DTYPES:
            config = {**config, "config": {**config["config"],
                                           "dtype": keras.DTypePolicy(policy).compute_dtype}}
        return {key: False if key == "use_cudnn" else _for_inference(value, policy)
                for key, value in config.items() if key != "compile_config"}
    if isinstance(config, list):
        return [_for_inference(value, policy) for value in config]
    return config


def computing_in(core, policy):
    """An inference copy of `core` (`_for_inference`) whose every layer has the dtype policy `policy`, with the same
    weights. Rebuilt from the model's own config (Keras' serialization) with its policies replaced: every layer
    then makes its sublayers with that policy."""
    config = _for_inference(keras.saving.serialize_keras_object(core), policy)
    global_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)  # Layers a config leaves to the global policy.
    try:
        copy = keras.saving.deserialize_keras_object(config)
    finally:
        keras.mixed_precision.set_dtype_policy(global_policy)
    copy.set_weights(core.get_weights())
    return copy


def computing_in_float32(core):
    """`core` itself where it is already what ships (every layer computing in float32, recurrent layers on the
    portable kernel, not compiled), else an inference copy of it that is, with the same weights.

    What a classifier ships computes in float32, whatever it trained in: mixed-precision training keeps float32
    variables, and a graph computing in bfloat16 serves far slower than the float32 one where bfloat16 kernels are
    missing (CPUs without AVX512_BF16/AMX, TensorFlow builds without oneDNN; docs/measurements.md#float32-exports).
    bfloat16 is the serving host's choice (`zoo.export.serve_mixed_precision`, TF Serving's
    `--mixed_precision=bfloat16`).
    """
    layers = compat.all_layers(core)
    ships = (not core.compiled and all(layer.dtype_policy.name == "float32" for layer in layers)
             and not any(isinstance(layer, keras.layers.InputLayer) and layer.dtype in _HALF_DTYPES for layer in layers)
             and all(getattr(layer, "use_cudnn", False) is False for layer in layers))
    if ships:
        return core
    return computing_in(core, "float32")


def probabilities(texts, preprocessor, core, layout, head_type, windows=None):
    """The one computation from text to probabilities: [batch] strings -> [batch, num_classes] float32, preprocessed
    (`preprocess`, on the CPU), run through `core` as `run_core` runs it and the head's outputs made class
    probabilities; with `windows` (`zoo.windows.Windows`), each text read as its windows and their probabilities
    pooled. What the export serves, evaluation measures and `TextClassifier` calls."""
    # String ops have CPU kernels only; placed there explicitly (kept in the SavedModel's graph), so that on a GPU
    # host only the model's tensors cross to the device. While training, tf.data runs the preprocessor on the CPU.
    with tf.device("/CPU:0"):
        if windows is not None:
            count = tf.shape(texts)[0]
            texts, owners = windows_lib.split(text_lib.cut_to_input_limit(texts), windows)
        inputs = preprocess(preprocessor, texts)
    outputs = tf.cast(heads.class_probabilities(run_core(core, inputs, layout), head_type), tf.float32)
    return outputs if windows is None else windows_lib.pool(outputs, owners, count, windows.pooling)


def probabilities_function(preprocessor, core, layout, head_type, windows=None):
    """`probabilities` as a concrete function, a [batch] string tensor -> [batch, num_classes] float32: what
    `TextClassifier.predict` runs and the export serves (recurrent dropout off: it is an inference graph)."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def probabilities_of(texts):
        return probabilities(texts, preprocessor, core, layout, head_type, windows)

    with compat.rnn_dropout_off(core):
        return probabilities_of.get_concrete_function()


def in_requests(probabilities_of_request, texts, batch_size, num_classes, verbose="auto"):
    """Probabilities [len(texts), num_classes] of `texts`, in their order, sent as requests of `batch_size` texts
    of similar length (sorted by characters, the order put back after): transformer chunks are then padded little.
    `verbose`: 0 silent, 1 or 2 a progress bar (Keras' Progbar), "auto" a bar on a terminal only."""
    if not texts:
        return np.zeros((0, num_classes), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    starts = range(0, len(texts), batch_size)
    shown = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else verbose
    progress = keras.utils.Progbar(len(starts), verbose=shown) if shown else None
    outputs = []
    for step, start in enumerate(starts):
        outputs.append(probabilities_of_request([texts[i] for i in order[start:start + batch_size]]))
        if progress:
            progress.update(step + 1)
    return np.concatenate(outputs)[np.argsort(order)]


def readable(texts):
    """Python strings as the model reads them (`preprocess`'s cut and UTF-8 repair): what a vocabulary adapts on."""
    cut = text_lib.cut_to_input_limit(tf.constant(list(texts), dtype=tf.string)).numpy()
    return [t.decode("utf-8") for t in cut]
