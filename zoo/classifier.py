"""The classifier: preprocessor -> backbone network -> head, and its run-directory form.

Training runs on `core` (preprocessed inputs -> probabilities) with the preprocessor mapped over tf.data;
`StringClassifier` joins both for inference and export (strings -> class probabilities).

On disk (`<run_dir>/model/`): `core.keras` (the network and head, Keras format, computing in float32 whatever it
trained in), `preprocessor/` (vocabularies as files, or a keras-hub preset), and `classifier.json` (backbone name,
class names, head type).
"""

import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

from zoo import backbones
from zoo import compat
from zoo import heads
from zoo import text as text_lib


def _inputs_like(network):
    """Fresh Inputs with the network's input structure, so the backbone stays one nested layer of the model."""
    return keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, sparse=t.sparse,
                              name=t.name.split(":")[0].split("/")[0]),
        network.input)


def build_core(backbone, num_classes, head_type, hidden_units=(), dropout=0.0):
    """The core: preprocessed inputs -> probabilities, the backbone's network then the head."""
    inputs = _inputs_like(backbone.network)
    head = heads.build_head(num_classes, head_type, hidden_units, dropout)
    return keras.Model(inputs, head(backbone.network(inputs)["pooled_output"]), name="classifier_core")


def build_top_core(backbone, core):
    """For a backbone with a frozen prefix: what trains, cached features -> probabilities: the backbone's top, then
    `core`'s head. Both are the very layers of `core`, so training this trains `core`."""
    top = backbone.frozen_prefix.top
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


HELD_OUT_FILE = "held_out_texts.json"


def preprocess_batch(preprocessor, texts):
    """`preprocessor(texts)` for a batch of any size, 0 included: TensorFlow's sparse n-gram count
    (RaggedCountSparseOutput) rejects a batch of 0, so one empty text is added and its row dropped."""
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


def _with_policy(config, policy):
    """A serialized Keras object with every dtype policy made `policy` (variables stay float32)."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": policy}}
        return {key: _with_policy(value, policy) for key, value in config.items()}
    if isinstance(config, list):
        return [_with_policy(value, policy) for value in config]
    return config


def computing_in(core, policy):
    """A copy of `core` whose every layer has the dtype policy `policy`, with the same weights. Rebuilt from the
    model's own config (Keras' serialization) with its policies replaced: every layer then makes its sublayers
    with that policy."""
    config = _with_policy(keras.saving.serialize_keras_object(core), policy)
    global_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)  # Layers a config leaves to the global policy.
    try:
        copy = keras.saving.deserialize_keras_object(config)
    finally:
        keras.mixed_precision.set_dtype_policy(global_policy)
    copy.set_weights(core.get_weights())
    return copy


def computing_in_float32(core):
    """`core` itself where every layer computes in float32, else a copy of it that does, with the same weights.

    What a classifier ships computes in float32, whatever it trained in: mixed-precision training keeps float32
    variables, and a graph computing in bfloat16 serves 4.6x slower than the float32 one where bfloat16 kernels are
    missing (CPUs without AVX512_BF16/AMX, TensorFlow builds without oneDNN). bfloat16 is the serving host's choice
    (`zoo.export.serve_mixed_precision`, TF Serving's `--mixed_precision=bfloat16`).
    """
    if {layer.dtype_policy.name for layer in compat.all_layers(core)} <= {"float32"}:
        return core
    return computing_in(core, "float32")


def probabilities(texts, preprocessor, core, layout, head_type):
    """The one computation from text to probabilities: [batch] strings -> [batch, num_classes] float32, each text cut
    at the input limit and its UTF-8 repaired (`zoo.text`), preprocessed, run through `core` as `run_core` runs it
    and the head's outputs made class probabilities. What the export serves, evaluation measures and
    `TextClassifier` calls."""
    texts = text_lib.cut_to_input_limit_tf(texts)
    outputs = run_core(core, preprocess_batch(preprocessor, texts), layout)
    return tf.cast(heads.class_probabilities(outputs, head_type), tf.float32)


class StringClassifier:
    """Strings in, class probabilities out: a preprocessor layer and the trained core model. (Not keras-hub's
    `TextClassifier`, a Keras model: this one is what a run directory's `model/` holds, and what is exported.)"""

    def __init__(self, backbone_name, preprocessor, core, class_names, head_type, directory=None):
        self.backbone_name = backbone_name
        self._probabilities = None
        self.directory = directory  # Where it was loaded from (`load`); an export reads its vocabulary files there.
        self.preprocessor = preprocessor
        self.layout = backbones.input_layout(backbone_name, preprocessor)
        self.core = core
        self.class_names = list(class_names)
        self.head_type = head_type

    def probabilities_fn(self, preprocessor=None):
        """A concrete function: a [batch] string tensor -> [batch, num_classes] float32 probabilities. The export
        uses this same function (with `preprocessor` read from files), so in-memory and served outputs agree."""
        preprocessor = preprocessor or self.preprocessor
        core, head_type, layout = self.core, self.head_type, self.layout

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def probabilities_of(texts):
            return probabilities(texts, preprocessor, core, layout, head_type)

        with compat.rnn_dropout_off(core):
            return probabilities_of.get_concrete_function()

    def predict_proba(self, texts, batch_size=64):
        """[len(texts), num_classes] probabilities, in the order of `texts`, through `probabilities_fn` (the
        function the export serves). Texts go in batches of similar length (sorted by characters, the order put
        back after): transformer chunks are then padded little."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        outputs = np.concatenate([self.probabilities_of_request([texts[i] for i in order[start:start + batch_size]])
                                  for start in range(0, len(texts), batch_size)])
        return outputs[np.argsort(order)]

    def probabilities_of_request(self, texts):
        """Probabilities of `texts` sent as one request: the very computation a served call with this batch runs.
        (Under bfloat16 or float16, how a batch falls into length-sorted chunks shows in the third decimal.)"""
        if self._probabilities is None:  # One traced function for every call, not a fresh trace per call.
            self._probabilities = self.probabilities_fn()
        return self._probabilities(tf.constant(list(texts), dtype=tf.string)).numpy()

    def save(self, directory, held_out_texts=()):
        """Writes the classifier to `directory`, computing in float32 (`computing_in_float32`), with
        `held_out_texts` (a few test texts) that an export of it is verified on and warms TF Serving up with,
        whichever command exports it."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # What is saved is what ships: evaluation, prediction and the export read it back (computing in float32).
        computing_in_float32(self.core).save(directory / "core.keras")
        backbones.save_preprocessor(self.backbone_name, self.preprocessor, directory / "preprocessor")
        (directory / HELD_OUT_FILE).write_text(json.dumps(list(held_out_texts), ensure_ascii=False))
        (directory / "classifier.json").write_text(json.dumps({
            "backbone": self.backbone_name, "class_names": self.class_names, "head_type": self.head_type}, indent=2))

    def held_out_texts(self):
        """The held-out texts saved with the classifier (none for one built in memory)."""
        path = self.directory and pathlib.Path(self.directory) / HELD_OUT_FILE
        return json.loads(path.read_text()) if path and path.exists() else []

    @classmethod
    def load(cls, directory):
        directory = pathlib.Path(directory)
        info_file = directory / "classifier.json"
        if not info_file.exists():
            raise FileNotFoundError(f"{directory} is not a saved classifier: no classifier.json there.")
        info = json.loads(info_file.read_text())
        preprocessor = backbones.load_preprocessor(info["backbone"], directory / "preprocessor")
        # For inference: no optimizer. In float32 also where an older version saved a mixed-precision core.
        core = computing_in_float32(keras.models.load_model(directory / "core.keras", compile=False))
        return cls(info["backbone"], preprocessor, core, info["class_names"], info["head_type"], directory)
