"""Input pipelines: tf.data over texts (the preprocessor mapped, batches bucketed by token length), the frozen
prefix's features computed once, and their batches."""


import numpy as np
import tensorflow as tf

from zoo import heads
from zoo.classifier import preprocess

_BATCH_SHUFFLE_BUFFER = 16


def make_dataset(texts, labels, preprocessor, head_type, batch_size, shuffle=False, seed=None, bucket_width=None,
                 dense=False, layout=None):
    """A tf.data pipeline: (text, label) -> batches of (preprocessed inputs, labels in the head's form).

    With `bucket_width` and a `layout` (the backbone's `InputLayout`) of inputs that can be cut to their length,
    examples are grouped by token length in buckets of that width and each batch is padded only to its longest
    example: no compute is spent on padding, which is where BERT's time goes on a CPU. Shuffled before and after
    bucketing, so batches stay random.
    `dense` turns sparse inputs (the n-gram counts) dense: tf.distribute cannot split a SparseTensor batch between
    replicas (Keras 3.15, TF 2.20: "SparseTensor has no attribute device"), and the network takes either.
    """
    n = len(texts)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), dtype=tf.string),
                                             tf.constant(np.asarray(labels), dtype=tf.int32)))
    if bucket_width and layout is not None and layout.variable_length:
        return _bucketed(_preprocessed_examples(ds, preprocessor, layout), n, layout, head_type, batch_size, shuffle,
                         seed, bucket_width)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (_densify(preprocess(preprocessor, x)) if dense
                                                else preprocess(preprocessor, x),
                                                heads.prepare_labels(y, head_type)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def input_pipeline(settings, texts, labels, preprocessor, layout, head_type, seed, shuffle):
    """`make_dataset` as `settings` say (`zoo.training.input_settings`, recorded in a run's config.json as
    "input"): what training runs on, and what the benchmark measures the token share of."""
    return make_dataset(texts, labels, preprocessor, head_type, settings["batch_size"], shuffle=shuffle, seed=seed,
                        bucket_width=settings["bucket_width"], dense=settings["dense"], layout=layout)


def _preprocessed_examples(ds, preprocessor, layout):
    """(text, label) -> (inputs cut to the example's own length, label), tokenised once and kept in memory.

    In chunks (fast), and a few hundred bytes an example: later epochs spend no CPU on tokenising, which on a 2-core
    machine competes with training (docs/measurements.md#tokenised-once)."""
    def trim(x, y):
        length = layout.lengths(x)
        return tf.nest.map_structure(lambda v: v[:length], x), y

    ds = ds.batch(256).map(lambda x, y: (preprocess(preprocessor, x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.unbatch().map(trim, num_parallel_calls=tf.data.AUTOTUNE).cache()


def _bucketed(ds, n, layout, head_type, batch_size, shuffle, seed, bucket_width):
    """Examples (x, label) of their own lengths -> batches of similar lengths, each padded to its longest example;
    labels in the head's form (as they are for `head_type` None)."""
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    boundaries = list(range(bucket_width + 1, layout.sequence_length + 1, bucket_width))
    ds = ds.bucket_by_sequence_length(
        lambda x, y: layout.lengths(x), bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(_padding_values(layout, ds.element_spec[0]), tf.cast(0, ds.element_spec[1].dtype)))
    if shuffle:
        # Mixes the buckets' batches (and the partial batches every bucket flushes at the end of an epoch).
        # A small buffer: the first step waits until it is full.
        ds = ds.shuffle(_BATCH_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if head_type is not None:
        ds = ds.map(lambda x, y: (x, heads.prepare_labels(y, head_type)))
    # tf.data's default graph rewrites run each time an iterator is made (every epoch, every evaluation) and,
    # over a graph holding keras-hub's tokenizer, took seconds each (docs/measurements.md#tf-data-optimizations).
    # This pipeline sets its own parallelism and prefetching.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


# Cached features are stored in float16 (half the memory of float32; BERT's hidden states after LayerNorm are of
# order 1-10, well inside its range) and computed on in float32 or the policy's compute dtype: the same accuracy as
# float32 storage (docs/measurements.md#feature-storage).
FEATURE_STORAGE_DTYPE = "float16"


def cache_features(frozen_prefix, texts, labels, preprocessor, input_layout, batch_size, bucket_width,
                   storage_dtype=FEATURE_STORAGE_DTYPE):
    """Runs the frozen prefix of a network (`backbones.FrozenPrefix`) once over every example, in inference mode
    (it is frozen, so its outputs do not change from epoch to epoch) and in batches of similar length, and keeps
    each example's features cut to its own length, in memory.

    Returns (features, labels): a dict of RaggedTensors [examples, (length), ...] (or arrays, for fixed-size
    features) and the examples' labels, in the order the features are kept in.
    Written here because neither Keras nor keras-hub caches the frozen part of a network (AutoFreeze, arXiv
    2102.01386, does, and reports faster fine-tuning for it)."""
    n = len(texts)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), dtype=tf.string), tf.range(n)))
    if bucket_width and input_layout.variable_length:
        batches = _bucketed(_preprocessed_examples(ds, preprocessor, input_layout), n, input_layout, None,
                            batch_size, False, None, bucket_width)
    else:
        batches = ds.batch(batch_size).map(lambda x, y: (preprocess(preprocessor, x), y))
    prefix, layout = frozen_prefix.prefix, frozen_prefix.layout

    @tf.function(input_signature=[batches.element_spec[0]])  # One trace for batches of every length.
    def run(x):
        return _cast_floating(prefix(x, training=False), storage_dtype)

    # Every batch of token ids (a few bytes a token) is made before the prefix runs: tf.data's threads working
    # beside oneDNN's on 2 cores made the same pass slower, and made first they cost little
    # (docs/measurements.md#batches-before-prefix).
    columns, lengths, order = {}, [], []
    for x, index in list(batches):
        outputs = run(x)
        order.append(index.numpy())
        if layout.variable_length:
            batch_lengths = layout.lengths(outputs).numpy()
            lengths.append(batch_lengths)
            # Row-major selection of each example's first `length` positions: the examples cut and concatenated.
            keep = np.arange(outputs[next(iter(outputs))].shape[1])[None, :] < batch_lengths[:, None]
            outputs = {k: v.numpy()[keep] for k, v in outputs.items()}
        for k, v in outputs.items():
            columns.setdefault(k, []).append(np.asarray(v))
    features = {k: np.concatenate(v) for k, v in columns.items()}
    if layout.variable_length:
        row_lengths = np.concatenate(lengths)
        features = {k: tf.RaggedTensor.from_row_lengths(v, row_lengths) for k, v in features.items()}
    return features, np.asarray(labels)[np.concatenate(order)]


def feature_dataset(features, labels, layout, head_type, batch_size, shuffle=False, seed=None, bucket_width=None):
    """Batches of cached features (`cache_features`), made as `make_dataset` makes batches of inputs: length-bucketed
    and shuffled the same way; floating features in float32."""
    n = len(labels)
    ds = tf.data.Dataset.from_tensor_slices((features, tf.constant(labels, dtype=tf.int32)))
    ds = ds.map(lambda x, y: (_cast_floating(x, tf.float32), y))
    if layout.variable_length:  # Without a bucket width: one bucket, each batch padded to its longest example.
        return _bucketed(ds, n, layout, head_type, batch_size, shuffle, seed, bucket_width or layout.sequence_length)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda x, y: (x, heads.prepare_labels(y, head_type))).prefetch(tf.data.AUTOTUNE)


def _padding_values(layout, spec):
    """`bucket_by_sequence_length`'s padding values for inputs of `spec` (a dict of inputs, or one tensor)."""
    if isinstance(spec, dict):
        return {k: tf.cast(layout.padding_values.get(k, 0), v.dtype) for k, v in spec.items()}
    return tf.cast(0, spec.dtype)


def _cast_floating(x, dtype):
    return {k: tf.cast(v, dtype) if v.dtype.is_floating else v for k, v in x.items()}


def _densify(x):
    return tf.nest.map_structure(lambda t: tf.sparse.to_dense(t) if isinstance(t, tf.SparseTensor) else t, x)


def estimated_batches(n, batch_size, bucket_width=None, sequence_length=None):
    """Batches per epoch: bucketing adds at most one partial batch per bucket."""
    batches = -(-n // batch_size)
    if bucket_width and sequence_length:
        batches += -(-sequence_length // bucket_width)
    return batches
