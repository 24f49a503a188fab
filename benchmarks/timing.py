"""Timing that leaves warm-up and compilation out: per-step timers, steady-state medians, latency percentiles."""

import os
import pathlib
import resource
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
