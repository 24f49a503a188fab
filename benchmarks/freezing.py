"""Frozen-prefix fine-tuning against full fine-tuning, on the same recipes, data and epochs:

    python -m benchmarks.freezing          # minilm_l6 on Reuters R8 and BBC News; about 35 minutes on 2 cores

For each recipe, trains it with `trainable_layers` = all (full fine-tuning), the recipe's own setting, and 0 (the
head alone), each in its own process (`benchmarks.one --accuracy_only`: train and evaluate, no export), and records
test accuracy, macro-F1, training seconds (caching the frozen features included) and examples/s over the whole run.
Rows go to <output_dir>/freezing.jsonl; `benchmarks.report` puts the table into RESULTS.md.
"""

import pathlib
import time

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks import run  # noqa: E402
from recipes import catalog  # noqa: E402

# The runner's flags (--recipes, --budget, --output_dir, --seed, --timeout) apply; this one is its own.
_SETTINGS = flags.DEFINE_list("trainable_layers", ["all", "recipe", "0"],
                              "Values of the backbone option trainable_layers; `recipe`: the recipe's own setting.")

DEFAULT_RECIPES = ["minilm_l6_reuters_r8", "minilm_l6_bbc_news"]
RESULTS_FILE = "freezing.jsonl"


def settings(name, budget, values):
    """The trainable_layers values to run for `name`, `recipe` resolved to the recipe's own (no repeats)."""
    own = catalog.resolve(name, budget)["backbone_options"].get("trainable_layers", "all")
    resolved = []
    for value in values:
        value = own if value == "recipe" else catalog.parse_value(value)
        if value not in resolved:
            resolved.append(value)
    return resolved


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    output_dir = pathlib.Path(flags.FLAGS.output_dir)
    (output_dir / "logs").mkdir(parents=True, exist_ok=True)
    budget, seed, recipes = flags.FLAGS.budget, flags.FLAGS.seed, flags.FLAGS.recipes or DEFAULT_RECIPES
    unknown = sorted(set(recipes) - set(catalog.names()))
    if unknown:
        raise app.UsageError(f"Unknown recipes {unknown}. Allowed: {catalog.names()}.")
    run_id = run.new_run_id(output_dir / RESULTS_FILE)
    plan = [(name, value) for name in recipes for value in settings(name, budget, _SETTINGS.value)]
    print(f"Freezing comparison {run_id}: {len(plan)} trainings at budget {budget}.")
    started = time.time()
    for i, (name, value) in enumerate(plan, start=1):
        print(f"[{i}/{len(plan)}] {name} trainable_layers={value} ({time.time() - started:.0f}s elapsed) ...",
              flush=True)
        tag = f".trainable_layers={value}"
        row = run.run_recipe(name, budget, output_dir, seed, flags.FLAGS.timeout,
                             output_dir / "logs" / f"{name}{tag}.log",
                             ["--accuracy_only", f"--backbone_options=trainable_layers={value}"], tag=tag)
        row = {"run_id": run_id, "budget": budget, "trainable_layers": value, **row}
        run.append_row(output_dir / RESULTS_FILE, row)
        if "error" in row:
            print(f"    FAILED: {row['error'][-300:]}")
        else:
            print(f"    accuracy {row['accuracy']:.4f}, macro-F1 {row['macro_f1']:.4f}, trained in "
                  f"{row['fit_seconds']:.0f}s ({row['train_examples_per_second_run']:.1f} examples/s)")
    report.write(output_dir)
    print(f"Results: {output_dir / RESULTS_FILE}, {output_dir / 'RESULTS.md'}")


if __name__ == "__main__":
    app.run(main)
