"""RESULTS.md and the accuracy-throughput plot, generated from results.jsonl (never edited by hand)."""

import json
import os
import pathlib
import platform
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import stats  # noqa: E402
from zoo import runs  # noqa: E402

# Published test accuracies on the same datasets (their own splits and variants), for orientation only.
PUBLISHED = {
    "reuters_r8": "TextGCN 0.9707 (Yao et al., 2019); BERT 0.978, BertGCN 0.981 (Lin et al., 2021)",
    "newsgroups20": "TextGCN 0.8634 (Yao et al., 2019); BERT 0.853, BertGCN 0.893 (Lin et al., 2021)",
    "bbc_news": "n/a (no official split)",
    "spam_assassin": "n/a (no official split)",
}


def read_all_rows(results_file):
    """Every row of results.jsonl; a line cut short by a killed run is skipped (and said), not fatal."""
    path = pathlib.Path(results_file)
    rows = []
    for number, line in enumerate(path.read_text().splitlines() if path.exists() else [], start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            print(f"{path}:{number}: skipped a line that is not JSON (cut short by an interrupted run?): "
                  f"{line[:80]!r}", file=sys.stderr)
    return rows


def read_rows(results_file, run_id=None):
    rows = read_all_rows(results_file)
    if run_id is None and rows:
        run_id = rows[-1]["run_id"]
    latest = {}  # A recipe re-run within the same run (--run_id) counts with its last row.
    for r in rows:
        if r.get("run_id") == run_id:
            latest.pop(r["recipe"], None)
            latest[r["recipe"]] = r
    return list(latest.values()), run_id


CONTENTION_WARNING = 0.05


def cpu_taken_by_others(row):
    """Share of the machine's CPU that other processes and steal took while the recipe ran (0 if not recorded)."""
    taken = (row.get("other_processes_cpu_seconds") or 0) + (row.get("cpu_steal_seconds") or 0)
    capacity = (row.get("wall_seconds") or 0) * (row.get("cpu_count") or 0)
    return taken / capacity if capacity else 0.0


def _fmt(value, spec, suffix=""):
    return format(value, spec) + suffix if isinstance(value, (int, float)) else "-"


def describe_cpu(cpu, peaks=None):
    """'Intel(R) Xeon(R) ..., 2 cores (avx2 yes, ...); measured matmul peak float32 190 GFLOP/s, ...'."""
    flags = ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in cpu["flags"].items())
    text = f"{cpu['model']}, {cpu['cores']} cores ({flags})"
    if peaks:
        text += "; measured matmul peak " + ", ".join(f"{dtype} {gflops:.0f} GFLOP/s" for dtype, gflops in
                                                     peaks.items())
    return text


def cpu_line(rows):
    """The CPU the rows ran on, with the flags that decide BERT's speed and its measured matmul peak (rows from
    before they were recorded: none)."""
    cpu = next((r["cpu"] for r in rows if r.get("cpu")), None)
    if not cpu:
        return "CPU not recorded"
    peaks = [r["matmul_peak_gflops"] for r in rows if isinstance(r.get("matmul_peak_gflops"), dict)]
    if len({tuple(sorted(p.items())) for p in peaks}) <= 1:
        return "CPU " + describe_cpu(cpu, peaks[0] if peaks else None)
    # Rows re-run into a run (`--run_id`) measured the peak again: give the range, as each row's shares use its own.
    ranges = ", ".join(f"{dtype} {min(p[dtype] for p in peaks if dtype in p):.0f}-"
                       f"{max(p[dtype] for p in peaks if dtype in p):.0f} GFLOP/s"
                       for dtype in dict.fromkeys(d for p in peaks for d in p))
    return f"CPU {describe_cpu(cpu)}; measured matmul peak {ranges} (rows re-run later measured their own)"


def _gflops(value, peaks, bf16=False, float32=True):
    """A GFLOP/s figure with its shares of the measured matmul rates: float32's (unless not `float32`), and
    bfloat16's if `bf16`."""
    if not isinstance(value, (int, float)):
        return "-"
    shares = [f"{value / peaks['float32']:.0%} of float32"] if float32 and peaks.get("float32") else []
    shares += [f"{value / peaks['bfloat16']:.0%} of bfloat16"] if bf16 and peaks.get("bfloat16") else []
    return f"{value:.0f}" + (f" ({', '.join(shares)} peak)" if shares else "")


def matmul_rates(row, stage):
    """The matmul rates a row's `stage` ("training", "served", "full_finetuning") is a share of: measured around that
    stage (`benchmarks.timing.MatmulRates`), or for rows from before, at the run's start."""
    return (row.get("matmul_rate_gflops") or {}).get(stage) or row.get("matmul_peak_gflops") or {}


def _table(caption, rows, cells, key=lambda r: r["recipe"]):
    """A Markdown table of `rows` in `key` order, its caption (None: none) between blank lines above the header;
    nothing where there are no rows. `cells(row)` gives a row's cells as {column header: text}: each column's header
    and cell are written together, in one place."""
    if not rows:
        return []
    table = [cells(r) for r in sorted(rows, key=key)]
    headers = list(table[0])
    other = next((list(row) for row in table if list(row) != headers), None)
    if other is not None:
        raise ValueError(f"Rows of one table with different columns: {headers} and {other}.")
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(row.values()) + " |" for row in table]
    return (["", caption, ""] if caption is not None else []) + lines


def arithmetic_table(rows):
    """Transformer rows' arithmetic rates (`benchmarks.flops`) as shares of the matmul rates measured around them."""
    return _table("Arithmetic rate of the transformers: FLOPs from the architecture and the token positions each "
                   "batch computed on (`benchmarks/flops.py`: matrix products at 2 FLOPs per multiply-add; training 3x "
                   "the forward pass of what trains and 1x that of frozen layers, once; validation included in the "
                   "whole run), over the seconds they took, as a share of the matmul rate measured in the same "
                   "process before and after that timing (their mean: this machine's rate moves from minute to "
                   "minute; rows from before: the run's start), float32, and bfloat16 for rows computing in it. "
                   "Served: the float32 export at batch 32 as exported, and rewritten to bfloat16 at load (the served "
                   "precision table) as a share of the bfloat16 rate.",
                   [r for r in rows if r.get("flops")], _arithmetic_cells)


def _arithmetic_cells(r):
    work = r["flops"]
    bf16 = r.get("dtype_policy") == "mixed_bfloat16"
    training_rates, served_rates = matmul_rates(r, "training"), matmul_rates(r, "served")
    rate = lambda value: _gflops(value, training_rates, bf16)  # noqa: E731
    served_gflops = lambda examples_per_second: (  # noqa: E731
        work["served_per_example"] * examples_per_second / 1e9 if examples_per_second else None)
    precisions = r.get("served_precision_examples_per_second_32") or {}
    # Served in float32, as exported (rows before exports were float32 served in their training dtype).
    served_bf16 = bf16 and not precisions
    return {
        "recipe": r["recipe"], "dtype": r.get("dtype_policy", "-"),
        "GFLOP per served example": f"{work['served_per_example'] / 1e9:.2f}",
        "served GFLOP/s @32": _gflops(served_gflops(r["inference_examples_per_second"]["32"]), served_rates,
                                      served_bf16),
        "served GFLOP/s @32, bf16 at load": _gflops(served_gflops(precisions.get("bfloat16_at_load")), served_rates,
                                                    True, float32=False),
        "training GFLOP/s, whole run": rate(work.get("train_gflops_per_second_run")),
        "training GFLOP/s, whole epochs": rate(work.get("train_gflops_per_second_epoch")),
    }


def size_table(rows):
    """What each model costs to serve beside what it scores: parameters, export size, latency of one text."""
    return _table("Model sizes (parameters of the whole classifier, the SavedModel on disk, one text per request; "
                  "memory: what one request of 10,000 short texts adds to the loaded export's resident memory, "
                  "`benchmarks.served_memory`):", rows, _size_cells,
                  key=lambda r: (r["dataset"], (r.get("parameters") or {}).get("total") or 0))


def _size_cells(r):
    total = (r.get("parameters") or {}).get("total")
    return {"recipe": r["recipe"], "parameters": _fmt(total / 1e6 if total else None, ".1f", "M"),
            "export MB": _fmt((r.get("export_size_bytes") or 0) / 1e6 or None, ".1f"),
            "p50 ms @1": _fmt(r.get("latency_batch_1", {}).get("p50_ms"), ".1f"),
            "served ex/s @32": _fmt(r.get("inference_examples_per_second", {}).get("32"), ".1f"),
            "MB +10k texts": _fmt((r.get("served_memory") or {}).get("increase_mb"), ".0f"),
            "accuracy": _fmt(r["accuracy"], ".4f")}


def served_precision_table(rows):
    """Each export served at batch 32 as hosts may run it (`benchmarks.one.served_precisions`)."""
    return _table("Served precision: every export computes in float32 (trained in mixed_bfloat16 or not); examples/s "
                   "at batch 32 as exported, rewritten to bfloat16 when loaded (grappler's oneDNN bfloat16 pass, TF "
                   "Serving's `--mixed_precision=bfloat16`; CPUs with AVX512_BF16 or AMX only), and with oneDNN off "
                   "(`TF_ENABLE_ONEDNN_OPTS=0`, TensorFlow's kernels alone: the portable floor, as on a serving build "
                   "without oneDNN). Transformers: the same weights exported computing in bfloat16 (what a "
                   "mixed_bfloat16 run exported before), with oneDNN and without. The export as exported, rewritten "
                   "at load and the bf16 export are timed in three alternating windows each (their medians): \"vs "
                   "float32\" divides by the float32 windows timed beside bf16 at load (the float32 column is the "
                   "main table's served rate).",
                  [r for r in rows if r.get("served_precision_examples_per_second_32")], _served_precision_cells)


def _served_precision_cells(r):
    p = r["served_precision_examples_per_second_32"]
    at_load, f32, bf16_export = p.get("bfloat16_at_load"), p.get("float32"), p.get("bfloat16_export")
    beside = p.get("float32_beside_bf16") or f32  # Timed in the same minutes as bf16 at load (rows from before: not).
    return {"recipe": r["recipe"], "float32": _fmt(f32, ".1f"), "bf16 at load": _fmt(at_load, ".1f"),
            "vs float32": _fmt(at_load / beside if at_load and beside else None, ".2f", "x"),
            "oneDNN off": _fmt(p.get("onednn_off"), ".1f"), "bf16 export": _fmt(bf16_export, ".1f"),
            "bf16 at load vs bf16 export": _fmt(100 * at_load / bf16_export if at_load and bf16_export else None,
                                                ".0f", "%"),
            "bf16 export, oneDNN off": _fmt(p.get("bfloat16_export_onednn_off"), ".1f")}


PROFILE_CATEGORIES = ("matmul", "elementwise", "cast", "random", "optimizer and loss")


def full_finetuning_table(rows):
    """Transformer rows' full fine-tuning, ours against the stock pipeline's (`benchmarks.timing.full_finetuning`): the
    share of the padding bound reached, the FLOP rate as a share of the measured peak, and where a step's time
    goes."""
    return _table("Full fine-tuning, every layer training, as the stock pipeline does (the default recipes train only "
                  "their top layers): steps of our pipeline (length-bucketed batches, the recipe's optimizer; as many "
                  "as `--full_finetuning_steps` and `--full_finetuning_seconds` ask: a sample of the epoch's lengths) "
                  "against keras-hub's stock pipeline (fixed-length padding: every step alike), after one untimed step "
                  "each; timed steps in brackets; their FLOP rate as a share of the float32 matmul rate measured "
                  "around them. The stock pipeline is timed once per sequence length in a run (its "
                  "steps do not depend on the data): \"as in\" names the recipe whose timing a row shares. "
                  "Skipping padding can speed training up by about the inverse of the token share (more where "
                  "attention, whose work grows with the square of the length, is a large part of a step); share of "
                  "bound = speed-up x token share (1.0: that inverse). Then one more step under "
                  "TensorFlow's profiler: its op threads' busy time (share of wall time x threads) by what the ops "
                  "compute.",
                  [r for r in rows if r.get("full_finetuning")], _full_finetuning_cells)


def _full_finetuning_cells(r):
    full, peaks = r["full_finetuning"], matmul_rates(r, "full_finetuning")
    stock = r.get("stock_keras_hub") or {}
    profile = full.get("profiled_step") or {}
    seconds = profile.get("op_seconds") or {}
    busy = sum(seconds.values())
    # Profiles before casts had a category of their own (no op_type_seconds either) counted them as elementwise.
    counted = set(PROFILE_CATEGORIES) - ({"cast"} if "op_type_seconds" not in profile else set())
    shares = " / ".join(f"{seconds.get(c, 0) / busy:.0%}" if c in counted else "-"
                        for c in PROFILE_CATEGORIES) if busy else "-"
    threads_busy = (busy / (profile["wall_seconds"] * profile["op_threads"])
                    if busy and profile.get("op_threads") else None)
    shape = profile.get("batch_shape")
    return {
        "recipe": r["recipe"], "dtype": r.get("dtype_policy", "-"),
        "ours ex/s (steps)": f"{_fmt(full.get('examples_per_second'), '.1f')} ({full.get('steps_timed', '-')})",
        "stock ex/s (steps)": f"{_fmt(stock.get('train_examples_per_second'), '.1f')} "
                              f"({stock.get('train_steps_timed', '-')}"
                              f"{', as in ' + stock['measured_by'] if stock.get('measured_by') else ''})",
        "speed-up": _fmt(full.get("speedup_vs_stock"), ".2f", "x"),
        "token share": _fmt(full.get("token_share_of_stock"), ".2f"),
        "share of bound": _fmt(full.get("share_of_bound"), ".2f"),
        "training GFLOP/s": _gflops(full.get("gflops_per_second"), peaks),
        "profiled step: shape, wall s, threads busy": (
            f"{'x'.join(map(str, shape)) if shape else '-'}, {_fmt(profile.get('wall_seconds'), '.2f')} s, "
            f"{_fmt(threads_busy, '.0%')} of {profile.get('op_threads', '-')}"),
        "matmul / elementwise / cast / dropout random / optimizer and loss": shares,
    }


def freezing_table(rows):
    """Frozen-prefix fine-tuning against full fine-tuning (`benchmarks.freezing`): one line per recipe and
    trainable_layers, with its speed-up over full fine-tuning (examples/s over the whole run) and accuracy change."""
    done = [r for r in rows if "accuracy" in r]
    if not done:
        return []
    def cells(r):
        full = next((f for f in done if f["recipe"] == r["recipe"] and f["trainable_layers"] == "all"), {})
        rate, full_rate = r.get("train_examples_per_second_run"), full.get("train_examples_per_second_run")
        return {"recipe": r["recipe"], "run": r["run_id"], "sequence length": str(r.get("sequence_length", "-")),
                "trainable layers": str(r["trainable_layers"]), "test accuracy": _fmt(r["accuracy"], ".4f"),
                "macro-F1": _fmt(r["macro_f1"], ".4f"),
                "training s (caching)": (f"{_fmt(r.get('fit_seconds'), '.0f')} "
                                         f"({_fmt(r.get('caching_seconds'), '.0f')})"),
                "examples/s, whole run": _fmt(rate, ".1f"),
                "vs full": _fmt(rate / full_rate if rate and full_rate else None, ".2f", "x"),
                "accuracy vs full": _fmt(100 * (r["accuracy"] - full["accuracy"]) if full else None, "+.2f",
                                         " points")}

    caption = (f"`python -m benchmarks.freezing`, {cpu_line(done)}. Same recipe, data, epochs "
               "and seed; only `trainable_layers` differs (all: full fine-tuning; k: embeddings and all but the top k "
               "layers frozen, their outputs computed once per example; 0: the head alone). Training seconds include "
               "computing the frozen features and validation; examples/s = training examples x epochs / those "
               "seconds.")
    order = lambda r: (r["recipe"], str(r["trainable_layers"]) != "all", str(r["trainable_layers"]))  # noqa: E731
    return ["## Frozen-prefix fine-tuning against full fine-tuning"] + _table(caption, done, cells, key=order) + [""]


RECOMMENDATIONS = "recommendations"  # The recipe name of a run's recommendations row in results.jsonl.


def judge(rows):
    """{recipe: its 95 % intervals, and its paired comparisons with its dataset's best row (`best`) and with the
    TF-IDF reference (`reference`)} for the rows that hold their test predictions (`benchmarks.stats`). A dataset's
    best row is the most accurate of the zoo's; a comparison of rows tested on different texts is None."""
    judged = {}
    rows = [r for r in rows if r.get("test")]  # Not the recommendations row of an earlier pass of a run (--run_id).
    for dataset in sorted({r["dataset"] for r in rows}):
        ours = [r for r in rows if r["dataset"] == dataset and not r.get("reference")]
        reference = next((r for r in rows if r["dataset"] == dataset and r.get("reference")), None)
        best = max(ours, key=lambda r: r["accuracy"], default=None)
        for r in ours + ([reference] if reference else []):
            judged[r["recipe"]] = {
                "intervals": stats.intervals(r["test"]), "best": best and best["recipe"],
                "vs_best": None if r is best or best is None else stats.compare(r["test"], best["test"]),
                "vs_reference": None if r is reference or reference is None
                else stats.compare(r["test"], reference["test"])}
    return judged


def recommendations(rows, max_latency_ms=None, judged=None):
    """Per dataset, from the measured rows: the most accurate; the fastest served (examples/s at batch 32) and the
    smallest export among the rows not significantly worse than it (paired bootstrap on the same test texts); with
    `max_latency_ms`, the most accurate whose p95 latency at batch 1 is within it. `judged`: `judge(rows)`, where
    the caller has it."""
    judged = judge(rows) if judged is None else judged
    out = {}
    for dataset in sorted({r["dataset"] for r in rows if r["recipe"] in judged and not r.get("reference")}):
        ours = [r for r in rows if r["recipe"] in judged and r["dataset"] == dataset and not r.get("reference")]
        best = next(r for r in ours if r["recipe"] == judged[ours[0]["recipe"]]["best"])
        as_good = [r for r in ours if r is best or (judged[r["recipe"]]["vs_best"] or {}).get("verdict") != "worse"]
        served = lambda r: (r.get("inference_examples_per_second") or {}).get("32") or 0  # noqa: E731
        fastest = max(as_good, key=served)
        smallest = min(as_good, key=lambda r: r.get("export_size_bytes") or float("inf"))
        entry = {
            "test_texts": best["test"]["texts"],
            "most_accurate": {"recipe": best["recipe"], "accuracy": best["accuracy"]},
            "not_worse_than_it": sorted(r["recipe"] for r in as_good),
            "fastest_not_worse": {"recipe": fastest["recipe"], "served_examples_per_second_32": served(fastest)},
            "smallest_not_worse": {"recipe": smallest["recipe"], "export_size_bytes": smallest.get("export_size_bytes")},
        }
        if max_latency_ms is not None:
            within = [r for r in ours if ((r.get("latency_batch_1") or {}).get("p95_ms") or float("inf"))
                      <= max_latency_ms]
            pick = max(within, key=lambda r: r["accuracy"], default=None)
            entry["within_latency"] = {"max_latency_ms": max_latency_ms, "recipe": pick and pick["recipe"],
                                       "p95_ms": pick and pick["latency_batch_1"]["p95_ms"],
                                       "accuracy": pick and pick["accuracy"]}
        out[dataset] = entry
    return out


def _interval_text(value, interval):
    return f"{value:.4f} ({interval[0]:.3f}-{interval[1]:.3f})"


def _comparison_text(comparison):
    if comparison is None:
        return "-"
    low, high = comparison["interval"]
    return f"{comparison['points']:+.2f} [{low:+.2f}, {high:+.2f}] {comparison['verdict']}"


def _seeds_text(seeds):
    """A row's accuracy over its seeds (`benchmarks.run --seeds`): mean ± sample sd, min-max, and how many."""
    if not seeds:
        return "-"
    values = seeds["accuracy"]
    sd = "" if seeds["accuracy_sd"] is None else f" ± {seeds['accuracy_sd']:.4f}"
    failed = f", {len(seeds['errors'])} failed" if seeds.get("errors") else ""
    return f"{seeds['accuracy_mean']:.4f}{sd} ({min(values):.4f}-{max(values):.4f}; {len(values)} seeds{failed})"


def _decision_cells(r, judged, seeded=False):
    j = judged[r["recipe"]]
    latency = r.get("latency_batch_1") or {}
    seeds = {"accuracy over seeds: mean ± sd (range)": _seeds_text(r.get("seeds"))} if seeded else {}
    return {
        "recipe": r["recipe"] + (" (reference)" if r.get("reference") else ""),
        "accuracy (95 % interval)": _interval_text(r["accuracy"], j["intervals"]["accuracy"]),
        "macro-F1 (95 % interval)": _interval_text(r["macro_f1"], j["intervals"]["macro_f1"]),
        **seeds,
        "vs best, points": "best" if j["best"] == r["recipe"] else _comparison_text(j["vs_best"]),
        "vs TF-IDF+LR, points": "-" if r.get("reference") else _comparison_text(j["vs_reference"]),
        "served ex/s @32": _fmt((r.get("inference_examples_per_second") or {}).get("32"), ".1f"),
        "p95 ms @1": _fmt(latency.get("p95_ms"), ".1f"),
        "export MB": _fmt(r["export_size_bytes"] / 1e6, ".1f") if r.get("export_size_bytes") else "-",
    }


def decision_section(rows, recommended=None, judged=None):
    """Per dataset: each row's accuracy and macro-F1 with 95 % intervals, its paired comparison with the best row
    and with TF-IDF+LR, and the recommendation (`recommended`: a run's stored one, else computed here). `judged`:
    `judge(rows)`, where the caller has it."""
    judged = judge(rows) if judged is None else judged
    if not judged:
        return []
    recommended = recommended if recommended is not None else recommendations(rows, judged=judged)
    lines = ["", "## Which backbone, per dataset", "",
             "Intervals: 95 % bootstrap over the test texts. \"vs\" columns: the accuracy difference in points with "
             "its 95 % paired-bootstrap interval on the same texts: better or worse where the interval excludes 0, "
             "no difference otherwise."]
    for dataset in sorted({r["dataset"] for r in rows if r["recipe"] in judged}):
        judged_rows = [r for r in rows if r["dataset"] == dataset and r["recipe"] in judged]
        texts = judged_rows[0]["test"]["texts"]
        lines += ["", f"### {dataset}", "", f"Test: {texts} texts (one text is {100 / texts:.2f} points).", ""]
        seeded = any(r.get("seeds") for r in judged_rows)
        if seeded:
            lines += ["Seeds (`--seeds`): each recipe trained again with other seeds on the same splits; the "
                      "intervals and comparisons are the first seed's (the row's export).", ""]
        lines += _table(None, judged_rows, lambda r: _decision_cells(r, judged, seeded),
                        key=lambda r: (bool(r.get("reference")), -r["accuracy"], r["recipe"]))
        rec = recommended.get(dataset)
        if rec:
            lines += ["", f"- Most accurate: `{rec['most_accurate']['recipe']}`; not significantly worse than it: "
                      + ", ".join(f"`{n}`" for n in rec["not_worse_than_it"]) + ".",
                      f"- Fastest of those: `{rec['fastest_not_worse']['recipe']}` "
                      f"({rec['fastest_not_worse']['served_examples_per_second_32']:.1f} served ex/s at batch 32); "
                      f"smallest: `{rec['smallest_not_worse']['recipe']}` "
                      f"({(rec['smallest_not_worse']['export_size_bytes'] or 0) / 1e6:.1f} MB)."]
            if "within_latency" in rec:
                w = rec["within_latency"]
                lines.append(f"- Within {w['max_latency_ms']:g} ms p95 at batch 1: " + (
                    f"`{w['recipe']}` ({w['p95_ms']:.1f} ms, accuracy {w['accuracy']:.4f})." if w["recipe"]
                    else "none of them."))
    return lines


def recommendation_lines(recommended):
    """The recommendations as printed at the end of a run."""
    lines = []
    for dataset, rec in recommended.items():
        line = (f"{dataset}: most accurate {rec['most_accurate']['recipe']} ({rec['most_accurate']['accuracy']:.4f}); "
                f"fastest not worse {rec['fastest_not_worse']['recipe']}; smallest not worse "
                f"{rec['smallest_not_worse']['recipe']}")
        if "within_latency" in rec:
            line += f"; within {rec['within_latency']['max_latency_ms']:g} ms: {rec['within_latency']['recipe']}"
        lines.append(line + ".")
    return lines


def markdown(rows, run_id, freezing=(), deep=None, judged=None):
    """RESULTS.md of run `run_id`'s `rows`; `deep`: (rows, run id) of the last run with `--deep` measurements, shown
    where this run has none (default: this run's); `judged`: `judge(rows)`, where the caller has it."""
    done = [r for r in rows if "accuracy" in r and "reference" not in r]
    references = {r["dataset"]: r for r in rows if r.get("reference")}
    failed = [r for r in rows if "error" in r]
    skipped = [r for r in rows if "skipped" in r]
    device = next((r["device"] for r in done if "device" in r), "unknown")
    versions = next((r["library_versions"] for r in done if "library_versions" in r), {})
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python -m benchmarks.run` from `results.jsonl`, run `{run_id}`, on {device}, "
        f"{platform.machine()} ({', '.join(f'{k} {v}' for k, v in versions.items())}); {cpu_line(done)}.",
        "",
        "TF-IDF+LR: scikit-learn's TfidfVectorizer (uni+bi-grams, sublinear tf, 200k features) and "
        "LogisticRegression (C=10, newton-cg), trained in the same run on the same training split and tested on the "
        "same test split. "
        "Training throughput: examples/s over whole epochs after the first (compilation and tracing excluded); "
        "steady: batch size / median step time after warm-up. Served: the exported SavedModel end to end from raw "
        "strings (median batch time). Stock: keras-hub `BertTextClassifier` with its default preprocessor at the "
        "same sequence length, same weights and batch size. Tokens: the token positions our length-bucketed "
        "training batches compute on, as a share of the stock pipeline's fixed-length ones; skipping padding can "
        "speed training up by about its inverse in the same dtype (BERT math runs near the CPU's peak; attention, "
        "quadratic in the length, can give somewhat more). "
        "Where a recipe trains only its top layers on cached features (`trainable_layers`), the stock pipeline still "
        "fine-tunes every layer: its \"train vs stock\" is the speed-up a user gets, not a ratio on the same work.",
        "",
        "Validation accuracy against training seconds, every backbone of a dataset in one panel: "
        "[validation_curves.png](validation_curves.png). Each backbone's trade-off, one panel per dataset: test "
        "accuracy against served examples/s and against training seconds, the TF-IDF reference as a line: "
        "[frontier.png](frontier.png).",
        "",
    ]
    stored = next((r["recommendations"] for r in rows if r["recipe"] == RECOMMENDATIONS), None)
    lines += decision_section(done + list(references.values()), stored, judged)
    lines += ["", "## Measurements", ""]
    lines += _table(None, done, lambda r: _main_cells(r, references.get(r["dataset"], {})),
                    key=lambda r: (r["dataset"], r["backbone"]))
    lines += size_table(done)
    deep_rows, deep_run = deep or (rows, run_id)
    deep_done = [r for r in deep_rows if "accuracy" in r and "reference" not in r]
    if deep_run != run_id and deep_done:
        lines += ["", f"The tables below are `--deep` measurements (they depend on the backbone and the sequence "
                      f"length, not on the data) of run `{deep_run}`, the last that had them."]
    lines += served_precision_table(deep_done)
    lines += arithmetic_table(deep_done)
    lines += full_finetuning_table(deep_done)
    lines += _notes(done, references, failed, skipped)
    frozen = freezing_table(freezing)
    if frozen:
        lines += [""] + frozen
    return "\n".join(lines) + "\n"


def _main_cells(r, ref):
    """One recipe's cells in the main table; `ref` is the TF-IDF reference row of its dataset."""
    ex = r.get("examples", {})
    served = r.get("inference_examples_per_second", {})
    latency = r.get("latency_batch_1", {})
    random = " (RANDOM)" if r.get("weights_source") == "random initialisation" else ""
    return {
        "recipe": r["recipe"], "weights": f"{r.get('weights_source', '-')}{random}",
        "examples train/val/test": f"{ex.get('train', '-')}/{ex.get('validation', '-')}/{ex.get('test', '-')}",
        "accuracy": _fmt(r["accuracy"], ".4f"), "macro-F1": _fmt(r["macro_f1"], ".4f"),
        "TF-IDF+LR acc / F1": f"{_fmt(ref.get('accuracy'), '.4f')} / {_fmt(ref.get('macro_f1'), '.4f')}",
        "train ex/s (steady)": f"{_fmt(r.get('train_examples_per_second_epoch'), '.1f')} "
                               f"({_fmt(r.get('train_examples_per_second_steady'), '.1f')})",
        "train vs stock": _fmt(r.get("train_speedup_vs_stock"), ".2f", "x"),
        "tokens": _fmt(r.get("train_token_share_of_stock"), ".2f"),
        "served ex/s @32 / @256": f"{_fmt(served.get('32'), '.1f')} / {_fmt(served.get('256'), '.1f')}",
        "served vs stock": _fmt(r.get("inference_speedup_vs_stock"), ".2f", "x"),
        "in-memory @32": _fmt(r.get("in_memory_examples_per_second", {}).get("32"), ".1f"),
        "p50 / p95 ms @1": f"{_fmt(latency.get('p50_ms'), '.1f')} / {_fmt(latency.get('p95_ms'), '.1f')}",
        "export MB": _fmt((r.get("export_size_bytes") or 0) / 1e6, ".1f"),
        "peak MB": _fmt(r.get("peak_memory_mb"), ".0f"), "wall s": _fmt(r.get("wall_seconds"), ".0f"),
    }


def _notes(done, references, failed, skipped):
    """What follows the tables: the datasets and published numbers, parity checks, contention, failed and skipped
    recipes."""
    lines = ["", "Datasets (variant and source as resolved in this run) and published numbers:", ""]
    for name in sorted({r["dataset"] for r in done} | set(references)):
        row = next((r for r in done if r["dataset"] == name), references.get(name, {}))
        lines.append(f"- `{name}`: {row.get('dataset_variant', '-')} from {row.get('dataset_source', '-')}; "
                     f"published: {PUBLISHED.get(name, 'n/a')}")
    parity = [r for r in done if "parity_max_abs_diff" in r]
    if parity:
        lines += ["", "BERT parity with the stock pipeline (same weights, max |pooled output difference|): "
                  + ", ".join(f"{r['recipe']} {r['parity_max_abs_diff']:.1e}" for r in parity)]
    checked = [r for r in done if "bf16_parity" in r]
    if checked:
        lines += ["", "bfloat16 parity (test accuracy of the mixed_bfloat16 run minus a float32 run of the same "
                  "recipe; target within 0.5 points):", ""]
        for r in checked:
            p = r["bf16_parity"]
            lines.append(f"- {r['recipe']}: " + (
                f"{p['delta_points']:+.2f} points (float32 {p['accuracy_float32']:.4f}, bf16 {r['accuracy']:.4f})"
                if "delta_points" in p else f"not checked: {p.get('skipped') or p.get('error')}"))
    elif any(r.get("dtype_policy") == "mixed_bfloat16" for r in done):
        lines += ["", "bfloat16 parity: not checked in this run (it trains a recipe again in float32; add it to a run "
                  "with `python -m benchmarks.run --run_id=RUN --recipes=RECIPE --bf16_parity=RECIPE`)."]
    elif done:
        lines += ["", "bfloat16 parity: not checked, no recipe trained in mixed_bfloat16 (the auto dtype policy picks "
                  "it for transformers on CPUs with avx512_bf16 or amx_bf16; --dtype_policy=mixed_bfloat16 forces it)."]
    contended = [(r, share) for r in done if (share := cpu_taken_by_others(r)) > CONTENTION_WARNING]
    if contended:
        lines += ["", "WARNING: other processes (or the hypervisor's steal) took CPU during these recipes, so their "
                  "throughput numbers are low by about that share; re-run them on an idle machine with --run_id: "
                  + ", ".join(f"{r['recipe']} {share:.0%}" for r, share in contended)]
    if failed:
        lines += ["", "Failed:", ""] + [f"- {r['recipe']}: {r['error'][-300:]}" for r in failed]
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {r['recipe']}: {r['skipped']}" for r in skipped]
    return lines


def plot(rows, path):
    done = [r for r in rows if "accuracy" in r and r.get("train_examples_per_second_epoch")]
    fig, ax = plt.subplots(figsize=(8, 5))
    for backbone in sorted({r["backbone"] for r in done}):
        mine = [r for r in done if r["backbone"] == backbone]
        ax.scatter([r["train_examples_per_second_epoch"] for r in mine], [r["accuracy"] for r in mine],
                   label=backbone, s=40)
        for r in mine:
            ax.annotate(r["dataset"], (r["train_examples_per_second_epoch"], r["accuracy"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("training throughput (examples/s, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against training throughput")
    ax.grid(alpha=0.3)
    if done:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_frontier(rows, path):
    """One column per dataset: test accuracy against served examples/s at batch 32 (top) and against training
    seconds, caching included (bottom), one point per backbone; the TF-IDF reference's accuracy as a dashed line."""
    done = [r for r in rows if "accuracy" in r and "reference" not in r]
    references = {r["dataset"]: r["accuracy"] for r in rows if r.get("reference") and "accuracy" in r}
    names = sorted({r["dataset"] for r in done})
    if not names:
        return
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {b: cycle[i % len(cycle)] for i, b in enumerate(sorted({r["backbone"] for r in done}))}
    fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7), squeeze=False)
    axis_of = (("inference_examples_per_second", "served examples/s @32 (log)"),
               ("fit_seconds", "training seconds (log)"))
    for column, name in enumerate(names):
        for row_index, (key, label) in enumerate(axis_of):
            ax = axes[row_index][column]
            for r in sorted((r for r in done if r["dataset"] == name), key=lambda r: r["backbone"]):
                x = r.get(key, {}).get("32") if key == "inference_examples_per_second" else r.get(key)
                if x:
                    ax.scatter([x], [r["accuracy"]], s=40, color=colour[r["backbone"]])
                    ax.annotate(r["backbone"], (x, r["accuracy"]), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
            if name in references:
                ax.axhline(references[name], linestyle="--", color="gray", linewidth=1)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # Overlapping 2x10^1, 3x10^1, ...
            ax.set_xlabel(label)
            ax.grid(alpha=0.3)
            if row_index == 0:
                ax.set_title(name)
        axes[0][column].set_ylabel("test accuracy")
        axes[1][column].set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_validation_curves(rows, path, output_dir):
    """Validation accuracy against cumulative training seconds (history.jsonl of each row's run, whose `run_dir` is
    relative to `output_dir`; caching included), every backbone of a dataset in one panel, one panel per dataset."""
    curves = {}
    for r in rows:
        if "accuracy" not in r or not r.get("run_dir"):
            continue
        history = runs.RunDir(pathlib.Path(output_dir, r["run_dir"])).history_file
        points = [(h["seconds"], h["val_accuracy"]) for h in read_all_rows(history)
                  if "seconds" in h and "val_accuracy" in h]
        if points:
            curves.setdefault(r["dataset"], {})[r["backbone"]] = points
    names = sorted(curves)
    if not names:  # The run directories are not here (results copied from another clone): keep the picture.
        return
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for backbone, points in sorted(curves[name].items()):
            ax.plot(*zip(*points), marker="o", label=backbone)
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("training seconds (log)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("validation accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


README_START = "<!-- benchmark results: generated by `python -m benchmarks.report --readme=docs/benchmark.md` -->"
README_END = "<!-- end of benchmark results -->"


def _last_deep(results_file, rows, run_id):
    """(rows, run id) of the last run with --deep measurements: this one's if it has them."""
    deep = lambda r: bool(r.get("served_precision_examples_per_second_32"))  # noqa: E731
    if any(map(deep, rows)):
        return rows, run_id
    last = next((r["run_id"] for r in reversed(read_all_rows(results_file)) if deep(r)), None)
    return read_rows(results_file, last) if last else (rows, run_id)


def write(output_dir, run_id=None, readme=None, judged=None):
    """Writes RESULTS.md and the plot for `run_id` (default: the last run); with `readme`, also replaces the README
    section between the two markers with the same table. `judged`: `judge` of the run's rows, where the caller
    has it."""
    output_dir = pathlib.Path(output_dir)
    rows, run_id = read_rows(output_dir / "results.jsonl", run_id)
    freezing = read_all_rows(output_dir / "freezing.jsonl")
    # Each recipe's rows from the last comparison that ran it (`benchmarks.freezing --recipes=...` runs a few).
    last = {r["recipe"]: r["run_id"] for r in freezing}
    freezing = list({(r["recipe"], str(r["trainable_layers"])): r for r in freezing
                     if r["run_id"] == last[r["recipe"]]}.values())
    text = markdown(rows, run_id, freezing, _last_deep(output_dir / "results.jsonl", rows, run_id), judged)
    (output_dir / "RESULTS.md").write_text(text)
    plot(rows, output_dir / "accuracy_vs_throughput.png")
    plot_validation_curves(rows, output_dir / "validation_curves.png", output_dir)
    plot_frontier(rows, output_dir / "frontier.png")
    if readme:
        readme = pathlib.Path(readme)
        content = readme.read_text()
        if README_START not in content or README_END not in content:
            raise ValueError(f"{readme} has no benchmark section markers ({README_START!r} ... {README_END!r}).")
        before, rest = content.split(README_START, 1)
        _, after = rest.split(README_END, 1)
        body = text.split("\n", 2)[2]  # Without the "# Benchmark results" title; its sections one level down.
        body = "\n".join("#" + line if line.startswith("##") else line for line in body.split("\n"))
        # Links are relative to RESULTS.md; from the README they go through the output directory.
        relative = pathlib.Path(os.path.relpath(output_dir, readme.resolve().parent)).as_posix()
        for picture in ("validation_curves.png", "frontier.png"):
            body = body.replace(f"]({picture})", f"]({relative}/{picture})")
        readme.write_text(f"{before}{README_START}\n{body}{README_END}{after}")


def main(argv):
    del argv
    from absl import flags

    write(flags.FLAGS.results, flags.FLAGS.run_id, flags.FLAGS.readme)


if __name__ == "__main__":
    from absl import app
    from absl import flags

    flags.DEFINE_string("results", "benchmarks/results", "Directory with results.jsonl.")
    flags.DEFINE_string("run_id", None, "Run to report (default: the last one).")
    flags.DEFINE_string("readme", None, "Also regenerate the benchmark section of this Markdown file "
                        "(docs/benchmark.md), between its two markers.")
    app.run(main)
