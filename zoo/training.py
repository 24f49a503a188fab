"""Training: runtime set-up (seed, devices, dtype policy, tf.distribute), input pipelines, optimizers, callbacks.

The preprocessor runs in tf.data (asynchronously, on the CPU), so the model trains on token ids or TF-IDF
vectors and the same preprocessor layer is folded into the exported graph afterwards.
"""

import dataclasses
import json
import logging
import os
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import zoo
from zoo import compat
from zoo import heads

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
DTYPE_POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16", "bfloat16", "float16")


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_info(cpuinfo="/proc/cpuinfo"):
    """This machine's CPU: model, core count, and the flags that decide BERT's speed here (AVX-512 about 3.5x
    AVX2; AVX512_BF16 or AMX for mixed_bfloat16). Recorded with every benchmark figure."""
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        text = ""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", "unknown"), "cores": os.cpu_count(),
            "flags": {flag: flag in flags for flag in CPU_FLAGS}}


def cpu_has_bf16():
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX), where mixed_bfloat16 pays off."""
    flags = cpu_info()["flags"]
    return flags["avx512_bf16"] or flags["amx_bf16"]


@dataclasses.dataclass
class Runtime:
    strategy: object
    dtype_policy: str
    jit_compile: bool
    device: str
    seed: int
    # Multi-worker training: this process's task ("worker", 1) and whether it is the chief, the one process that
    # writes the run directory, the metrics and the export. A single process is its own chief.
    task: tuple = (None, None)
    is_chief: bool = True

    def record(self):
        return {"strategy": type(self.strategy).__name__, "replicas": self.strategy.num_replicas_in_sync,
                "dtype_policy": self.dtype_policy, "jit_compile": self.jit_compile, "device": self.device,
                "seed": self.seed, **({"task": list(self.task)} if self.task[0] else {})}


def is_chief(task_type, task_id, cluster_spec=None):
    """The tf.distribute convention: the "chief" task, or worker 0 of a cluster without one."""
    if task_type is None or task_type == "chief":
        return True
    has_chief = bool(cluster_spec) and "chief" in cluster_spec
    return task_type == "worker" and task_id == 0 and not has_chief


def configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="auto", jit_compile=None, strategy="default",
                      family="transformer", logical_cpu_devices=None, tpu_address=None, deterministic=True):
    """Seeds everything and picks devices, dtype policy, XLA and the distribution strategy.

    Args:
        dtype_policy: "auto" is mixed_float16 on a GPU, mixed_bfloat16 for transformers on a CPU with native
            bfloat16, float32 otherwise; or any Keras policy name.
        jit_compile: None for "on where a GPU is present" (XLA was slower than plain TF on CPUs here).
        strategy: "default", "mirrored" (all local GPUs, or logical CPUs), "multi_worker" (TF_CONFIG), "tpu".
        logical_cpu_devices: split the CPU into this many logical devices (must run before TensorFlow starts).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}. Allowed: {list(STRATEGIES)}.")
    if dtype_policy not in DTYPE_POLICIES:
        raise ValueError(f"Unknown dtype policy {dtype_policy!r}. Allowed: {list(DTYPE_POLICIES)}.")
    if logical_cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(logical_cpu_devices))])
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU" if gpus else f"CPU ({os.cpu_count()} cores)"
    if dtype_policy == "auto":
        if gpus:
            dtype_policy = "mixed_float16"
        elif family == "transformer" and cpu_has_bf16():
            dtype_policy = "mixed_bfloat16"
        else:
            dtype_policy = "float32"
    keras.mixed_precision.set_dtype_policy(dtype_policy)
    if jit_compile is None:
        jit_compile = bool(gpus)
    if strategy == "mirrored":
        devices = None
        if not gpus:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        distribution = tf.distribute.MirroredStrategy(devices=devices)
    elif strategy == "multi_worker":
        distribution = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = distribution.cluster_resolver
        task = (resolver.task_type, resolver.task_id)
        chief = is_chief(*task, resolver.cluster_spec().as_dict())
        device = f"{device}, task {task[0]} {task[1]} of {len(resolver.cluster_spec().as_dict().get('worker', []))}"
    elif strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        distribution = tf.distribute.TPUStrategy(resolver)
        device = "TPU"
    else:
        distribution = tf.distribute.get_strategy()
    if strategy != "multi_worker":
        task, chief = (None, None), True
    return Runtime(distribution, dtype_policy, bool(jit_compile), device, seed, task, chief)


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
    ds = ds.batch(batch_size).map(lambda x, y: (_densify(preprocessor(x)) if dense else preprocessor(x),
                                                heads.prepare_labels(y, head_type)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def input_pipeline(settings, texts, labels, preprocessor, layout, head_type, seed, shuffle):
    """`make_dataset` as `settings` say (`TextClassifier.input_settings`, recorded in a run's config.json as
    "input"): what training runs on, and what the benchmark measures the token share of."""
    return make_dataset(texts, labels, preprocessor, head_type, settings["batch_size"], shuffle=shuffle, seed=seed,
                        bucket_width=settings["bucket_width"], dense=settings["dense"], layout=layout)


def _preprocessed_examples(ds, preprocessor, layout):
    """(text, label) -> (inputs cut to the example's own length, label), tokenised once and kept in memory.

    In chunks (fast), and a few hundred bytes an example: later epochs spend no CPU on tokenising, which on a 2-core
    machine competes with training (long texts: BBC News epochs ran 30 % slower than their median step before)."""
    def trim(x, y):
        length = layout.lengths(x)
        return tf.nest.map_structure(lambda v: v[:length], x), y

    ds = ds.batch(256).map(lambda x, y: (preprocessor(x), y), num_parallel_calls=tf.data.AUTOTUNE)
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
    # over a graph holding keras-hub's tokenizer, took ~11 s each (measured on Reuters R8: epoch 2 of 400
    # examples 33 s -> 21 s without them). This pipeline sets its own parallelism and prefetching.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


# Cached features are stored in float16 (half the memory of float32; BERT's hidden states after LayerNorm are of
# order 1-10, well inside its range) and computed on in float32 or the policy's compute dtype. Measured on Reuters
# R8's quick recipe: float16 and float32 storage give the same test accuracy and macro-F1 (0.9724 / 0.9398).
FEATURE_STORAGE_DTYPE = "float16"


def cache_features(frozen_prefix, texts, labels, preprocessor, input_layout, batch_size, bucket_width,
                   storage_dtype=FEATURE_STORAGE_DTYPE):
    """Runs the frozen prefix of a network (`backbones.FrozenPrefix`) once over every example, in inference mode
    (it is frozen, so its outputs do not change from epoch to epoch) and in batches of similar length, and keeps
    each example's features cut to its own length, in memory.

    Returns (features, labels): a dict of RaggedTensors [examples, (length), ...] (or arrays, for fixed-size
    features) and the examples' labels, in the order the features are kept in.
    Written here because neither Keras nor keras-hub caches the frozen part of a network (AutoFreeze, arXiv
    2102.01386, does, for up to 2.55x faster fine-tuning)."""
    n = len(texts)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), dtype=tf.string), tf.range(n)))
    if bucket_width and input_layout.variable_length:
        batches = _bucketed(_preprocessed_examples(ds, preprocessor, input_layout), n, input_layout, None,
                            batch_size, False, None, bucket_width)
    else:
        batches = ds.batch(batch_size).map(lambda x, y: (preprocessor(x), y))
    prefix, layout = frozen_prefix.prefix, frozen_prefix.layout

    @tf.function(input_signature=[batches.element_spec[0]])  # One trace for batches of every length.
    def run(x):
        return _cast_floating(prefix(x, training=False), storage_dtype)

    # Every batch of token ids (a few bytes a token) is made before the prefix runs: tf.data's threads working
    # beside oneDNN's on 2 cores made the same pass take 10.2 s instead of 6.3 s in 2 of 3 tries (BBC News, 320
    # texts); made first, they cost 0.6 s.
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


class WholeModelValidation(keras.callbacks.Callback):
    """Validation of a whole model while only a part of it trains (its top, on cached features): at the end of
    every epoch, the whole model's `val_` metrics go into the epoch's logs, as `fit(validation_data=...)` puts
    them, for the callbacks after this one (early stopping, checkpoints, history)."""

    def __init__(self, whole_model, dataset):
        super().__init__()
        self.whole_model, self.dataset = whole_model, dataset

    def on_epoch_end(self, epoch, logs=None):
        results = self.whole_model.evaluate(self.dataset, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"val_{k}": float(v) for k, v in results.items()})


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


@keras.saving.register_keras_serializable(package="textzoo")
class LinearWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's schedule: linear warm-up to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    Keras has cosine decay with warm-up but no linear decay with warm-up, which BERT fine-tuning uses.
    """

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay = self.peak * keras.ops.maximum(0.0, (self.total_steps - step)
                                              / max(self.total_steps - self.warmup_steps, 1))
        return keras.ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="textzoo")
class Adam(compat.FusedAdamUpdate, keras.optimizers.Adam):
    """keras.optimizers.Adam with TensorFlow's fused update (`compat.FusedAdamUpdate`)."""


@keras.saving.register_keras_serializable(package="textzoo")
class AdamW(compat.FusedAdamUpdate, keras.optimizers.AdamW):
    """keras.optimizers.AdamW with TensorFlow's fused update (`compat.FusedAdamUpdate`); the decoupled weight decay
    is Keras'."""


def make_optimizer(family, learning_rate, total_steps, warmup_fraction=0.0, weight_decay=0.0):
    """AdamW with linear warm-up and decay for transformers (as BERT); Adam for the others."""
    if family == "transformer":
        schedule = LinearWarmupLinearDecay(learning_rate, round(warmup_fraction * total_steps), total_steps)
        optimizer = AdamW(learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6, global_clipnorm=1.0)
        # As in BERT: no decay on biases and LayerNorm parameters.
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer
    if weight_decay:
        return AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    return Adam(learning_rate=learning_rate)


class HistoryWriter(keras.callbacks.Callback):
    """Appends each epoch's logs to history.jsonl as it ends: results are files, and survive an interruption.
    `seconds`: training wall seconds up to the end of the epoch, counted from `started` (a time.time()) plus
    `offset` (the seconds of the epochs run before an interruption)."""

    def __init__(self, path, started=None, offset=0.0):
        super().__init__()
        self.path = pathlib.Path(path)
        self.started = time.time() if started is None else started
        self.offset = offset

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "seconds": round(self.offset + time.time() - self.started, 2)}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_history(path, before_epoch=None):
    """Rows of history.jsonl, keeping only epochs <= `before_epoch` (those a resumed run will not redo)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if before_epoch is not None:
        rows = [r for r in rows if r["epoch"] <= before_epoch]
    return rows


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on val_loss that carries on from an interrupted run: BackupAndRestore restores the weights, the
    optimizer and the epoch but no callback state, so the best val_loss and the epochs waited since come from the
    history of the epochs already run. Without this, a resumed run would wait `patience` epochs afresh."""

    def __init__(self, previous_history, **kwargs):
        super().__init__(monitor="val_loss", **kwargs)
        self.previous = [r for r in previous_history if "val_loss" in r]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.previous:
            best = min(self.previous, key=lambda r: r["val_loss"])
            self.best = best["val_loss"]
            self.best_epoch = best["epoch"] - 1  # Keras counts epochs from 0, history.jsonl from 1.
            self.wait = self.previous[-1]["epoch"] - best["epoch"]


class SharedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore for multi-worker training, as the tf.distribute guide prescribes: every worker restores
    from the chief's backup (`read_dir`, on storage all workers share), so all resume at the same epoch with the same
    weights; each writes its own backup to `write_dir` (the chief's is `read_dir`; the others', a temporary
    directory). Keras 3's callback has no notion of a chief. One process: both are the same directory."""

    def __init__(self, read_dir, write_dir):
        super().__init__(str(write_dir), delete_checkpoint=True)
        self._reader = keras.callbacks.BackupAndRestore(str(read_dir), delete_checkpoint=False)

    def on_train_begin(self, logs=None):
        # Keras' own restore, from the shared directory (the weights and the epoch to start at).
        self._reader.set_model(self.model)
        self._reader.on_train_begin(logs)


def resumed_epoch(backup_dir):
    """The epoch a BackupAndRestore backup in `backup_dir` resumes at (0 when there is none)."""
    metadata = pathlib.Path(backup_dir) / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


def fit(core, train_ds, validation_ds, run_dir, epochs, patience, class_weight=None, extra_callbacks=(),
        shared_run_dir=None, validation_model=None, started=None):
    """Keras fit with early stopping, best-weights checkpoint, BackupAndRestore, TensorBoard and history files.

    A killed run started again with the same run_dir resumes after the last finished epoch. Returns the
    per-epoch history (all epochs, including those before a resume) and the epoch of the best weights.
    `shared_run_dir`: for a multi-worker task other than the chief, the chief's run directory, where the backup
    and history it resumes from are read; this task writes only into `run_dir` (a temporary directory).
    `validation_model`: where `core` is a part of a model (the top of a network, on cached features), the whole
    model, which `validation_ds` feeds (`WholeModelValidation`).
    `started`: when training started (time.time(); default now), for the `seconds` of every epoch in the history:
    work done before `fit` (caching features) counts.
    """
    run_dir = pathlib.Path(run_dir)
    shared_run_dir = pathlib.Path(shared_run_dir or run_dir)
    backup_dir = run_dir / "backup"
    start = resumed_epoch(shared_run_dir / "backup")
    history_file = run_dir / "history.jsonl"
    previous = read_history(shared_run_dir / "history.jsonl", before_epoch=start)
    history_file.write_text("".join(json.dumps(r) + "\n" for r in previous))
    if start:
        logging.info("Resuming %s after epoch %d (BackupAndRestore).", run_dir, start)
    best_file = run_dir / "checkpoints" / "best.weights.h5"
    best_file.parent.mkdir(parents=True, exist_ok=True)
    best_so_far = min((r["val_loss"] for r in previous if "val_loss" in r), default=None)
    validation = [WholeModelValidation(validation_model, validation_ds)] if validation_model is not None else []
    callbacks = [
        *extra_callbacks,  # First: a timer's epoch ends before the whole-model validation.
        *validation,  # Before the rest: they read its val_ metrics.
        # Before the backup: an epoch in the backup is always in the history.
        HistoryWriter(history_file, started, previous[-1].get("seconds", 0.0) if previous else 0.0),
        keras.callbacks.ModelCheckpoint(str(best_file), monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best_so_far),
        ResumableEarlyStopping(previous, patience=patience, restore_best_weights=False),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
        SharedBackupAndRestore(shared_run_dir / "backup", backup_dir),
    ]
    verbose = 1 if sys.stdout.isatty() else 2
    with compat.multi_worker_fit(core):
        core.fit(train_ds, validation_data=None if validation else validation_ds, epochs=epochs, callbacks=callbacks,
                 class_weight=class_weight, verbose=verbose, shuffle=False)  # tf.data shuffles already.
    if best_file.exists():
        core.load_weights(str(best_file))
    history = read_history(history_file)
    best_epoch = min(history, key=lambda r: r.get("val_loss", float("inf")))["epoch"] if history else None
    return history, best_epoch
