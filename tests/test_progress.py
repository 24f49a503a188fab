"""The benchmark's progress display and duration estimate (benchmarks.progress)."""

import io

import keras
import numpy as np
import pytest

from benchmarks import progress


def recipe(name, dataset, backbone="minilm_l6", epochs=3, sequence_length=256, cap=5000):
    return {"recipe": name, "dataset": dataset, "backbone": backbone, "budget": "quick", "epochs": epochs,
            "sequence_length": sequence_length, "max_examples": {"train": cap} if cap else None}


def row(name, dataset, seconds, examples=1487, epochs=3, sequence_length=256, peak=None, **extra):
    return {"recipe": name, "dataset": dataset, "budget": "quick", "wall_seconds": seconds,
            "examples": {"train": examples}, "epochs": epochs, "epochs_run": 1, "sequence_length": sequence_length,
            **({"matmul_peak_gflops": {"float32": peak}} if peak else {}), **extra}


REFERENCE = row("reference_sklearn_tfidf_lr_bbc_news", "bbc_news", 8.0, examples=1487)


def test_estimate_repeats_the_last_run_scales_changed_work_and_the_peak():
    settings = {"a": recipe("a", "bbc_news"), "b": recipe("b", "bbc_news", sequence_length=512),
                "c": recipe("c", "bbc_news", backbone="glove", cap=None)}
    rows = [REFERENCE,
            row("a", "bbc_news", 999.0),  # Superseded by the later row of the same recipe.
            row("a", "bbc_news", 300.0),
            row("b", "bbc_news", 300.0, bf16_parity={"float32_wall_seconds": 200.0}),
            row("x", "bbc_news", 50.0, error="boom")]
    estimates, basis = progress.estimate(["a", "b", "c"], settings, rows, peak_gflops=None, parity={"b"})
    overhead = progress.PROCESS_OVERHEAD_SECONDS
    assert estimates["reference_sklearn_tfidf_lr_bbc_news"] == 8.0
    assert estimates["a"] == pytest.approx(300.0 + overhead)
    # Twice the positions per example; the float32 rerun of the parity check is part of the recipe's time.
    assert estimates["b"] == pytest.approx((300.0 + 200.0) * 2 + overhead)
    # Never run: the median of its family's estimates, else of all.
    assert estimates["c"] == pytest.approx(np.median([estimates["a"] - overhead, estimates["b"] - overhead]))
    assert basis == {"as last run": 1, "scaled": 1, "family median": 1}
    assert list(estimates) == ["reference_sklearn_tfidf_lr_bbc_news", "a", "b", "c"]

    # Epochs set, not run (early stopping stopped it after 1 of 3): unchanged; 4 now: 4/3 of the time.
    assert progress.estimate(["a"], {"a": recipe("a", "bbc_news", epochs=4)}, [REFERENCE, row("a", "bbc_news", 300.0)],
                             peak_gflops=None)[0]["a"] == pytest.approx(400.0 + overhead)
    # Rows that say how long training took: only the epochs scale with them, caching with the examples, the
    # rest (evaluation, export, timings) stays; all of it with the positions.
    timed = row("a", "bbc_news", 300.0, fit_seconds=200.0, caching_seconds=50.0)
    for now, expected in ((recipe("a", "bbc_news", epochs=2), 150.0 * 2 / 3 + 50.0 + 100.0),
                          (recipe("a", "bbc_news", sequence_length=512), 600.0)):
        assert progress.estimate(["a"], {"a": now}, [REFERENCE, timed], peak_gflops=None)[0]["a"] == pytest.approx(
            expected + overhead)
    # A machine with twice the measured peak of the run the rows came from takes half the time.
    rows = [REFERENCE, row("a", "bbc_news", 300.0, peak=100.0)]
    estimates, _ = progress.estimate(["a"], {"a": settings["a"]}, rows, peak_gflops=200.0)
    assert estimates["a"] == pytest.approx(150.0 + overhead)


def test_estimate_takes_the_training_examples_from_the_cap_and_the_whole_split():
    # The last run used 5000 of 10135 (its cap); uncapped now: twice the examples.
    rows = [row("reference_sklearn_tfidf_lr_ng", "ng", 40.0, examples=10135), row("a", "ng", 500.0, examples=5000)]
    estimates, _ = progress.estimate(["a"], {"a": recipe("a", "ng", cap=None)}, rows, peak_gflops=None)
    assert estimates["a"] == pytest.approx(500.0 * 10135 / 5000 + progress.PROCESS_OVERHEAD_SECONDS)
    assert progress.train_examples(recipe("a", "ng", cap=20000), {"ng": 10135}) == 10135
    assert progress.train_examples(recipe("a", "ng", cap=4000), {"ng": 10135}) == 4000
    assert progress.train_examples(recipe("a", "ng", cap=None), {}) is None


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_piped_progress_prints_a_line_per_stage_and_a_heartbeat_without_carriage_returns(tmp_path):
    clock, stream = FakeClock(), io.StringIO()
    display = progress.RunProgress({"a": 100.0, "b": 300.0}, stream=stream, heartbeat=60, clock=clock)
    assert not display.interactive
    stage_file = tmp_path / "stage.json"
    stages = progress.StageFile(stage_file)
    display.start("a", "[1/2] a")
    stages("training", epochs=3, steps=48)
    stages.update(epoch=1, step=10)
    display.poll(stage_file)
    clock.now += 5
    stages.update(step=20)
    display.poll(stage_file)  # Same stage and epoch, within the heartbeat: no line.
    clock.now += 61
    display.poll(stage_file)  # Heartbeat.
    stages.update(epoch=2, step=1)
    display.poll(stage_file)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/2] a (estimated 1m40s; 0m00s elapsed, about 6m40s left")
    assert [line.split(" (")[0] for line in lines[1:]] == [
        "    training: epoch 1/3, step 10/48", "    training: epoch 1/3, step 20/48",
        "    training: epoch 2/3, step 1/48"]
    assert "\r" not in stream.getvalue()
    # The first recipe took twice its estimate: the rest is expected to take longer too, by as much as 100 s of
    # evidence weighs against the estimate's PRIOR_SECONDS.
    clock.now += 134
    display.finish("a", 200.0)
    ratio = (200.0 + progress.PRIOR_SECONDS) / (100.0 + progress.PRIOR_SECONDS)
    assert 1.0 < ratio < 2.0
    assert display.remaining() == pytest.approx(300.0 * ratio)
    display.start("b")
    clock.now += 100
    assert display.remaining() == pytest.approx(300.0 * ratio - 100.0)
    display.close()


def test_terminal_progress_draws_two_bars(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream, clock = Terminal(), FakeClock()
    display = progress.RunProgress({"a": 100.0}, stream=stream, clock=clock)
    stages = progress.StageFile(tmp_path / "stage.json")
    display.start("a")
    stages("training", epochs=2, steps=10)
    stages.update(epoch=1, step=4)
    clock.now += 30
    display.poll(tmp_path / "stage.json")
    assert display.stage_bar.n == 4 and display.stage_bar.total == 10
    assert display.matrix_bar.n == 30
    assert "a | training: epoch 1/2, step 4/10" in stream.getvalue()
    display.close()


def test_stage_file_and_epoch_progress_in_a_real_fit(tmp_path):
    stage_file = tmp_path / "stage.json"
    assert progress.read_stage(stage_file) == {}
    stages = progress.StageFile(stage_file)
    stages("training", epochs=2, steps=6)  # An estimate from above: 4 steps run.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((16, 3), "float32"), np.ones((16, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), verbose=0,
              callbacks=[progress.EpochProgress(stages, interval=0.0)])
    stage = progress.read_stage(stage_file)
    assert (stage["stage"], stage["epoch"], stage["epochs"], stage["step"], stage["steps"]) == (
        "training", 2, 2, 4, 4)
    assert progress.describe(stage) == "training: epoch 2/2, step 4/4"
    assert progress.describe({"stage": "evaluation", "examples": 425}) == "evaluation: 425 examples"
    assert progress.describe({}) == "starting"
    assert not list(tmp_path.glob("*.tmp"))
