"""The benchmark runner at the tiny budget: well-formed rows, failures recorded without stopping, warm-up excluded."""

import itertools
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from benchmarks import determinism
from benchmarks import progress
from benchmarks import report
from benchmarks import run
from benchmarks import served_memory
from benchmarks import timing
from recipes import budgets
from zoo import export
from zoo import training


class FakeClock:
    def __init__(self, ticks):
        self.ticks = list(ticks)

    def __call__(self):
        return self.ticks.pop(0)


def table(text, first_headers):
    """The Markdown table of `text` whose header starts with `first_headers`, as [{column header: cell}]."""
    start = text.index("| " + first_headers)
    lines = list(itertools.takewhile(lambda line: line.startswith("|"), text[start:].splitlines()))
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    return [dict(zip(cells(lines[0]), cells(line))) for line in lines[2:]]


def test_determinism_compares_each_run_with_the_first_bit_for_bit():
    runs = {"as is": {"history_sha256": "a", "probabilities_sha256": "b", "accuracy": 0.9},
            "again": {"history_sha256": "a", "probabilities_sha256": "b", "accuracy": 0.9},
            "one thread": {"history_sha256": "a", "probabilities_sha256": "c", "accuracy": 0.9}}
    assert [r["same_as_first"] for r in determinism.compare(runs).values()] == [True, True, False]


def test_the_memory_request_is_short_texts_of_the_test_split_in_turn():
    texts = ["one two three four", "", "  ", "alpha beta"]
    assert served_memory.request(texts, size=5, words=3) == ["one two three", "alpha beta", "one two three",
                                                              "alpha beta", "one two three"]
    with pytest.raises(ValueError, match="No text with a word"):
        served_memory.request(["", " "])


def test_step_timer_leaves_warmup_out():
    # Steps: three slow warm-up steps (tracing), then fast ones.
    durations = [10.0, 8.0, 6.0, 1.0, 1.0, 2.0, 1.0]
    ticks, t = [], 0.0
    ticks.append(t)  # epoch begin
    for d in durations:
        ticks += [t, t + d]
        t += d
    ticks.append(t)  # validation begins: the epoch's training part ends here
    timer = timing.StepTimer(warmup_steps=3, clock=FakeClock(ticks))
    timer.on_epoch_begin(0)
    for i in range(len(durations)):
        timer.on_train_batch_begin(i)
        timer.on_train_batch_end(i)
    timer.on_test_begin()
    timer.on_epoch_end(0)  # Validation time is not counted (the clock is not read again).
    summary = timer.summary(batch_size=32, examples_per_epoch=7 * 32)
    assert summary["train_steps_timed"] == 4
    assert summary["train_step_seconds_median"] == 1.0
    assert summary["train_examples_per_second_steady"] == 32.0
    assert summary["train_examples_per_second_epoch"] == pytest.approx(4 * 32 / 5.0)  # Warm-up steps left out.


def test_time_batches_and_latency_leave_warmup_out():
    calls = []
    clock = FakeClock([0, 1, 1, 1.5, 1.5, 2.0])  # Only the timed calls read the clock.
    rate = timing.time_batches(calls.append, [["a"] * 4, ["b"] * 4, ["c"] * 4], warmup=2, min_seconds=1.5,
                               clock=clock)
    assert len(calls) == 5  # Two warm-up calls, then three timed ones: 2 s timed, one pass is enough.
    assert rate == pytest.approx(4 / 0.5)
    calls.clear()
    # Fast calls: passes repeat until 1.5 s are timed (0.1 s a call: 15 calls, five passes of three batches).
    clock = FakeClock([v for i in range(15) for v in (i * 0.1, (i + 1) * 0.1)])
    rate = timing.time_batches(calls.append, [["a"] * 4, ["b"] * 4, ["c"] * 4], warmup=0, min_seconds=1.45,
                               clock=clock)
    assert len(calls) == 15 and rate == pytest.approx(4 / 0.1)
    latency = timing.latency_percentiles(lambda x: None, [1, 2, 3], warmup=3, clock=FakeClock([0, 1, 1, 2, 2, 4]))
    assert latency["p50_ms"] == pytest.approx(1000.0)


def test_matmul_rates_of_a_stage_are_the_mean_of_its_edges():
    measured = iter([{"float32": 300.0, "bfloat16": 600.0}, {"float32": 400.0, "bfloat16": 500.0},
                     {"float32": 200.0, "bfloat16": 700.0}, {"float32": 100.0, "bfloat16": 100.0}])
    rates = timing.MatmulRates(enabled=True, measure=lambda: next(measured))
    rates.mark()
    rates.mark("training")
    rates.mark("served")
    assert rates.stages == {"training": {"float32": 350.0, "bfloat16": 550.0},
                            "served": {"float32": 300.0, "bfloat16": 600.0}}
    off = timing.MatmulRates(enabled=False, measure=lambda: pytest.fail("measured while disabled"))
    off.mark()
    off.mark("training")
    assert off.stages == {}
    rates = timing.MatmulRates(enabled=True, measure=lambda: {"float32": 1.0})
    rates.mark("training")  # No mark before it: no edge to average with.
    assert rates.stages == {}
    assert set(timing.matmul_rates(seconds=0.05)) == ({"float32", "bfloat16"} if training.cpu_has_bf16()
                                                      else {"float32"})


def test_plan_skips_unresolvable_data_and_weights_with_reasons():
    runnable, skipped = run.plan(backbone_names=["ngram_linear", "bert_base"],
                                 dataset_names=["bbc_news", "imdb"])
    assert runnable == ["ngram_linear_bbc_news"]
    assert "dataset imdb not found" in skipped["ngram_linear_imdb"]
    # Every source tried is named (the message once ended "Sources tried, in order:)"), and what to provide.
    reason = skipped["bert_base_bbc_news"]
    assert reason.startswith("no pretrained bert_base weights reachable (tried: local path $TEXTZOO_BERT_BASE: "
                             "skipped, no path given")
    assert "; keras-hub preset bert_base_en_uncased: " in reason
    assert "--backbone_options=weights_path=DIR or $TEXTZOO_BERT_BASE" in reason and "\n" not in reason
    with pytest.raises(Exception, match="Unknown backbones"):
        run.plan(backbone_names=["gpt"])


def test_failing_recipe_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, parsed_flags):
    def fake_run_recipe(name, budget, output_dir, seed, timeout, log_file, extra_flags=(), tag="", progress=None):
        if name == "glove_bilstm_bbc_news":
            raise RuntimeError("out of memory")
        return {"recipe": name, "budget": budget, "backbone": "ngram_linear", "dataset": "bbc_news",
                "accuracy": 0.9, "macro_f1": 0.9, "inference_examples_per_second": {"32": 1.0, "256": 2.0},
                "train_examples_per_second_epoch": 100.0, "wall_seconds": 1.0}

    monkeypatch.setattr(run, "run_recipe", fake_run_recipe)
    parsed_flags.output_dir = str(tmp_path)
    parsed_flags.budget = "tiny"
    parsed_flags.recipes = ["glove_bilstm_bbc_news", "ngram_linear_bbc_news"]
    run.main(["benchmarks.run"])
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    by_recipe = {r["recipe"]: r for r in rows}
    assert "out of memory" in by_recipe["glove_bilstm_bbc_news"]["error"]
    assert by_recipe["ngram_linear_bbc_news"]["accuracy"] == 0.9
    assert by_recipe["reference_sklearn_tfidf_lr_bbc_news"]["accuracy"] > 0.5
    assert len({r["run_id"] for r in rows}) == 1
    text = (tmp_path / "RESULTS.md").read_text()
    assert "glove_bilstm_bbc_news: RuntimeError: out of memory" in text
    assert "| ngram_linear_bbc_news |" in text
    assert (tmp_path / "accuracy_vs_throughput.png").stat().st_size > 0


# Large: two real recipes with the benchmark's timings (2-3 minutes); the resume logic itself is in make test
# (test_interrupted_run_resumes_with_only_the_missing_recipes).
@pytest.mark.large
def test_real_tiny_run_interrupted_then_resumed_with_well_formed_rows(tmp_path):
    """`benchmarks.run` at the tiny budget, stopped by `kill` (SIGTERM to the runner alone) while its second recipe
    runs: the recipe's process goes with it. The same command again runs only that recipe and writes the report."""
    import signal

    command = [sys.executable, "-m", "benchmarks.run", "--recipes=ngram_linear_bbc_news,ngram_linear_reuters_r8",
               "--budget=tiny", "--deep", f"--output_dir={tmp_path}"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = tmp_path / "results.jsonl"

    def recipe_rows():
        lines = results.read_text().splitlines() if results.exists() else []
        return [r for r in map(json.loads, lines) if r["recipe"].startswith("ngram_linear")]

    first = subprocess.Popen(command, cwd=run.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    deadline = time.time() + 300
    while not recipe_rows() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode != 0 and "Run the same command again to resume run" in stderr, stderr[-2000:]
    orphans = subprocess.run(["pgrep", "-f", f"benchmarks.one .*--output_dir={tmp_path}"], capture_output=True,
                             text=True).stdout.split()
    assert not orphans, "the recipe's process outlived the runner"
    assert [r["recipe"] for r in recipe_rows()] == ["ngram_linear_bbc_news"]
    assert not (tmp_path / "RESULTS.md").exists()

    second = subprocess.run(command, cwd=run.REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[1/2] ngram_linear_bbc_news: finished before the interruption, kept." in second.stdout
    assert "[2/2] ngram_linear_reuters_r8 (estimated " in second.stdout
    # Piped output: the machine, the estimate, the recipe's stages as lines (no carriage returns), the outcome.
    assert "CPU: " in second.stdout and "measured matmul peak float32 " in second.stdout
    assert "Estimated duration: " in second.stdout and "Took " in second.stdout and "\r" not in second.stdout
    assert any(f"    {stage}" in second.stdout for stage in ("data", "building the model", "training: epoch 1/1",
                                                              "evaluation", "export", "timing served inference"))
    rows = recipe_rows()
    assert [r["recipe"] for r in rows] == ["ngram_linear_bbc_news", "ngram_linear_reuters_r8"]
    assert len({r["run_id"] for r in rows}) == 1
    references = [r for r in map(json.loads, results.read_text().splitlines()) if r["recipe"].startswith("reference")]
    assert sorted(r["dataset"] for r in references) == ["bbc_news", "reuters_r8"]  # Each once, in the first run.
    assert "| ngram_linear_reuters_r8 |" in (tmp_path / "RESULTS.md").read_text()
    for row in rows:
        # What the row says is what the run wrote: its metrics, its data, its export, this machine.
        # Paths relative to the output directory, none of this machine's.
        assert not pathlib.Path(row["run_dir"]).is_absolute() and not pathlib.Path(row["export"]).is_absolute()
        assert str(tmp_path) not in results.read_text() and str(run.REPO) not in results.read_text()
        run_dir, export_dir = tmp_path / row["run_dir"], tmp_path / row["export"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        config = json.loads((run_dir / "config.json").read_text())
        assert (row["accuracy"], row["macro_f1"]) == (metrics["accuracy"], metrics["macro_f1"])
        assert row["head"] == metrics["head_type"] == "softmax"
        assert row["examples"] == metrics["examples"] == {**budgets.TINY_DATA, "test": budgets.TEST_EXAMPLES["tiny"]}
        assert row["dataset_variant"] == config["dataset"]["variant"] and row["dataset"] == config["dataset"]["dataset"]
        assert row["weights_source"] == config["provenance"]["source"] and row["pretrained"] is False
        info_file = export_dir / "export_info.json"  # Written after the size is taken.
        assert row["export_size_bytes"] == export.directory_size(export_dir) - info_file.stat().st_size
        assert (row["device"], row["cpu_count"]) == (f"CPU ({os.cpu_count()} cores)", os.cpu_count())
        assert row["dtype_policy"] == config["runtime"]["dtype_policy"] == "float32"
        assert row["library_versions"] == config["library_versions"]
        assert row["batch_size"] == config["input"]["batch_size"] and row["bucket_width"] is None
        assert 0 < row["train_examples_per_second_epoch"] and 0 < row["train_examples_per_second_steady"]
        assert 100 < row["peak_memory_mb"] < 24 * 1024 and 0 < row["wall_seconds"] < 600
        assert 0 <= row["other_processes_cpu_seconds"] and 0 <= row["cpu_steal_seconds"]
        assert set(row["inference_examples_per_second"]) == {"32", "256"}
        assert all(v > 0 for v in row["inference_examples_per_second"].values())
        assert row["latency_batch_1"]["p95_ms"] >= row["latency_batch_1"]["p50_ms"] > 0
        assert (export_dir / "saved_model.pb").exists()
        assert row["determinism"]["op_determinism"] is True and row["determinism"]["cpu_model"] == row["cpu"]["model"]
        memory = row["served_memory"]  # One request of 10,000 short texts, in a fresh process.
        assert memory["texts"] == served_memory.REQUEST_TEXTS and memory["peak_mb"] >= memory["resident_mb"] > 100
        assert memory["increase_mb"] == pytest.approx(memory["peak_mb"] - memory["resident_mb"], abs=0.11)
        # The export as hosts serve it: as exported, without oneDNN, rewritten to bf16 where the CPU has it; what
        # was measured on which CPU is in the export's own export_info.json too.
        precisions = row["served_precision_examples_per_second_32"]
        assert precisions["float32"] == row["inference_examples_per_second"]["32"] and precisions["onednn_off"] > 0
        assert (precisions["bfloat16_at_load"] or 0) > 0 if training.cpu_has_bf16() else precisions[
            "bfloat16_at_load"] is None
        assert "bfloat16_export" not in precisions  # Only transformers are timed exported in bfloat16.
        served_rates = json.loads(info_file.read_text())["served_rates"]
        assert served_rates == {"served_precision_examples_per_second_32": precisions, "cpu": row["cpu"]}


def _stopped_recipe_process(tmp_path, monkeypatch, popen):
    """Runs a recipe through `run.run_recipe` with `subprocess.Popen` replaced by `popen(started, *args, **kwargs)`
    (which appends the process it starts to `started` and has SIGTERM delivered somewhere in the process's life),
    the runner's stop handler installed; checks that the stop came out as KeyboardInterrupt and that the recipe's
    process was killed with it."""
    import signal

    started = []
    monkeypatch.setattr(run.subprocess, "Popen", lambda *args, **kwargs: popen(started, *args, **kwargs))
    previous = signal.signal(signal.SIGTERM, run._stop)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            run.run_recipe("ngram_linear_bbc_news", "tiny", tmp_path, 1337, 600, tmp_path / "log.txt")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if started and started[0].poll() is None:
            started[0].kill()
            os.waitpid(started[0].pid, 0)  # Not Popen's wait: its lock may be the one left held.
            pytest.fail("the recipe's process outlived the stop")
    assert started[0].returncode == -signal.SIGKILL


def test_a_stop_signal_while_the_recipe_process_starts_still_kills_it(tmp_path, monkeypatch):
    """SIGTERM landing inside `subprocess.Popen` (the child forked, Popen not yet returned): the runner used to raise
    there with no handle on the child, which outlived it (seen once in CI). Now the stop waits for Popen to return."""
    import signal

    real_popen = subprocess.Popen

    def popen_then_signalled(started, *args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler here, before Popen returns.
        time.sleep(0.1)
        return started[-1]

    _stopped_recipe_process(tmp_path, monkeypatch, popen_then_signalled)


def test_a_stop_signal_inside_popens_wait_leaves_no_lock_to_hang_on(tmp_path, monkeypatch):
    """SIGTERM handled right after Popen.wait took its non-blocking wait lock, before the `try` that releases it:
    the runner used to raise there, leaving the lock held, and the wait after the kill blocked on it forever (a
    runner hung after `kill` once in a test run). Now the stop is taken between polls."""
    import signal

    class SignalledInWait(subprocess.Popen):
        def wait(self, timeout=None):
            if timeout is None:  # The kill's wait: Popen's own would block forever on a lock left held.
                assert self._waitpid_lock.acquire(timeout=5), "Popen's wait lock was left held"
                self._waitpid_lock.release()
            elif self._waitpid_lock.acquire(False):
                os.kill(os.getpid(), signal.SIGTERM)  # Handled here, with the lock held, as in Popen's _wait.
                self._waitpid_lock.release()
            return super().wait(timeout)

    def popen(started, *args, **kwargs):
        started.append(SignalledInWait(*args, **kwargs))
        return started[-1]

    _stopped_recipe_process(tmp_path, monkeypatch, popen)


def test_stock_timings_are_measured_once_per_key_in_a_run(tmp_path):
    cache = tmp_path / "rows" / "stock-run1.json"
    cache.parent.mkdir()
    timed, record = timing.shared_stock_timings(cache, "bert,256", "minilm_l6_reuters_r8")
    assert timed is None
    record({"train_examples_per_second": 9.4})
    timed, record = timing.shared_stock_timings(cache, "bert,256", "minilm_l6_spam_assassin")
    assert timed == {"train_examples_per_second": 9.4, "measured_by": "minilm_l6_reuters_r8"}
    record(timed)  # A reused entry stays the measuring recipe's.
    assert json.loads(cache.read_text())["bert,256"]["measured_by"] == "minilm_l6_reuters_r8"
    timed, record = timing.shared_stock_timings(cache, "bert,512", "minilm_l6_bbc_news")
    assert timed is None  # Another sequence length: measured.
    record({"train_examples_per_second": 3.1})
    assert sorted(json.loads(cache.read_text())) == ["bert,256", "bert,512"]
    assert not list(cache.parent.glob("*.tmp"))
    # Without a cache file (benchmarks.one by hand): always measured, nothing written.
    timed, record = timing.shared_stock_timings(None, "bert,256", "x")
    assert timed is None
    record({"train_examples_per_second": 1.0})
    assert sorted(p.name for p in cache.parent.iterdir()) == ["stock-run1.json"]


def test_timeout_is_recorded_as_a_failure(tmp_path):
    row = run.run_recipe("ngram_linear_bbc_news", "tiny", tmp_path, 1337, 1, tmp_path / "log.txt")
    assert row["error"].startswith("exit timeout")
    assert row["recipe"] == "ngram_linear_bbc_news"  # Its backbone and dataset: benchmark_recipe adds them.


def test_report_marks_random_weights_only_for_random_initialisation(tmp_path):
    rows = [{"run_id": "x", "recipe": "bert_base_bbc_news", "backbone": "bert_base", "dataset": "bbc_news",
             "accuracy": 0.5, "macro_f1": 0.4, "weights_source": "random initialisation", "pretrained": False},
            {"run_id": "x", "recipe": "ngram_linear_bbc_news", "backbone": "ngram_linear", "dataset": "bbc_news",
             "accuracy": 0.9, "macro_f1": 0.9, "weights_source": "none", "pretrained": False}]
    main = table(report.markdown(rows, "x"), "recipe | weights |")
    assert {r["recipe"]: r["weights"] for r in main} == {"bert_base_bbc_news": "random initialisation (RANDOM)",
                                                          "ngram_linear_bbc_news": "none"}
    assert {r["train vs stock"] for r in main} == {r["served vs stock"] for r in main} == {"-"}  # No ratio: no "-x".


def test_report_gives_served_precisions_as_ratios():
    rows = [{"run_id": "x", "recipe": "minilm_l6_reuters_r8", "backbone": "minilm_l6", "dataset": "reuters_r8",
             "accuracy": 0.95, "macro_f1": 0.9, "served_precision_examples_per_second_32": {
                 "float32": 40.0, "bfloat16_at_load": 50.0, "onednn_off": 25.0, "bfloat16_export": 52.0,
                 "bfloat16_export_onednn_off": 5.5}},
            {"run_id": "x", "recipe": "ngram_linear_reuters_r8", "backbone": "ngram_linear", "dataset": "reuters_r8",
             "accuracy": 0.9, "macro_f1": 0.9, "served_precision_examples_per_second_32": {
                 "float32": 4000.0, "bfloat16_at_load": None, "onednn_off": 3900.0}}]
    precisions = lambda: {r.pop("recipe"): r for r in table(report.markdown(rows, "x"), "recipe | float32 |")}  # noqa
    assert precisions() == {
        "minilm_l6_reuters_r8": {"float32": "40.0", "bf16 at load": "50.0", "vs float32": "1.25x",
                                  "oneDNN off": "25.0", "bf16 export": "52.0", "bf16 at load vs bf16 export": "96%",
                                  "bf16 export, oneDNN off": "5.5"},
        "ngram_linear_reuters_r8": {"float32": "4000.0", "bf16 at load": "-", "vs float32": "-",
                                    "oneDNN off": "3900.0", "bf16 export": "-", "bf16 at load vs bf16 export": "-",
                                    "bf16 export, oneDNN off": "-"}}
    # Rows timed in alternating windows: bf16 at load over the float32 windows beside it, not the main table's rate.
    rows[0]["served_precision_examples_per_second_32"]["float32_beside_bf16"] = 32.0
    assert precisions()["minilm_l6_reuters_r8"]["vs float32"] == "1.56x"


def test_alternated_rates_time_each_setting_in_turn_and_take_the_medians():
    """A fake clock: a batch of 4 takes 1 s under "slow", 0.5 s under "fast"; the machine halves its speed during
    the second round, which the medians of three alternating windows leave out of both rates alike."""
    now, state = [0.0], {"mode": None, "round": 0, "calls": []}

    def fn(batch):
        state["calls"].append(state["mode"])
        now[0] += (1.0 if state["mode"] == "slow" else 0.5) * (2 if state["round"] == 1 else 1)

    def setup(mode):
        if mode == "slow" and state["calls"]:
            state["round"] += 1
        state["mode"] = mode

    rates = timing.alternated_rates({"slow": (fn, lambda: setup("slow")), "fast": (fn, lambda: setup("fast"))},
                                    [[0] * 4], rounds=3, min_seconds=2.0, clock=lambda: now[0])
    assert rates == {"slow": 4.0, "fast": 8.0}
    # Each window: one warm-up call, then calls until 2 s are timed, all under its own setting.
    runs = [mode for i, mode in enumerate(state["calls"]) if i == 0 or state["calls"][i - 1] != mode]
    assert runs == ["slow", "fast"] * 3


def test_report_gives_sizes_and_draws_the_frontier_of_every_dataset(tmp_path):
    rows = [{"run_id": "r", "recipe": f"{b}_{d}", "backbone": b, "dataset": d, "accuracy": a, "macro_f1": a,
             "fit_seconds": s, "inference_examples_per_second": {"32": x}, "parameters": {"total": p},
             "export_size_bytes": p * 4, "latency_batch_1": {"p50_ms": 1e6 / x, "p95_ms": 2e6 / x},
             **({"served_memory": {"increase_mb": m}} if m else {})}
            for d in ("bbc_news", "reuters_r8")
            for b, a, s, x, p, m in (("mpnet_base", 0.98, 900.0, 20.0, 109_486_464, None),
                                     ("ngram_linear", 0.96, 30.0, 4000.0, 1_000_005, 41.26))]
    rows.append({"run_id": "r", "recipe": "reference_bbc_news", "reference": "TF-IDF", "dataset": "bbc_news",
                 "accuracy": 0.97, "macro_f1": 0.97})
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report.write(tmp_path, "r")
    text = (tmp_path / "RESULTS.md").read_text()
    sizes = {r.pop("recipe"): r for r in table(text, "recipe | parameters |")}
    assert sizes["mpnet_base_bbc_news"] == {"parameters": "109.5M", "export MB": "437.9", "p50 ms @1": "50000.0",
                                            "served ex/s @32": "20.0", "MB +10k texts": "-", "accuracy": "0.9800"}
    assert sizes["ngram_linear_reuters_r8"] == {"parameters": "1.0M", "export MB": "4.0", "p50 ms @1": "250.0",
                                                "served ex/s @32": "4000.0", "MB +10k texts": "41",
                                                "accuracy": "0.9600"}
    assert list(sizes) == ["ngram_linear_bbc_news", "mpnet_base_bbc_news", "ngram_linear_reuters_r8",
                           "mpnet_base_reuters_r8"]  # By dataset, then size.
    assert "[frontier.png](frontier.png)" in text
    import matplotlib.image

    picture = matplotlib.image.imread(tmp_path / "frontier.png")
    assert picture.shape[1] > picture.shape[0] > 500  # Two datasets side by side, two panels each.


def test_report_puts_the_token_share_beside_the_training_speedup():
    rows = [{"run_id": "x", "recipe": "minilm_l6_reuters_r8", "backbone": "minilm_l6", "dataset": "reuters_r8",
             "accuracy": 0.95, "macro_f1": 0.9, "train_speedup_vs_stock": 2.2, "train_token_share_of_stock": 0.446},
            {"run_id": "x", "recipe": "ngram_linear_reuters_r8", "backbone": "ngram_linear",
             "dataset": "reuters_r8", "accuracy": 0.9, "macro_f1": 0.9}]
    bert, ngram = table(report.markdown(rows, "x"), "recipe | weights |")
    assert list(bert).index("tokens") == list(bert).index("train vs stock") + 1  # Side by side.
    assert (bert["train vs stock"], bert["tokens"], ngram["tokens"]) == ("2.20x", "0.45", "-")


def test_readme_section_is_regenerated_from_results(tmp_path):
    rows = [{"run_id": "r1", "recipe": "ngram_linear_bbc_news", "backbone": "ngram_linear", "dataset": "bbc_news",
             "accuracy": 0.97, "macro_f1": 0.96, "weights_source": "none"}]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold table\n{report.README_END}\noutro\n")
    report.write(tmp_path, readme=readme)
    text = readme.read_text()
    assert "old table" not in text and "| ngram_linear_bbc_news | none |" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Benchmark results")


def test_bf16_parity_trains_a_float32_reference_only_for_bf16_rows(tmp_path, monkeypatch):
    calls = []

    def fake_run_recipe(name, budget, output_dir, seed, timeout, log_file, extra_flags=(), tag="", progress=None):
        calls.append((name, tuple(extra_flags), tag))
        return {"recipe": name, "accuracy": 0.95, "macro_f1": 0.9, "dtype_policy": "float32", "wall_seconds": 3.0}

    monkeypatch.setattr(run, "run_recipe", fake_run_recipe)
    row = {"recipe": "minilm_l6_reuters_r8", "accuracy": 0.953, "dtype_policy": "mixed_bfloat16"}
    parity = run.bf16_parity(row, "quick", tmp_path, 1337, 60)
    assert calls == [("minilm_l6_reuters_r8", ("--dtype_policy=float32", "--accuracy_only"), ".float32")]
    assert parity["delta_points"] == pytest.approx(0.3) and parity["within_0_5_points"]
    assert parity["accuracy_float32"] == 0.95

    calls.clear()
    skipped = run.bf16_parity({**row, "dtype_policy": "float32"}, "quick", tmp_path, 1337, 60)
    assert not calls and "trained in float32" in skipped["skipped"]

    rows = [{"run_id": "r", "recipe": "minilm_l6_reuters_r8", "backbone": "minilm_l6", "dataset": "reuters_r8",
             "accuracy": 0.953, "macro_f1": 0.9, "bf16_parity": parity}]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report.write(tmp_path, "r")
    assert ("- minilm_l6_reuters_r8: +0.30 points (float32 0.9500, bf16 0.9530)"
            in (tmp_path / "RESULTS.md").read_text())

    # A bf16 run without the check (the default) says how to add it.
    del rows[0]["bf16_parity"]
    rows[0]["dtype_policy"] = "mixed_bfloat16"
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report.write(tmp_path, "r")
    assert "bfloat16 parity: not checked in this run" in (tmp_path / "RESULTS.md").read_text()


def test_seed_repeats_train_again_on_the_row_s_splits_and_keep_failures_apart(tmp_path, monkeypatch):
    """--seeds: each repeat is the recipe's process with the next seed, told to split the data with the row's seed;
    a repeat tested on other texts, or failing, is recorded by seed and left out of the mean and sd."""
    calls = []
    outcomes = {43: (0.90, "same"), 44: (None, "same"), 45: (0.96, "other"), 46: (0.94, "same")}

    def fake_run_recipe(name, budget, output_dir, seed, timeout, log_file, extra_flags=(), tag="", progress=None):
        calls.append((seed, tuple(extra_flags), tag))
        accuracy, texts = outcomes[seed]
        if accuracy is None:
            return {"recipe": name, "error": "exit 1: out of memory"}
        return {"recipe": name, "seed": seed, "accuracy": accuracy, "macro_f1": accuracy - 0.1, "wall_seconds": 5.0,
                "test": {"identity": texts}}

    monkeypatch.setattr(run, "run_recipe", fake_run_recipe)
    row = {"recipe": "glove_bilstm_bbc_news", "seed": 42, "accuracy": 0.92, "macro_f1": 0.82,
           "test": {"identity": "same"}}
    seeds = run.seed_repeats(row, 5, "quick", tmp_path, 60, ["--dtype_policy=float32"])
    assert [c[0] for c in calls] == [43, 44, 45, 46]
    assert calls[0][1:] == (("--dtype_policy=float32", "--accuracy_only", "--data_seed=42"), ".seed43")
    assert seeds["seeds"] == [42, 43, 46] and seeds["accuracy"] == [0.92, 0.90, 0.94]
    assert seeds["accuracy_mean"] == pytest.approx(0.92) and seeds["accuracy_sd"] == pytest.approx(0.02)
    assert seeds["macro_f1_mean"] == pytest.approx(0.82)
    assert "out of memory" in seeds["errors"]["44"] and "other texts" in seeds["errors"]["45"]
    assert report._seeds_text(seeds) == "0.9200 ± 0.0200 (0.9000-0.9400; 3 seeds, 2 failed)"
    assert report._seeds_text(None) == "-"

    # The estimate adds the repeats: as long as those measured before, else the row's training and a start.
    settings = {"glove_bilstm_bbc_news": {"backbone": "glove_bilstm", "budget": "quick", "epochs": 5,
                                          "sequence_length": 128, "dataset": "bbc_news", "dataset_path": None}}
    before = {"recipe": "glove_bilstm_bbc_news", "budget": "quick", "wall_seconds": 100.0, "fit_seconds": 60.0}
    one, _ = progress.estimate(list(settings), settings, [before], None)
    three, _ = progress.estimate(list(settings), settings, [before], None, seeds=3)
    name = "glove_bilstm_bbc_news"
    assert three[name] - one[name] == pytest.approx(2 * (60.0 + progress.PROCESS_OVERHEAD_SECONDS))
    measured, _ = progress.estimate(list(settings), settings, [{**before, "seeds": seeds}], None, seeds=3)
    assert measured[name] - one[name] == pytest.approx(2 * 5.0)


def test_deep_tables_come_from_the_last_run_that_had_them(tmp_path):
    precisions = {"float32": 10.0, "bfloat16_at_load": None, "onednn_off": 5.0}
    rows = [{"run_id": "r1", "recipe": "a_bbc_news", "dataset": "bbc_news", "backbone": "a", "accuracy": 0.9,
             "macro_f1": 0.9, "served_precision_examples_per_second_32": precisions},
            {"run_id": "r2", "recipe": "a_bbc_news", "dataset": "bbc_news", "backbone": "a", "accuracy": 0.91,
             "macro_f1": 0.9, "deep": False}]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report.write(tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "run `r2`" in text and "of run `r1`, the last that had them" in text
    assert "Served precision:" in text
    rows.append({**rows[0], "run_id": "r3"})
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report.write(tmp_path)
    assert "the last that had them" not in (tmp_path / "RESULTS.md").read_text()  # Its own.


def test_report_keeps_the_last_row_of_a_rerun_recipe(tmp_path):
    rows = [{"run_id": "r1", "recipe": "a", "error": "exit 1"},
            {"run_id": "r1", "recipe": "b", "accuracy": 0.5},
            {"run_id": "r0", "recipe": "a", "accuracy": 0.1},
            {"run_id": "r1", "recipe": "a", "accuracy": 0.9}]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    kept, run_id = report.read_rows(tmp_path / "results.jsonl", "r1")
    assert run_id == "r1"
    assert {r["recipe"]: r.get("accuracy") for r in kept} == {"a": 0.9, "b": 0.5}


class FakeCpuClock:
    """Scripted (machine busy, steal) and own CPU seconds, read in the order OtherCpu reads them."""

    def __init__(self, machine, own):
        self.machine, self.own = list(machine), list(own)

    def machine_cpu_seconds(self):
        return self.machine.pop(0)

    def own_cpu_seconds(self):
        return self.own.pop(0)


@pytest.mark.parametrize("machine,own,other,steal", [
    # The machine was busy 10 s, 9.5 of them ours (the recipe's process tree): 0.5 s of others, 2 s stolen.
    ([(100.0, 5.0), (110.0, 7.0)], [1.0, 10.5], 0.5, 2.0),
    # Clock ticks are coarse: our own count may exceed the machine's by a tick; never a negative share.
    ([(100.0, 0.0), (101.0, 0.0)], [0.0, 1.01], 0.0, 0.0),
    # Another process took a whole core while ours slept.
    ([(50.0, 0.0), (51.5, 0.0)], [2.0, 2.0], 1.5, 0.0),
])
def test_other_cpu_is_machine_busy_time_minus_our_own(machine, own, other, steal):
    clock = FakeCpuClock(machine, own)
    with timing.OtherCpu(clock.machine_cpu_seconds, clock.own_cpu_seconds) as measured:
        pass
    assert measured.other_seconds == pytest.approx(other)
    assert measured.steal_seconds == pytest.approx(steal)


def test_other_cpu_without_proc_stat_reports_none():
    clock = FakeCpuClock([None, None], [0.0, 1.0])
    with timing.OtherCpu(clock.machine_cpu_seconds, clock.own_cpu_seconds) as measured:
        pass
    assert measured.other_seconds is None and measured.steal_seconds is None


def test_own_cpu_seconds_count_waited_for_children():
    """A recipe runs as a waited-for child: its CPU time is ours, however busy the rest of the machine is."""
    busy = [sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"]
    before = timing._own_cpu_seconds()
    subprocess.run(busy, check=True)
    assert timing._own_cpu_seconds() - before >= 0.95
    busy_now, steal_now = timing._machine_cpu_seconds()
    assert busy_now > 0 and steal_now >= 0


def test_report_warns_about_recipes_that_shared_the_cpu():
    rows = [{"run_id": "x", "recipe": "minilm_l6_reuters_r8", "backbone": "minilm_l6", "dataset": "reuters_r8",
             "accuracy": 0.95, "macro_f1": 0.9, "wall_seconds": 100, "cpu_count": 2,
             "other_processes_cpu_seconds": 60, "cpu_steal_seconds": 0},
            {"run_id": "x", "recipe": "ngram_linear_reuters_r8", "backbone": "ngram_linear",
             "dataset": "reuters_r8", "accuracy": 0.9, "macro_f1": 0.9, "wall_seconds": 100, "cpu_count": 2,
             "other_processes_cpu_seconds": 2, "cpu_steal_seconds": 1}]
    warning = [line for line in report.markdown(rows, "x").splitlines() if line.startswith("WARNING")]
    assert len(warning) == 1 and "minilm_l6_reuters_r8 30%" in warning[0]
    assert "ngram_linear" not in warning[0]
    assert not [line for line in report.markdown(rows[1:], "x").splitlines() if line.startswith("WARNING")]


def test_recipes_run_without_the_variables_tensorflow_sets_on_import():
    # A fresh interpreter: in this one TensorFlow is already imported.
    probe = ("import json, os\nfrom benchmarks import run\n"
             "print(json.dumps({'child': run.CHILD_ENV, 'own': dict(os.environ)}))")
    env = {k: v for k, v in os.environ.items() if k not in ("TF2_BEHAVIOR", "KMP_INIT_AT_FORK", "KMP_DUPLICATE_LIB_OK")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=run.REPO, env=env, capture_output=True, text=True,
                         check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert "TF2_BEHAVIOR" in seen["own"]  # Set by importing TensorFlow ...
    assert "TF2_BEHAVIOR" not in seen["child"] and "KMP_INIT_AT_FORK" not in seen["child"]  # ... not passed on.
    assert seen["child"]["KERAS_BACKEND"] == "tensorflow"


def fake_row(name, budget):
    return {"recipe": name, "budget": budget, "backbone": name.split("_bbc")[0], "dataset": "bbc_news",
            "accuracy": 0.9, "macro_f1": 0.9, "inference_examples_per_second": {"32": 1.0, "256": 2.0},
            "train_examples_per_second_epoch": 100.0, "wall_seconds": 1.0}


def test_interrupted_run_resumes_with_only_the_missing_recipes(tmp_path, monkeypatch, parsed_flags):
    ran, interrupt_at, stock_caches = [], ["ngram_linear_bbc_news"], []

    def fake_run_recipe(name, budget, output_dir, seed, timeout, log_file, extra_flags=(), tag="", progress=None):
        stock_caches.extend(f for f in extra_flags if f.startswith("--stock_cache="))
        if name in interrupt_at:
            interrupt_at.remove(name)
            raise KeyboardInterrupt  # Ctrl-C while this recipe runs.
        ran.append(name)
        return fake_row(name, budget)

    references = []
    real_reference = run.sklearn_reference
    monkeypatch.setattr(run, "run_recipe", fake_run_recipe)
    monkeypatch.setattr(run, "sklearn_reference", lambda *a: references.append(a[0]) or real_reference(*a))
    parsed_flags.output_dir = str(tmp_path)
    parsed_flags.budget = "tiny"
    parsed_flags.recipes = ["glove_bilstm_bbc_news", "ngram_linear_bbc_news"]
    with pytest.raises(SystemExit) as stopped:  # The message says the same command resumes (the CLI tests).
        run.main(["benchmarks.run"])
    assert stopped.value.code == 130
    assert ran == ["glove_bilstm_bbc_news"] and references == ["bbc_news"]
    assert not (tmp_path / "RESULTS.md").exists()

    run.main(["benchmarks.run"])  # The same command: resumes.
    assert ran == ["glove_bilstm_bbc_news", "ngram_linear_bbc_news"]
    assert references == ["bbc_news"]  # The reference finished before: kept.
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len({r["run_id"] for r in rows}) == 1
    assert sorted(r["recipe"] for r in rows) == ["glove_bilstm_bbc_news", "ngram_linear_bbc_news",
                                                  "reference_sklearn_tfidf_lr_bbc_news"]
    assert "| glove_bilstm_bbc_news |" in (tmp_path / "RESULTS.md").read_text()
    # Every recipe of the run, resumed or not, shares one file of stock pipeline timings, named by the run.
    run_id = rows[0]["run_id"]
    assert stock_caches == [f"--stock_cache={tmp_path / 'rows' / f'stock-{run_id}.json'}"] * 3

    run.main(["benchmarks.run"])  # The run finished: the next command starts a new one.
    assert ran.count("ngram_linear_bbc_news") == 2
    assert len({json.loads(line)["run_id"] for line in (tmp_path / "results.jsonl").read_text().splitlines()}) == 2
    assert len(set(stock_caches)) == 2


def test_resume_needs_the_same_settings_and_fresh_starts_anew(tmp_path):
    settings = {"budget": "quick", "recipes": None}
    (tmp_path / run.STATE_FILE).write_text(json.dumps({"run_id": "R1", "settings": settings, "finished": False}))
    assert run.choose_run(tmp_path, settings) == ("R1", True)
    assert run.choose_run(tmp_path, settings, fresh=True)[0] != "R1"
    assert run.choose_run(tmp_path, {**settings, "budget": "tiny"})[0] != "R1"
    assert run.choose_run(tmp_path, settings, run_id="R0") == ("R0", False)
    (tmp_path / run.STATE_FILE).write_text(json.dumps({"run_id": "R1", "settings": settings, "finished": True}))
    assert run.choose_run(tmp_path, settings)[0] != "R1"


def test_run_ids_are_unique_within_a_second(tmp_path):
    results = tmp_path / "results.jsonl"
    first = run.new_run_id(results)
    run.append_row(results, {"run_id": first, "recipe": "a"})
    second = run.new_run_id(results)
    run.append_row(results, {"run_id": second, "recipe": "a"})
    third = run.new_run_id(results)
    assert len({first, second, third}) == 3 and all(r.startswith(first[:8]) for r in (second, third))


def test_a_row_cut_short_by_a_kill_is_skipped_and_the_next_row_is_whole(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"run_id": "R1", "recipe": "a"}) + "\n" + '{"run_id": "R1", "reci')
    assert [r["recipe"] for r in report.read_all_rows(results)] == ["a"]
    assert "results.jsonl:2: skipped a line that is not JSON" in capsys.readouterr().err
    assert run.finished_recipes(results, "R1") == {"a"}
    run.append_row(results, {"run_id": "R1", "recipe": "b"})
    run.append_row(results, {"run_id": "R1", "recipe": "c", "error": "exit 1"})
    assert run.finished_recipes(results, "R1") == {"a", "b"}  # A failed recipe runs again on resume.


def test_freezing_table_keeps_each_recipes_last_comparison(tmp_path):
    """`benchmarks.freezing` run on R8, then on BBC: the table holds both, each from its own last run."""
    def row(run_id, recipe, layers, accuracy, rate):
        return {"run_id": run_id, "recipe": recipe, "trainable_layers": layers, "accuracy": accuracy,
                "macro_f1": accuracy, "fit_seconds": 100, "caching_seconds": None, "sequence_length": 256,
                "train_examples_per_second_run": rate}

    rows = [row("r1", "minilm_l6_reuters_r8", "all", 0.90, 10.0), row("r1", "minilm_l6_reuters_r8", 1, 0.89, 30.0),
            row("r2", "minilm_l6_reuters_r8", "all", 0.95, 20.0), row("r2", "minilm_l6_reuters_r8", 1, 0.94, 50.0),
            row("r3", "minilm_l6_bbc_news", "all", 0.97, 8.0), row("r3", "minilm_l6_bbc_news", 1, 0.975, 24.0)]
    (tmp_path / "freezing.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "results.jsonl").write_text(json.dumps({"run_id": "x", "recipe": "ngram_linear_bbc_news",
                                                        "backbone": "ngram_linear", "dataset": "bbc_news",
                                                        "accuracy": 0.9, "macro_f1": 0.9}) + "\n")
    report.write(tmp_path)
    table = [line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if "| minilm_l6_" in line]
    assert [line.split(" | ")[:4] for line in table] == [
        ["| minilm_l6_bbc_news", "r3", "256", "all"], ["| minilm_l6_bbc_news", "r3", "256", "1"],
        ["| minilm_l6_reuters_r8", "r2", "256", "all"], ["| minilm_l6_reuters_r8", "r2", "256", "1"]]
    assert table[1].endswith("| 3.00x | +0.50 points |") and table[3].endswith("| 2.50x | -1.00 points |")


def test_cpu_line_gives_the_range_of_peaks_when_rows_were_re_run():
    cpu = {"model": "Xeon", "cores": 2, "flags": {"avx512f": True}}
    first = {"cpu": cpu, "matmul_peak_gflops": {"float32": 314.2, "bfloat16": 1295.0}}
    rerun = {"cpu": cpu, "matmul_peak_gflops": {"float32": 292.0, "bfloat16": 1145.4}}
    assert report.cpu_line([first, first]) == ("CPU Xeon, 2 cores (avx512f yes); measured matmul peak float32 314 "
                                               "GFLOP/s, bfloat16 1295 GFLOP/s")
    assert report.cpu_line([first, rerun]) == ("CPU Xeon, 2 cores (avx512f yes); measured matmul peak float32 292-314 "
                                               "GFLOP/s, bfloat16 1145-1295 GFLOP/s (rows re-run later measured "
                                               "their own)")
    assert report.cpu_line([{"cpu": cpu}]) == "CPU Xeon, 2 cores (avx512f yes)"


def test_a_run_given_more_rows_later_is_judged_beside_its_recommendations_row(tmp_path):
    """`--run_id=RUN` adds rows to a finished run, whose results.jsonl already holds its recommendations row (no
    dataset, no test record): the report is judged and written all the same (it failed with KeyError: 'dataset')."""
    from benchmarks import stats

    texts, labels = [f"text {i}" for i in range(40)], [i % 2 for i in range(40)]
    record = lambda predicted: stats.test_record(texts, labels, predicted, 2)  # noqa: E731
    rows = [{"run_id": "r", "recipe": f"{b}_bbc_news", "backbone": b, "dataset": "bbc_news", "accuracy": a,
             "macro_f1": a, "test": record(p)}
            for b, a, p in (("ngram_linear", 1.0, labels), ("glove_bilstm", 0.5, [0] * 40))]
    rows.insert(1, {"run_id": "r", "recipe": report.RECOMMENDATIONS, "max_latency_ms": None, "recommendations": {}})
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    judged = report.judge(report.read_rows(tmp_path / "results.jsonl", "r")[0])
    assert judged["glove_bilstm_bbc_news"]["best"] == "ngram_linear_bbc_news"
    rows = report.read_rows(tmp_path / "results.jsonl", "r")[0]
    assert report.recommendations(rows)["bbc_news"]["most_accurate"]["recipe"] == "ngram_linear_bbc_news"
    report.write(tmp_path, "r")
    assert "| glove_bilstm_bbc_news |" in (tmp_path / "RESULTS.md").read_text()
