"""Timing that leaves warm-up and compilation out: per-step timers, steady-state medians, latency percentiles."""

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


def token_share(batches, examples, sequence_length):
    """Token positions one epoch of (bucketed) batches computes on, as a share of padding every example to
    `sequence_length`, which is what the stock pipeline computes on. The training speed-up that skipping padding
    can give in the same dtype is about its inverse (a little more: attention grows faster than linearly)."""
    computed = sum(int(np.prod(batch[0]["token_ids"].shape)) for batch in batches)
    return computed / (examples * sequence_length)


def time_batches(fn, batches, warmup=2, repeats=1, clock=time.perf_counter):
    """Calls `fn` on each batch, `warmup` calls untimed first; returns examples/s from the median batch time."""
    for batch in batches[:warmup]:
        fn(batch)
    seconds, sizes = [], []
    for _ in range(repeats):
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
