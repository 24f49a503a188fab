"""Timing that leaves warm-up and compilation out: per-step timers, steady-state medians, latency percentiles; and
measurements run in a fresh process (`in_fresh_process`)."""

import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np


def steady_state(durations, warmup):
    """The durations after the first `warmup` ones (tracing and compilation happen there); all if too few."""
    durations = list(durations)
    return durations[warmup:] if len(durations) > warmup else []


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every training step and of the training part of every epoch (validation out).

    Steady-state throughput is `batch_size / median(step time)` over the steps after `warmup_steps`; whole-epoch
    throughput is examples per second over the epochs after the first (which pays for tracing).
    """

    def __init__(self, warmup_steps=3, clock=time.perf_counter):
        super().__init__()
        self.warmup_steps = warmup_steps
        self.clock = clock
        self.step_seconds = []
        self.epoch_seconds = []
        self._step_start = None
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()

    def on_test_begin(self, logs=None):
        self._end_of_training_part()  # Validation is not training time.

    def on_epoch_end(self, epoch, logs=None):
        self._end_of_training_part()

    def _end_of_training_part(self):
        if self._epoch_start is not None:
            self.epoch_seconds.append(self.clock() - self._epoch_start)
            self._epoch_start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._step_start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self.step_seconds.append(self.clock() - self._step_start)

    def summary(self, batch_size, examples_per_epoch):
        steady = steady_state(self.step_seconds, self.warmup_steps)
        # Whole epochs after the first; with a single epoch, that epoch minus its warm-up steps.
        if len(self.epoch_seconds) > 1:
            epoch_rate = examples_per_epoch * (len(self.epoch_seconds) - 1) / sum(self.epoch_seconds[1:])
        elif steady:
            epoch_rate = max(examples_per_epoch - self.warmup_steps * batch_size, 1) / sum(steady)
        else:
            epoch_rate = None
        return {
            "train_steps_timed": len(steady),
            "train_step_seconds_median": float(np.median(steady)) if steady else None,
            "train_examples_per_second_steady": float(batch_size / np.median(steady)) if steady else None,
            "train_examples_per_second_epoch": float(epoch_rate) if epoch_rate else None,
        }


def batch_shapes(batches):
    """[(examples, token positions)] of each (inputs, labels) batch: every input tensor of a batch has the shape
    [batch, tokens computed on]; the first one says it."""
    return [tuple(int(d) for d in keras.tree.flatten(batch[0])[0].shape[:2]) for batch in batches]


def token_share(shapes, examples, sequence_length):
    """Token positions one epoch of (bucketed) batches (`batch_shapes`) computes on, as a share of padding every
    example to `sequence_length`, which is what the stock pipeline computes on. The training speed-up that skipping
    padding can give in the same dtype is about its inverse (a little more: attention grows faster than linearly)."""
    return sum(b * n for b, n in shapes) / (examples * sequence_length)


def in_fresh_process(module, request, what, env=None, timeout=1800):
    """`python -m MODULE REQUEST_JSON` in a fresh process from the repository root (a process that trained or served
    before holds memory, threads and settings of its own), `request` written as that JSON file and `env` added to
    the environment; returns its last line of output, read as JSON. `what` names the measurement in its error."""
    with tempfile.TemporaryDirectory() as tmp:
        request_file = pathlib.Path(tmp) / "request.json"
        request_file.write_text(json.dumps(request))
        result = subprocess.run([sys.executable, "-m", module, str(request_file)],
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                                cwd=pathlib.Path(__file__).resolve().parents[1], capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def served(export_path):
    """A batch of texts -> the probabilities the export's serving_default returns (numpy), loaded in this process."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    return lambda batch: serve(text=tf.constant(batch, dtype=tf.string, shape=[len(batch)]))["probabilities"].numpy()


def time_batches(fn, batches, warmup=2, min_seconds=1.0, clock=time.perf_counter):
    """Calls `fn` on each batch, `warmup` calls untimed first; returns examples/s from the median batch time.

    Passes over `batches` repeat until `min_seconds` have been timed (as timeit's autorange): a fast model's batch
    takes about a millisecond, where a single pass of a few batches is mostly noise.
    """
    for batch in batches[:warmup]:
        fn(batch)
    seconds, sizes = [], []
    while not seconds or sum(seconds) < min_seconds:
        for batch in batches:
            start = clock()
            fn(batch)
            seconds.append(clock() - start)
            sizes.append(len(batch))
    per_example = np.median(np.asarray(seconds) / np.asarray(sizes))
    return float(1.0 / per_example)


def alternated_rates(settings, batches, rounds=3, min_seconds=1.0, clock=time.perf_counter):
    """examples/s of each of `settings` ({name: (fn, setup)}: `setup()` then `fn` per batch, as `time_batches`),
    timed in `rounds` alternating windows, the median of each's windows. Rates compared as ratios are then taken in
    the same minutes: this machine's speed moves by 10-20 % within a minute, which one window each measured apart
    puts into the ratio (served bf16 at load over float32 read 1.13x in one run and 1.39x alone)."""
    rates = {name: [] for name in settings}
    for _ in range(rounds):
        for name, (fn, setup) in settings.items():
            setup()
            rates[name].append(time_batches(fn, batches, warmup=1, min_seconds=min_seconds, clock=clock))
    return {name: float(np.median(values)) for name, values in rates.items()}


def latency_percentiles(fn, items, warmup=5, clock=time.perf_counter):
    """p50 and p95 latency in milliseconds of `fn` on single items, after `warmup` untimed calls."""
    for item in items[:warmup]:
        fn(item)
    seconds = []
    for item in items:
        start = clock()
        fn(item)
        seconds.append(clock() - start)
    return {"p50_ms": float(np.percentile(seconds, 50) * 1e3), "p95_ms": float(np.percentile(seconds, 95) * 1e3)}


def matmul_peak_gflops(size=2048, seconds=1.0, dtype="float32", clock=time.perf_counter):
    """This machine's dense matrix-multiply rate in GFLOP/s (2 size^3 per product), every core busy (TensorFlow's
    matmul runs on all its intra-op threads): the median over `seconds` of repeats after a warm-up. BERT's work is
    almost all such products, so a share of this rate is comparable between machines where seconds are not."""
    import tensorflow as tf

    a = tf.random.stateless_uniform((size, size), seed=(1, 2), dtype=dtype)
    b = tf.random.stateless_uniform((size, size), seed=(3, 4), dtype=dtype)
    product = tf.function(tf.linalg.matmul)
    product(a, b).numpy()
    durations, end = [], clock() + seconds
    while clock() < end or len(durations) < 3:
        start = clock()
        product(a, b).numpy()
        durations.append(clock() - start)
    return 2 * size ** 3 / float(np.median(durations)) / 1e9


def matmul_rates(seconds=1.0):
    """`matmul_peak_gflops` of float32, and of bfloat16 where the CPU computes it natively (AVX512_BF16 or AMX)."""
    from zoo import training

    dtypes = ["float32"] + (["bfloat16"] if training.cpu_has_bf16() else [])
    return {dtype: round(matmul_peak_gflops(dtype=dtype, seconds=seconds), 1) for dtype in dtypes}


class MatmulRates:
    """This machine's matmul rate (`matmul_rates`) measured at the edges of each timed stage of a row: a
    stage's FLOP rate is then a share of the rate the machine had while the stage ran. A shared machine's rate moves
    by 10-20 % from one minute to the next (and the run's figure, measured once at its start, is an hour old by its
    last rows). Measuring costs about 2 s per dtype; `enabled=False` (rows with no FLOP rates: the GloVe and n-gram
    models) measures nothing."""

    def __init__(self, enabled, measure=None):
        self.enabled, self.measure = enabled, measure or matmul_rates
        self.stages, self._last = {}, None

    def mark(self, ended=None):
        """Measures now; `ended`, the stage that ran since the last mark, gets the mean of the two."""
        if not self.enabled:
            return
        now = self.measure()
        if ended and self._last:
            self.stages[ended] = {dtype: round((self._last[dtype] + now[dtype]) / 2, 1) for dtype in now}
        self._last = now


def _machine_cpu_seconds():
    """(busy, steal) CPU seconds of the whole machine since boot, from Linux's /proc/stat; None elsewhere."""
    try:
        fields = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hz, steal / hz


def _own_cpu_seconds():
    """CPU seconds of this process and of its children that have been waited for (a recipe's whole process tree)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class OtherCpu:
    """Measures the CPU time other processes took on this machine during a block (and the hypervisor's steal).

    Every throughput number assumes the recipe had the machine to itself: on 2 cores, a test suite or a second
    benchmark running beside it takes CPU from every step. Waited-for children of this process count as
    ours, so run the recipe with subprocess.run inside the block. On systems without /proc/stat both stay None.
    """

    def __init__(self, machine_cpu_seconds=_machine_cpu_seconds, own_cpu_seconds=_own_cpu_seconds):
        self.other_seconds = None
        self.steal_seconds = None
        self._machine_cpu_seconds = machine_cpu_seconds
        self._own_cpu_seconds = own_cpu_seconds

    def __enter__(self):
        self._start = self._machine_cpu_seconds(), self._own_cpu_seconds()
        return self

    def __exit__(self, *exc_info):
        machine, own = self._machine_cpu_seconds(), self._own_cpu_seconds()
        if machine is not None and self._start[0] is not None:
            busy = machine[0] - self._start[0][0]
            # Clock ticks are coarse (10 ms): never report a negative share.
            self.other_seconds = max(0.0, busy - (own - self._start[1]))
            self.steal_seconds = machine[1] - self._start[0][1]
        return False


# TensorFlow op types by what they compute, for `op_seconds`: the matrix products (oneDNN's kernels and plain
# TensorFlow's; a fused one includes the bias and activation it absorbed), dtype casts and the random numbers of
# dropout masks; the rest of a BERT step's forward and backward pass is elementwise work (activations and their
# gradients, layer norms, softmax, bias gradients).
MATMUL_OPS = frozenset({"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "_MklMatMul",
                        "_MklBatchMatMul", "_MklBatchMatMulV2", "_MklEinsum", "_MklFusedMatMul",
                        "_MklFusedBatchMatMulV2", "_MklNativeFusedMatMul"})
RANDOM_OPS_PREFIXES = ("StatelessRandom", "RandomUniform", "RandomStandardNormal", "StatelessTruncatedNormal")


def op_category(name, model_scope):
    """What a profiled op named `scope/.../name:OpType` computes: "matmul", "random" (dropout masks), "cast" or
    "elementwise" in the forward pass of the model named `model_scope` (TensorFlow suffixes it: model_1) or its
    gradients (gradient_tape/...), else "optimizer and loss"."""
    scope, op_type = name.rsplit(":", 1)
    top = scope.split("/")[0]
    if top != "gradient_tape" and not re.fullmatch(re.escape(model_scope) + r"(_\d+)?", top):
        return "optimizer and loss"
    if op_type in MATMUL_OPS:
        return "matmul"
    if op_type.startswith(RANDOM_OPS_PREFIXES):
        return "random"
    if op_type == "Cast":
        return "cast"
    return "elementwise"


def op_seconds(fn, logdir, model_scope):
    """Runs `fn()` once under TensorFlow's profiler; returns its wall seconds, how many of TensorFlow's op threads
    ran ops, their busy seconds by `op_category` (each thread counted: two threads busy for a second are 2 s) and
    by op type (`op_type_seconds`: which kernels ran, e.g. whether oneDNN's fusions fired).

    Read from the trace's XPlane protobuf (what TensorBoard's profile plugin reads; the plugin is not installed
    here): every executed op is an event named `scope/name:OpType` on a `tf_Compute` thread."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(str(logdir))
    start = time.perf_counter()
    try:
        fn()
    finally:
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(sorted(pathlib.Path(logdir).rglob("*.xplane.pb"))[-1].read_bytes())
    seconds, by_type, threads = {}, {}, set()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # ExecutorState::Process wraps the ops an executor runs; the ops themselves are scope:OpType.
                if ":" not in name or name.endswith(":Process"):
                    continue
                threads.add(line.name)
                category = op_category(name, model_scope)
                seconds[category] = seconds.get(category, 0.0) + event.duration_ps / 1e12
                op_type = name.rsplit(":", 1)[1]
                by_type[op_type] = by_type.get(op_type, 0.0) + event.duration_ps / 1e12
    return {"wall_seconds": wall, "op_threads": len(threads), "op_seconds": seconds,
            "op_type_seconds": dict(sorted(by_type.items(), key=lambda item: -item[1]))}


def full_finetuning(model, recipe, head_type, batches, shape, stock_rate, steps, warmup, profile_dir, min_seconds=0.0,
                    max_steps=50):
    """Our pipeline fine-tuning every layer, the work the stock pipeline times: training steps of the trained
    `model`'s core with the recipe's optimizer, on the first batches of the recipe's shuffled, length-bucketed
    training pipeline `batches`, timed after `warmup` untimed ones: at least `steps`, and more until `min_seconds`
    are timed (at most `max_steps`), so that where steps are short the sample covers more of the epoch's lengths;
    then one more step under TensorFlow's profiler, to say where a step's time goes (`op_seconds`).

    Against the stock rate: the speed-up, the token share of the timed batches (the bound of skipping padding in the
    same dtype is about its inverse: it counts positions, while attention's work grows with their square) and their
    product, the share of that bound reached; and the FLOP rate."""
    import tensorflow as tf

    from benchmarks import flops
    from zoo import compat
    from zoo import heads
    from zoo import training

    core = model.core
    for layer in compat.all_layers(core):
        layer.trainable = True
    loss, metric = heads.loss_and_metric(head_type)
    # The recipe's optimizer (AdamW, clipping, decay); the schedule's length changes no step's work.
    core.compile(optimizer=training.make_optimizer("transformer", recipe["learning_rate"], steps + warmup + 1,
                                                   recipe["warmup_fraction"], recipe["weight_decay"]),
                 loss=loss, metrics=[metric])
    # One trace for batches of every length (Keras' own train function traces again for a second shape).
    step = tf.function(lambda x, y: core.train_step((x, y))["loss"], input_signature=batches.element_spec)
    batch_iterator = iter(batches)
    for _ in range(warmup):
        float(step(*next(batch_iterator)))
    timed, seconds = [], []
    batch = next(batch_iterator)
    while batch is not None:
        start = time.perf_counter()
        float(step(*batch))
        seconds.append(time.perf_counter() - start)
        timed.append(batch)
        batch = next(batch_iterator, None)
        if len(seconds) >= steps and (sum(seconds) >= min_seconds or len(seconds) >= max_steps):
            break
    shapes = batch_shapes(timed)
    examples = sum(b for b, _ in shapes)
    rate = examples / sum(seconds)
    share = token_share(shapes, examples, recipe["sequence_length"])
    profiled = batch if batch is not None else timed[-1]  # The pipeline's next batch, if it has one.
    profile = op_seconds(lambda: float(step(*profiled)), profile_dir, core.name)
    profile["batch_shape"] = batch_shapes([profiled])[0]
    profile["gflops_per_second"] = flops.training_epoch(shape, [profile["batch_shape"]]) / profile["wall_seconds"] / 1e9
    result = {"steps_timed": len(seconds), "batch_shapes": shapes, "examples_per_second": rate,
              "token_share_of_stock": share,
              "gflops_per_second": flops.training_epoch(shape, shapes) / sum(seconds) / 1e9, "profiled_step": profile}
    if stock_rate:
        result["speedup_vs_stock"] = rate / stock_rate
        # Skipping padding speeds training up by about the inverse of the token share (1.0); attention, quadratic
        # in the length, can take it past 1.
        result["share_of_bound"] = rate / stock_rate * share
    return result


def shared_stock_timings(cache_file, key, recipe_name):
    """(timings or None, record): the stock pipeline's timings for `key` from `cache_file` if a recipe of this run
    measured them, and `record(timings)`, which adds ours to it. Its steps have one shape whatever the data (fixed-
    length padding), so they depend only on the key: measured again per dataset, R8's and SpamAssassin's agreed
    within 7 % (9.38 and 10.03 examples/s at 256 tokens) and cost a minute each."""
    from benchmarks import progress

    cache_file = pathlib.Path(cache_file) if cache_file else None
    cache = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}

    def record(timings):
        # The runner runs one recipe at a time: nothing else wrote the file since it was read.
        if cache_file is not None and key not in cache:
            progress.write_json(cache_file, {**cache, key: {**timings, "measured_by": recipe_name}}, indent=2)

    return cache.get(key), record
