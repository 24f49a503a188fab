"""Progress of a benchmark run that a person can follow, and the estimate of its duration.

The recipe's process (`benchmarks.one`) writes its stage to a small JSON file (`StageFile`, `EpochProgress`); the
runner reads it while it waits and shows, on a terminal, two tqdm bars (the matrix, with elapsed time and estimated
end; the running recipe's stage, with a step bar during training), and, piped to a file, one line per stage change
and a heartbeat line every `HEARTBEAT_SECONDS` (no carriage returns).

The estimate before the first recipe: each recipe's wall time in the last run of the same recipe and budget (in
the output directory's results.jsonl, which the repository ships), scaled by this machine's measured matmul peak
against that run's and by the change of its work (training examples cap x epochs x sequence length) where its
settings changed since; recipes never run before get the median of their backbone family's.
"""

import datetime
import json
import os
import pathlib
import statistics
import sys
import time

import keras
from tqdm import tqdm

from recipes import catalog

HEARTBEAT_SECONDS = 60
# Seconds a recipe's process spends outside its own wall time (interpreter start, imports) and the runner between
# recipes; measured on the 2-core machine: 9-12 s.
PROCESS_OVERHEAD_SECONDS = 10.0


class StageFile:
    """The running recipe's stage, for the runner: `stage(name, **details)` replaces it, `update(**details)` adds
    to it. Written whole to a temporary file and renamed, so a reader never sees half of it."""

    def __init__(self, path):
        self.path = pathlib.Path(path) if path else None
        self.state = {}

    def __call__(self, stage, **details):
        self.state = {"stage": stage, **details}
        self._write()

    def update(self, **details):
        self.state.update(details)
        self._write()

    def _write(self):
        if self.path is not None:
            write_json(self.path, {**self.state, "time": time.time()})


def write_json(path, value, indent=None):
    """`value` as JSON into `path`, whole or not at all: a reader (or a run cut short mid-write) never meets half a
    file."""
    path = pathlib.Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=indent))
    os.replace(temporary, path)


class EpochProgress(keras.callbacks.Callback):
    """Epoch k of n and the step within it, into a `StageFile` (at most once a second: it is read by a person)."""

    def __init__(self, stages, interval=1.0):
        super().__init__()
        self.stages, self.interval, self._written, self._steps = stages, interval, 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._steps = 0
        self.stages.update(epoch=epoch + 1, epochs=self.params.get("epochs"), step=0)

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1
        if time.time() - self._written >= self.interval:
            self._written = time.time()
            self.stages.update(step=self._steps)

    def on_epoch_end(self, epoch, logs=None):
        # The steps an epoch has are known once one has run (length-bucketed batches are counted from above).
        self.stages.update(step=self._steps, steps=self._steps,
                           **{k: round(float(v), 4) for k, v in (logs or {}).items() if k == "val_accuracy"})


def read_stage(path):
    """The stage a recipe's process last wrote ({} before it wrote one)."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}


def describe(stage):
    """One line for a stage dict: 'training: epoch 2/3, step 30/48, val_accuracy 0.97'."""
    if not stage:
        return "starting"
    text = stage["stage"]
    parts = []
    if "epoch" in stage:
        parts.append(f"epoch {stage['epoch']}/{stage.get('epochs') or '?'}")
        if stage.get("step") is not None:
            parts.append(f"step {stage['step']}/{stage.get('steps') or '?'}")
    if "examples" in stage:
        parts.append(f"{stage['examples']} examples")
    if "val_accuracy" in stage:
        parts.append(f"val_accuracy {stage['val_accuracy']:.4f}")
    return f"{text}: {', '.join(parts)}" if parts else text


def minutes(seconds):
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s"


# How much the start estimate weighs against the recipes finished so far, in seconds of them.
PRIOR_SECONDS = 300.0


class RunProgress:
    """The runner's display: `start(name)`, `poll(stage_file)` while it runs, `finish(name, seconds)`, `write(line)`
    for any other line, `close()`. `estimates`: {recipe: estimated seconds}, in the order they run."""

    def __init__(self, estimates, stream=None, heartbeat=HEARTBEAT_SECONDS, clock=time.time):
        self.estimates, self.stream = dict(estimates), stream or sys.stdout
        self.heartbeat, self.clock = heartbeat, clock
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = clock()
        self.done_estimated = self.done_actual = 0.0
        self.finished = set()
        self.current = self.recipe_started = None
        self.last_line = self.last_printed = None
        self.matrix_bar = self.stage_bar = None
        if self.interactive:
            self.matrix_bar = tqdm(total=max(1, round(sum(self.estimates.values()))), unit="s", position=0,
                                   file=self.stream, desc="benchmark", dynamic_ncols=True,
                                   bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed{postfix}")
            self.stage_bar = tqdm(total=1, position=1, file=self.stream, dynamic_ncols=True, leave=False,
                                  bar_format="  {desc} |{bar}|")

    def remaining(self):
        """Estimated seconds left: what is left of the estimates, corrected by how finished recipes compared (the
        estimate itself counting as PRIOR_SECONDS of them: a 6 s reference done in 3 s once halved the whole)."""
        later = sum(s for n, s in self.estimates.items() if n not in self.finished and n != self.current)
        ratio = (self.done_actual + PRIOR_SECONDS) / (self.done_estimated + PRIOR_SECONDS)
        ratio = min(max(ratio, 0.5), 2.0)
        running = 0.0
        if self.current is not None:
            running = max(self.estimates.get(self.current, 0.0) * ratio - (self.clock() - self.recipe_started), 0.0)
        return later * ratio + running

    def _summary(self):
        left = self.remaining()
        end = datetime.datetime.now() + datetime.timedelta(seconds=left)
        return f"{minutes(self.clock() - self.started)} elapsed, about {minutes(left)} left (ends ~{end:%H:%M})"

    def write(self, line):
        if self.interactive:
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def start(self, name, label=None):
        """`name` starts; `label` is how its line begins (default: the name)."""
        self.current, self.recipe_started = name, self.clock()
        self.last_line = None
        self.write(f"{label or name} (estimated {minutes(self.estimates.get(name, 0))}; {self._summary()}) ...")

    def poll(self, stage_file):
        stage = read_stage(stage_file)
        line = describe(stage)
        now = self.clock()
        if self.interactive:
            self.matrix_bar.n = min(round(self.done_estimated + min(now - self.recipe_started,
                                                                    self.estimates.get(self.current, 0))),
                                    self.matrix_bar.total)
            self.matrix_bar.set_postfix_str(f"about {minutes(self.remaining())} left", refresh=False)
            self.matrix_bar.refresh()
            steps = stage.get("steps") if "epoch" in stage else None
            self.stage_bar.total = steps or 1
            self.stage_bar.n = min(stage.get("step") or 0, steps) if steps else 0
            self.stage_bar.set_description_str(f"{self.current} | {line}", refresh=False)
            self.stage_bar.refresh()
            return
        # Piped: a line when the stage (not the step) changes, and a heartbeat with the step now and then.
        key = (stage.get("stage"), stage.get("epoch"))
        if key != self.last_line or now - self.last_printed >= self.heartbeat:
            self.write(f"    {line} ({minutes(now - self.recipe_started)} into the recipe; {self._summary()})")
            self.last_line, self.last_printed = key, now

    def finish(self, name, seconds):
        self.done_estimated += self.estimates.get(name, 0.0)
        self.done_actual += seconds
        self.finished.add(name)
        self.current = None
        if self.matrix_bar is not None:
            self.matrix_bar.n = min(round(self.done_estimated), self.matrix_bar.total)
            self.matrix_bar.refresh()

    def close(self):
        for bar in (self.stage_bar, self.matrix_bar):
            if bar is not None:
                bar.close()


def train_examples(recipe, full_sizes):
    """Training examples `recipe` will use: its cap on the training split's size (`full_sizes`: {dataset: size},
    from the TF-IDF reference rows, which use whole splits), None where unknown."""
    cap = recipe.get("max_examples")
    cap = cap.get("train") if isinstance(cap, dict) else cap
    full = full_sizes.get(catalog.data_label(recipe))
    return min(c for c in (cap, full) if c) if (cap or full) else None


def estimate(names, settings, rows, peak_gflops, parity=(), deep=False, seeds=1):
    """({name: estimated seconds}, {basis: count}) for the recipes `names` and the TF-IDF reference of each of
    their datasets (`reference_sklearn_tfidf_lr_<dataset>`), from earlier rows (`rows`, oldest first).

    `settings`: {recipe: resolved recipe} of this run; `parity`: recipes also trained in float32; `deep`: whether
    the run times the deep measurements (`benchmarks.run --deep`); `seeds`: how many seeds each recipe trains with
    (`benchmarks.run --seeds`: the repeats train and evaluate only).
    """
    last, full_sizes = {}, {}
    for row in rows:
        if "wall_seconds" in row and "error" not in row and "skipped" not in row:
            last[(row["recipe"], row.get("budget"))] = row
            if row["recipe"].startswith("reference_") and row.get("examples"):
                full_sizes[row["dataset"]] = row["examples"]["train"]
    budget = next(iter(settings.values()))["budget"] if settings else None
    references = [catalog.reference_recipe(d) for d in sorted({catalog.data_label(settings[n]) for n in names})]
    estimates, basis, known = {}, {"as last run": 0, "scaled": 0, "family median": 0}, {}
    for name in references + list(names):
        row = last.get((name, budget))
        if row is None:
            continue
        # A --deep row's own deep measurements, left out of a run without them (rows from before --deep: all deep,
        # their share unrecorded).
        seconds = row["wall_seconds"] - (0.0 if deep else row.get("deep_seconds") or 0.0)
        again_seconds = (row.get("bf16_parity") or {}).get("float32_wall_seconds", 0.0) * (name in parity)
        recipe = settings.get(name)
        if recipe is not None:
            # A seed repeat as long as the repeats measured before, else as the row's training and a process start.
            repeats = (row.get("seeds") or {}).get("wall_seconds") or [(row.get("fit_seconds") or seconds)
                                                                      + PROCESS_OVERHEAD_SECONDS]
            again_seconds += statistics.fmean(repeats) * (seeds - 1)
            # The epochs set, not those run (early stopping); rows from before they were recorded: unchanged.
            then = ((row.get("examples") or {}).get("train"), row.get("epochs", recipe["epochs"]),
                    row.get("sequence_length"))
            now = (train_examples(recipe, full_sizes), recipe["epochs"], recipe["sequence_length"])
            if None not in then and None not in now and then != now:
                examples, epochs, positions = (n / t for n, t in zip(now, then))
                fit = row.get("fit_seconds")
                if fit is None:  # Rows from before fit_seconds was recorded: all of it scales with the work.
                    seconds *= examples * epochs * positions
                else:
                    # Epochs scale with examples x epochs x positions, caching the frozen prefix (once per
                    # example) with examples x positions, the rest (evaluation, export, timings) with positions.
                    caching = row.get("caching_seconds") or 0.0
                    seconds = ((fit - caching) * examples * epochs * positions + caching * examples * positions
                               + (seconds - fit) * positions)
                again_seconds *= examples * epochs * positions
                basis["scaled"] += 1
            else:
                basis["as last run"] += 1
        seconds += again_seconds
        if (row.get("matmul_peak_gflops") or {}).get("float32") and peak_gflops:
            seconds *= row["matmul_peak_gflops"]["float32"] / peak_gflops
        if recipe is not None:
            known.setdefault(recipe["backbone"], []).append(seconds)
        estimates[name] = seconds + PROCESS_OVERHEAD_SECONDS * (recipe is not None)
    everything = [s for v in known.values() for s in v]
    for name in references + list(names):
        if name not in estimates:
            family = known.get(settings[name]["backbone"]) if name in settings else None
            estimates[name] = statistics.median(family or everything or [300.0])
            basis["family median"] += 1
    return {n: estimates[n] for n in references + list(names)}, basis
