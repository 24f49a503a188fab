"""The benchmark: trains, evaluates, exports and times every recipe whose data and weights resolve.

    textzoo benchmark                                  # the default matrix, budget quick
    textzoo benchmark --backbones=ngram_linear --datasets=bbc_news,reuters_r8 --budget=tiny
    textzoo benchmark --dataset_path=tickets.csv --dataset_options=text_columns=title+body,label_column=queue

With --dataset_path, every backbone of the default matrix (or --backbones) runs on your data instead, named after
it (recipes <backbone>_<data name>, their exports and the report's section), beside the TF-IDF reference on the
same splits.

Each recipe runs in its own process (its peak memory is its own; a failure is recorded and the run goes on).
An interrupted run is resumed by the same command: the recipes it finished are kept (`run_state.json` says which run
is unfinished), an unfinished recipe resumes after its last finished epoch, and `--fresh` starts a new run instead.
Writes <output_dir>/results.jsonl (one row per recipe per run), RESULTS.md (generated from the rows, with
published reference numbers) and accuracy_vs_throughput.png. Reference rows measured in the same run on the same
splits: scikit-learn TF-IDF (uni+bi-grams) + LogisticRegression per dataset, and, inside each BERT row,
keras-hub's stock BertTextClassifier pipeline on the same weights and batches.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
from typing import Optional

# Recipes run with the environment this process started with. Importing TensorFlow (below) sets variables in
# os.environ (TF2_BEHAVIOR, KMP_INIT_AT_FORK, TPU_ML_PLATFORM, ENABLE_RUNTIME_UPTIME_TELEMETRY, ...) that every child
# would inherit; with ENABLE_RUNTIME_UPTIME_TELEMETRY=1 alone, BERT training ran with fewer cores busy: 20 Newsgroups'
# second epoch took 135 s instead of 93 s (benchmarks.one by hand, TF 2.21; the KMP_* ones made no difference).
import zoo  # noqa: E402  Sets KERAS_BACKEND (and imports no TensorFlow).

CHILD_ENV = dict(os.environ)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import progress as progress_lib  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks import stats  # noqa: E402
from benchmarks import timing  # noqa: E402
from recipes import budgets  # noqa: E402
from recipes import catalog  # noqa: E402
from recipes import console  # noqa: E402
from recipes import tracking_flags  # noqa: E402
from zoo import assets  # noqa: E402
from zoo import backbones  # noqa: E402
from zoo import training  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]

_DATASET_PATH = flags.DEFINE_string("dataset_path", None, "Your data instead of the registered datasets: a CSV, TSV, "
                                    "JSON or JSONL file; a directory of train/validation/test files; or a directory "
                                    "of several files read as one dataset.")
_DATASET_OPTIONS = flags.DEFINE_list("dataset_options", None, "With --dataset_path: its reader options as key=value "
                                     "(lists with +), as for training, e.g. text_columns=title+body,label_column=y.")
_RECIPES = flags.DEFINE_list("recipes", None, "Recipes to run (default: every recipe whose data and weights "
                             "resolve, filtered by --backbones and --datasets).")
_BACKBONES = flags.DEFINE_list("backbones", None, "Only recipes of these backbones.")
_DATASETS = flags.DEFINE_list("datasets", None, "Only recipes of these datasets.")
_BUDGET = flags.DEFINE_enum("budget", "quick", list(catalog.BUDGETS), "quick: the whole default matrix aimed at "
                            "60 minutes on a 2-core CPU; full: the published settings, for a "
                            "GPU; tiny: smoke test.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where results, runs and exports go (default: "
                                  "benchmarks/results; with --dataset_path, benchmarks/results-<data name>).")
_INCLUDE_RANDOM_INIT = flags.DEFINE_bool("include_random_init", False, "Also run BERT recipes whose pretrained "
                                         "weights cannot be found, randomly initialised (flagged in the results).")
_SEED = flags.DEFINE_integer("seed", zoo.DEFAULT_SEED, "Seed of every recipe.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Train each recipe with this many seeds (--seed, --seed+1, ...) to show "
                               "what the seed moves: the row, its export and timings are the first seed's; the others "
                               "are trained and evaluated only, on the same splits and test texts.", lower_bound=1)
_RUN_ID = flags.DEFINE_string("run_id", None, "Add rows to this earlier run (e.g. to re-run recipes that failed) "
                              "instead of starting a new one; the report keeps each recipe's last row. Every "
                              "selected recipe runs.")
_DTYPE_POLICY = flags.DEFINE_enum("dtype_policy", "auto", ["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                                  "Keras dtype policy of every recipe; auto: mixed_float16 on a GPU, mixed_bfloat16 "
                                  "for BERT on a CPU with native bfloat16, float32 otherwise.")
# Not in the default matrix: the float32 rerun of minilm_l6 on Reuters R8 alone takes 4-5 minutes of its 45.
_BF16_PARITY = flags.DEFINE_list("bf16_parity", ["none"], "Recipes that, trained in mixed_bfloat16, are trained again "
                                 "in float32 to record the test accuracy difference; 'all' for every one, 'none' for "
                                 "none (e.g. --run_id=RUN --recipes=minilm_l6_reuters_r8 "
                                 "--bf16_parity=minilm_l6_reuters_r8 adds it to a run).")
_DEEP = flags.DEFINE_bool("deep", False, "Also time, in every row, what depends on the backbone and the sequence "
                          "length rather than the data: served at batch 256 and in memory, the served precisions, "
                          "keras-hub's stock pipeline with its parity, full fine-tuning and its profile, the FLOP "
                          "rates (a transformer row takes about 40 % longer).")
_MAX_LATENCY_MS = flags.DEFINE_float("max_latency_ms", None, "Also recommend, per dataset, the most accurate recipe "
                                     "whose p95 latency at batch 1 (served export) is within this many ms.",
                                     lower_bound=0)
_TIMEOUT = flags.DEFINE_integer("timeout", 3600, "Seconds after which one recipe is stopped and recorded as failed.")
_FRESH = flags.DEFINE_bool("fresh", False, "Start a new run even if the last run in --output_dir was interrupted "
                           "(by default the same command resumes it: finished recipes are kept, the rest run).")

STATE_FILE = "run_state.json"


@dataclasses.dataclass(frozen=True)
class Data:
    """What a run benchmarks on: the registered datasets (no `path`), or your data at `path`, read with the reader
    options `options` (the flag's key=value items)."""
    path: Optional[str] = None
    options: tuple = ()

    def entries(self):
        return catalog.recipes(self.path)

    def entry(self, name):
        return catalog.recipe(name, self.path)

    def resolve(self, name, budget):
        overrides = {"dataset_options": catalog.parse_key_values(self.options, "dataset_options")} if self.path else {}
        return catalog.resolve(name, budget, overrides, self.path)

    def recipe_flags(self):
        """What a recipe's process (`benchmarks.one`) is told of the data besides the recipe's name."""
        return [f"--dataset_path={self.path}", f"--dataset_options={','.join(self.options)}"] if self.path else []

    def label(self, name):
        """The dataset recipe `name`'s results are grouped under (`catalog.data_label`)."""
        return catalog.data_label(self.entry(name))


def plan(recipes=None, backbone_names=None, dataset_names=None, include_random_init=False, data=Data()):
    """Returns (runnable recipe names, {skipped recipe: reason}) for the filters given, on `data`."""
    from zoo import datasets

    entries = data.entries()
    names = recipes or sorted(entries)
    unknown = sorted(set(names) - set(entries))
    if unknown:
        raise app.UsageError(f"Unknown recipes {unknown}. Allowed: {sorted(entries)}.")
    for label, given, allowed in (("backbones", backbone_names, backbones.names()),
                                  ("datasets", dataset_names, catalog.dataset_names())):
        bad = sorted(set(given or []) - set(allowed))
        if bad:
            raise app.UsageError(f"Unknown {label} {bad}. Allowed: {sorted(allowed)}.")
    selected = [n for n in names
                if (not backbone_names or entries[n]["backbone"] in backbone_names)
                and (not dataset_names or entries[n]["dataset"] in dataset_names)]
    runnable, skipped, data_problems, weight_problems = [], {}, {}, {}
    gpu = training.has_gpu()
    for name in selected:
        dataset, backbone = entries[name]["dataset"], entries[name]["backbone"]
        # A backbone the default matrix leaves out runs when asked for by name (no weights fetched otherwise).
        left_out = None if recipes or backbone in (backbone_names or ()) else budgets.benchmark_skip(backbone, gpu)
        if left_out:
            skipped[name] = left_out
            continue
        if dataset not in data_problems:
            try:
                datasets.get_spec(dataset).asset.resolve(local_path=entries[name].get("dataset_path"))
                data_problems[dataset] = None
            except Exception as e:  # Reported as the reason the recipe is skipped.
                data_problems[dataset] = f"dataset {dataset} not found (tried: {assets.tried(e)})"
        if backbone not in weight_problems:
            missing = backbones.missing_weights(backbone)
            weight_problems[backbone] = (None if include_random_init or not missing else
                                         f"{missing}: random initialisation is not benchmarked; pass "
                                         "--include_random_init to run it")
        reason = data_problems[dataset] or weight_problems.get(backbone)
        if reason:
            skipped[name] = reason
        else:
            runnable.append(name)
    return runnable, skipped


def sklearn_reference(dataset_name, budget, seed, data=Data()):
    """TF-IDF (uni+bi-grams, sublinear tf) + LogisticRegression (C=10, newton-cg) on the ngram_linear recipe's
    splits of `dataset_name` (a registered dataset, or the name of `data`'s)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.metrics import f1_score

    from zoo import datasets

    recipe = data.resolve(f"ngram_linear_{dataset_name}", budget)
    dataset = datasets.for_recipe(recipe, seed)
    started = time.time()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=200000)
    train = dataset.splits["train"]
    features = vectorizer.fit_transform(train.texts)
    # newton-cg: Newton steps reach the optimum in 5-8 iterations, closer than lbfgs at the same tolerance (36-62
    # iterations: measured objective on Reuters R8 6606.1 against lbfgs' 6626.5; lbfgs at tol 1e-8: 6605.3), and
    # 4-5x sooner (20 Newsgroups 14 s instead of 50 s). The bar moved with it: R8 accuracy 0.9637 -> 0.9642,
    # macro-F1 0.8812 -> 0.8730; SpamAssassin 0.9780 -> 0.9789, 0.9739 -> 0.9749 (lbfgs at tol 1e-8: the same).
    model = LogisticRegression(C=10.0, max_iter=2000, solver="newton-cg")
    model.fit(features, train.labels)
    test = dataset.splits["test"]
    predicted = model.predict(vectorizer.transform(test.texts))
    classes = list(range(dataset.num_classes))
    return {
        "recipe": catalog.reference_recipe(dataset_name),
        "reference": "sklearn TF-IDF + LogisticRegression (C=10, newton-cg)",
        "dataset": dataset_name, "dataset_variant": dataset.variant, "budget": budget,
        "examples": {s: len(dataset.splits[s]) for s in dataset.splits},
        "accuracy": float(accuracy_score(test.labels, predicted)),
        "macro_f1": float(f1_score(test.labels, predicted, labels=classes, average="macro", zero_division=0)),
        "test": stats.test_record(test.texts, test.labels, predicted, dataset.num_classes),
        "wall_seconds": round(time.time() - started, 1),
    }


POLL_SECONDS = 0.5


def run_recipe(name, budget, output_dir, seed, timeout, log_file, extra_flags=(), tag="", progress=None):
    """Runs benchmarks.one for `name` in a fresh process; returns its row, or a row with the error. `progress`
    (a `progress.RunProgress`) is shown the process's stage while it runs."""
    result_file = output_dir / "rows" / f"{name}{tag}.json"
    stage_file = output_dir / "rows" / f"{name}{tag}.stage.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    for stale in (result_file, stage_file):
        stale.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.one", f"--recipe={name}", f"--budget={budget}",
               f"--output_dir={output_dir}", f"--result_file={result_file}", f"--seed={seed}",
               f"--stage_file={stage_file}", *extra_flags]
    started = time.time()
    process = None
    with open(log_file, "w") as log, timing.OtherCpu() as other:
        try:
            # A stop is held back while the recipe runs and taken between polls (the block's end raises it). Raised
            # inside Popen.wait between its non-blocking acquire of its wait lock and the `try` that releases it
            # (Python runs signal handlers after calls), it leaves the lock held, and the wait after the kill below
            # blocks on it forever: once in a fresh-clone test run, the runner hung after `kill`.
            with _stop_deferred():
                process = subprocess.Popen(command, cwd=REPO, env=CHILD_ENV, stdout=log, stderr=subprocess.STDOUT)
                while _deferred_stop["signal"] is None:
                    try:
                        code = process.wait(timeout=POLL_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        if time.time() - started > timeout:
                            code = "timeout"
                            break
                        if progress is not None:
                            progress.poll(stage_file)
        finally:  # Timed out, or the runner interrupted: the recipe's process goes with it.
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    machine = {"other_processes_cpu_seconds": other.other_seconds, "cpu_steal_seconds": other.steal_seconds,
               "cpu_count": os.cpu_count()}
    if code == 0 and result_file.exists():
        return {**json.loads(result_file.read_text()), **machine}
    tail = pathlib.Path(log_file).read_text(errors="replace").strip().splitlines()[-15:]
    tail = without_local_paths(" | ".join(tail), output_dir)
    return {"recipe": name, "budget": budget, "error": f"exit {code}: " + tail[-3000:],
            "wall_seconds": round(time.time() - started, 1), **machine}


def without_local_paths(text, output_dir):
    """`text` (a traceback) with this clone's and the output directory's absolute paths made relative: rows hold
    no machine's paths."""
    for base in sorted({str(pathlib.Path(output_dir).resolve()), str(REPO)}, key=len, reverse=True):
        text = text.replace(base + os.sep, "")
    return text


def bf16_parity(row, budget, output_dir, seed, timeout, progress=None):
    """For a BERT row trained in mixed_bfloat16: the same recipe in float32, and the test accuracy difference.

    bfloat16 is where BERT's speed on CPUs with native bf16 comes from; it must not cost accuracy (target: within
    0.5 points of float32). Elsewhere the row says why it was not checked.
    """
    if row.get("dtype_policy") != "mixed_bfloat16":
        return {"skipped": f"trained in {row.get('dtype_policy')}: checked for mixed_bfloat16 runs (the auto policy on "
                           "CPUs with avx512_bf16 or amx_bf16; --dtype_policy=mixed_bfloat16 forces it)"}
    name = row["recipe"]
    reference = run_recipe(name, budget, output_dir, seed, timeout, output_dir / "logs" / f"{name}.float32.log",
                           ["--dtype_policy=float32", "--accuracy_only"], tag=".float32", progress=progress)
    if "error" in reference:
        return {"error": reference["error"][-1000:]}
    delta = 100 * (row["accuracy"] - reference["accuracy"])
    return {"accuracy_float32": reference["accuracy"], "delta_points": delta, "within_0_5_points": abs(delta) <= 0.5,
            "float32_wall_seconds": reference["wall_seconds"]}


def seed_repeats(row, seeds, budget, output_dir, timeout, extra_flags=(), progress=None):
    """Row `row`'s recipe trained and evaluated again with the seeds after its own (`seeds` in all), each in its own
    process, on the splits of the row's seed (its test texts, checked): {"seeds", "accuracy", "macro_f1" (one per
    seed, the row's first), their means and sample sds ("accuracy_mean", "accuracy_sd", ...), the repeats'
    "wall_seconds", and the "errors" of repeats that failed, by seed}."""
    name, seed = row["recipe"], row["seed"]
    found = {"seeds": [seed], "accuracy": [row["accuracy"]], "macro_f1": [row["macro_f1"]], "wall_seconds": [],
             "errors": {}}
    for repeat in range(seed + 1, seed + seeds):
        if progress is not None:
            progress.write(f"    seed {repeat}: trained and evaluated again ...")
        again = run_recipe(name, budget, output_dir, repeat, timeout, output_dir / "logs" / f"{name}.seed{repeat}.log",
                           [*extra_flags, "--accuracy_only", f"--data_seed={seed}"], tag=f".seed{repeat}",
                           progress=progress)
        if "error" not in again and again["test"]["identity"] != row["test"]["identity"]:
            again["error"] = "tested on other texts than the row's (the repeats must split the data as it did)"
        if "error" in again:
            found["errors"][str(repeat)] = again["error"][-1000:]
            continue
        found["seeds"].append(repeat)
        for key in ("accuracy", "macro_f1", "wall_seconds"):
            found[key].append(again[key])
    for key in ("accuracy", "macro_f1"):
        values = found[key]
        found[f"{key}_mean"] = statistics.fmean(values)
        found[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None
    return found


def parity_recipes(names):
    """The recipes whose bf16 parity is checked (--bf16_parity)."""
    parity = _BF16_PARITY.value
    return set(names) if parity == ["all"] else set(names) & set(parity)


def benchmark_recipe(name, output_dir, progress=None, run_id=None, data=Data()):
    """One recipe's row: trained, exported and timed in its own process, plus its bf16 parity check; errors become
    the row's `error`. The recipes of run `run_id` share one file of keras-hub stock pipeline timings (each
    sequence length is timed once)."""
    flags_ = [f"--dtype_policy={_DTYPE_POLICY.value}", f"--deep={_DEEP.value}", *data.recipe_flags(), *_MLFLOW_FLAGS]
    if run_id:
        flags_.append(f"--stock_cache={output_dir / 'rows' / f'stock-{run_id}.json'}")
    try:
        row = run_recipe(name, _BUDGET.value, output_dir, _SEED.value, _TIMEOUT.value,
                         output_dir / "logs" / f"{name}.log", flags_, progress=progress)
        if "error" not in row and row.get("dtype_policy") == "mixed_bfloat16" and parity_recipes([name]):
            if progress is not None:
                progress.write("    bf16 parity: the same recipe again in float32 ...")
            row["bf16_parity"] = bf16_parity(row, _BUDGET.value, output_dir, _SEED.value, _TIMEOUT.value, progress)
        if "error" not in row and _SEEDS.value > 1:
            row["seeds"] = seed_repeats(row, _SEEDS.value, _BUDGET.value, output_dir,
                                        _TIMEOUT.value, [f"--dtype_policy={row['dtype_policy']}",
                                                         *data.recipe_flags()], progress)
    except Exception as e:  # Recorded; the benchmark goes on with the next recipe.
        row = {"recipe": name, "budget": _BUDGET.value,
               "error": without_local_paths(f"{type(e).__name__}: {e}", output_dir)}
    if "error" in row:
        row.update(backbone=data.entry(name)["backbone"], dataset=data.label(name))
    return row


_MLFLOW_FLAGS = []  # What each recipe's process gets of the MLflow flags (start_tracking sets them).


def start_tracking(output_dir, run_id):
    """With --mlflow: the benchmark's parent MLflow run (reopened when the run resumes), whose id each recipe's
    process nests its own run under; None otherwise."""
    from zoo import tracking

    uri = tracking_flags.tracking_uri()
    if not uri:
        return None
    parent = tracking.Tracker(uri, output_dir / "rows" / f"mlflow-{run_id}",
                              experiment=tracking_flags.MLFLOW_EXPERIMENT.value, run_name=f"benchmark {run_id}",
                              tags={"benchmark.run_id": run_id}).start()
    _MLFLOW_FLAGS[:] = [f"--mlflow_tracking_uri={uri}",
                        f"--mlflow_experiment={tracking_flags.MLFLOW_EXPERIMENT.value}"]
    if parent.active:
        _MLFLOW_FLAGS.append(f"--mlflow_parent_run_id={parent.run_id}")
    return parent


def run_settings(data):
    """The flags that define a run (and its `data`): an interrupted run is resumed only by a command with the same
    ones."""
    return {"recipes": _RECIPES.value, "backbones": _BACKBONES.value, "datasets": _DATASETS.value,
            "dataset_path": data.path, "dataset_options": list(data.options),
            "budget": _BUDGET.value, "deep": _DEEP.value, "include_random_init": _INCLUDE_RANDOM_INIT.value,
            "seed": _SEED.value, "seeds": _SEEDS.value, "dtype_policy": _DTYPE_POLICY.value,
            "bf16_parity": _BF16_PARITY.value}


def choose_run(output_dir, settings, run_id=None, fresh=False):
    """(run_id, resumed): `run_id` if given; else the last run in `output_dir` if it was interrupted and had the
    same settings (unless `fresh`); else a new one."""
    if run_id:
        return run_id, False
    state_file = output_dir / STATE_FILE
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    if state and not state.get("finished") and not fresh:
        if state.get("settings") == settings:
            return state["run_id"], True
        differing = sorted(k for k in settings if settings[k] != state.get("settings", {}).get(k))
        print(f"The last run, {state['run_id']}, was interrupted with other settings (differing: {differing}): "
              "starting a new run; run that command again to resume it.")
    return new_run_id(output_dir / "results.jsonl"), False


def new_run_id(results_file):
    """The UTC start time, made unique among the runs in `results_file` (two runs can start within a second)."""
    taken = {r.get("run_id") for r in report.read_all_rows(results_file)}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = stamp, 1
    while run_id in taken:
        n += 1
        run_id = f"{stamp}-{n}"
    return run_id


def finished_recipes(results_file, run_id):
    """Recipes (and references) with a result row in `run_id`: kept when the run is resumed. Failed ones are not
    (the interruption may be what failed them): they run again."""
    return {r["recipe"] for r in report.read_all_rows(results_file)
            if r.get("run_id") == run_id and "error" not in r}


def append_row(results_file, row):
    """Appends one JSON line. A run killed while writing leaves a line without its newline: the next row then starts
    on a line of its own, so only the cut row is lost."""
    cut_short = False
    if results_file.exists() and results_file.stat().st_size:
        with open(results_file, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut_short = f.read(1) != b"\n"
    with open(results_file, "a") as f:
        f.write(("\n" if cut_short else "") + json.dumps(row, default=str) + "\n")


_deferred_stop = {"deferring": False, "signal": None}


def _stop(signum, frame):
    # `kill` (SIGTERM) stops the run as Ctrl-C does: the running recipe's process is killed with it (an orphan would
    # go on writing its row beside a resumed run), and the same command resumes.
    if _deferred_stop["deferring"]:
        _deferred_stop["signal"] = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _stop_deferred():
    """Holds a stop signal back until the block ends (`_deferred_stop["signal"]` says one came). A stop raised
    inside `subprocess.Popen` (after its fork, before it returns) leaves the caller no handle to kill the recipe's
    process with: it outlived the runner in CI."""
    _deferred_stop.update(deferring=True, signal=None)
    try:
        yield
    finally:
        signum = _deferred_stop["signal"]
        _deferred_stop.update(deferring=False, signal=None)
    if signum is not None:
        raise KeyboardInterrupt(f"signal {signum}")


def _data_from_flags():
    """The run's `Data`, its file read and checked (columns, labels, encoding) before anything runs."""
    if not _DATASET_PATH.value:
        if _DATASET_OPTIONS.value:
            raise app.UsageError("--dataset_options reads your file: pass --dataset_path=FILE with it.")
        return Data()
    if _DATASETS.value:
        raise app.UsageError("--datasets chooses registered datasets; --dataset_path benchmarks your file instead: "
                             "pass one of them.")
    path = pathlib.Path(_DATASET_PATH.value).expanduser()
    if not path.exists():
        raise app.UsageError(f"--dataset_path={_DATASET_PATH.value}: no such file or directory.")
    # Absolute: each recipe's process runs in the clone, not where you are.
    data = Data(str(path.resolve()), tuple(_DATASET_OPTIONS.value or ()))
    from zoo import datasets

    try:
        options = catalog.parse_key_values(data.options, "dataset_options")
    except ValueError as e:
        raise app.UsageError(str(e))
    with console.input_errors():
        datasets.read("custom", data.path, **options)
    return data


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    data = _data_from_flags()
    output_dir = pathlib.Path(_OUTPUT_DIR.value or (
        f"benchmarks/results-{catalog.data_label({'dataset': 'custom', 'dataset_path': data.path})}" if data.path
        else "benchmarks/results"))
    (output_dir / "logs").mkdir(parents=True, exist_ok=True)
    runnable, skipped = plan(_RECIPES.value, _BACKBONES.value, _DATASETS.value, _INCLUDE_RANDOM_INIT.value, data)
    settings = run_settings(data)
    run_id, resumed = choose_run(output_dir, settings, _RUN_ID.value, _FRESH.value)
    results_file = output_dir / "results.jsonl"
    done = finished_recipes(results_file, run_id) if resumed else set()  # --run_id re-runs what it is given.
    state_file = output_dir / STATE_FILE
    state_file.write_text(json.dumps({"run_id": run_id, "settings": settings, "finished": False}, indent=2))
    _announce(run_id, runnable, skipped, done if resumed else None)
    cpu, peaks = _machine()

    def record(row):
        row = {"run_id": run_id, **row, "cpu": cpu, "matmul_peak_gflops": peaks}
        append_row(results_file, row)
        return row

    recorded = {r["recipe"] for r in report.read_all_rows(results_file) if r.get("run_id") == run_id}
    for name, reason in skipped.items():
        if name not in recorded:
            record({"recipe": name, "budget": _BUDGET.value, "skipped": reason,
                    "backbone": data.entry(name)["backbone"], "dataset": data.label(name)})
    estimated, progress = _estimate(runnable, done, results_file, peaks, data)
    parent = start_tracking(output_dir, run_id)
    started = time.time()
    try:
        _run_references(runnable, done, record, progress, data)
        _run_recipes(runnable, done, record, progress, output_dir, run_id, data)
    except KeyboardInterrupt:
        if parent:
            parent.end("KILLED")
        progress.close()
        print(f"\nInterrupted. Run the same command again to resume run {run_id} (finished recipes are kept); "
              "--fresh starts a new run.", file=sys.stderr)
        sys.exit(130)
    progress.close()
    took = time.time() - started
    print(f"Took {progress_lib.minutes(took)}; estimated {progress_lib.minutes(estimated)} at the start "
          f"({took / estimated if estimated else float('nan'):.2f}x the estimate).")
    state_file.write_text(json.dumps({"run_id": run_id, "settings": settings, "finished": True,
                                      "estimated_seconds": round(estimated), "seconds": round(took)}, indent=2))
    rows, _ = report.read_rows(results_file, run_id)
    judged = report.judge(rows)  # Once: bootstrap intervals and comparisons of every row, for both uses below.
    recommended = report.recommendations(rows, _MAX_LATENCY_MS.value, judged)
    if recommended:  # Rows with their test predictions (rows from before them: none).
        record({"recipe": report.RECOMMENDATIONS, "max_latency_ms": _MAX_LATENCY_MS.value,
                "recommendations": recommended})
    report.write(output_dir, run_id, judged=judged)
    if recommended:
        print("Recommendations (intervals and comparisons in RESULTS.md):")
        for line in report.recommendation_lines(recommended):
            print(f"  {line}")
    if parent:
        parent.log_metrics({"seconds": took, "estimated_seconds": estimated, "recipes": len(runnable)}, "benchmark.")
        for name in ("RESULTS.md", "accuracy_vs_throughput.png", "frontier.png", "results.jsonl"):
            parent.log_artifact(output_dir / name)
        parent.end("FINISHED")
    print(f"Results: {results_file}, {output_dir / 'RESULTS.md'}, {output_dir / 'accuracy_vs_throughput.png'}")


def _announce(run_id, runnable, skipped, done):
    """Prints what the run will do; `done`: the recipes a resumed run keeps (None for a new run)."""
    print(f"Benchmark {run_id}: {len(runnable)} recipes at budget {_BUDGET.value}, {len(skipped)} skipped.")
    if done is not None:
        kept = [n for n in runnable if n in done]
        print(f"  Resuming the interrupted run {run_id}: {len(kept)} recipes finished before are kept, "
              f"{len(runnable) - len(kept)} to run (--fresh starts a new run).")
    for name, reason in skipped.items():
        print(f"  skipped {name}: {reason}")


def _machine():
    """The machine, and the figure that makes speeds comparable across machines: its measured matmul rate."""
    cpu = training.cpu_info()
    peaks = timing.matmul_rates()
    print(f"CPU: {report.describe_cpu(cpu, peaks)}.")
    return cpu, peaks


def _estimate(runnable, done, results_file, peaks, data):
    """(the estimated seconds of what is not `done`, the progress display over it), said as it is estimated."""
    to_run = [n for n in runnable if n not in done]
    estimates, basis = progress_lib.estimate(
        to_run, {n: data.resolve(n, _BUDGET.value) for n in to_run}, report.read_all_rows(results_file),
        peaks["float32"], parity_recipes(to_run), _DEEP.value, _SEEDS.value)
    estimates = {n: s for n, s in estimates.items() if n not in done}  # The references finished before too.
    estimated = sum(estimates.values())
    print(f"Estimated duration: {progress_lib.minutes(estimated)} (each recipe as long as in the last run here of "
          f"the same recipe, scaled by the matmul peak and by any change of its work: {basis['as last run']} as "
          f"before, {basis['scaled']} scaled, {basis['family median']} never run: their family's median).",
          flush=True)
    return estimated, progress_lib.RunProgress(estimates)


def _run_references(runnable, done, record, progress, data):
    """The TF-IDF + LogisticRegression reference of every dataset the recipes use; a failed one is recorded and
    the benchmark goes on."""
    for dataset_name in sorted({data.label(n) for n in runnable}):
        name = catalog.reference_recipe(dataset_name)
        if name in done:
            continue
        progress.start(name, f"  reference {dataset_name}: TF-IDF + LogisticRegression")
        reference_started = time.time()
        try:
            row = record(sklearn_reference(dataset_name, _BUDGET.value, _SEED.value, data))
            progress.write(f"    accuracy {row['accuracy']:.4f}")
        except Exception as e:  # A failed reference is recorded; the benchmark goes on.
            record({"recipe": name, "dataset": dataset_name, "error": f"{type(e).__name__}: {e}"})
        progress.finish(name, time.time() - reference_started)


def _run_recipes(runnable, done, record, progress, output_dir, run_id, data):
    """Every recipe not `done`, each in its own process (`benchmark_recipe`), its row recorded as it ends."""
    for i, name in enumerate(runnable, start=1):
        if name in done:
            progress.write(f"[{i}/{len(runnable)}] {name}: finished before the interruption, kept.")
            continue
        progress.start(name, f"[{i}/{len(runnable)}] {name}")
        recipe_started = time.time()
        row = record(benchmark_recipe(name, output_dir, progress, run_id, data))
        progress.finish(name, time.time() - recipe_started)
        if "error" in row:
            progress.write(f"    FAILED: {row['error'][-300:]}")
            continue
        # A head solved to its optimum (ngram_linear) has no epochs to time: its training seconds say it.
        rate = row.get("train_examples_per_second_epoch")
        trained = f"train {rate:.1f} ex/s" if rate else f"trained in {row.get('fit_seconds') or 0:.0f}s"
        progress.write(f"    accuracy {row['accuracy']:.4f}, {trained}, served "
                       f"{row['inference_examples_per_second']['32']:.1f} ex/s, {row['wall_seconds']:.0f}s")
        if (share := report.cpu_taken_by_others(row)) > report.CONTENTION_WARNING:
            progress.write(f"    WARNING: other processes took {share:.0%} of the CPU meanwhile; its timings are low.")


if __name__ == "__main__":
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stop)
    console.run(main)
