"""What determinism covers on this machine: one recipe trained with the same seed in fresh processes, as it is, again,
and with one thing changed that differs between machines reporting the same CPU flags (TensorFlow's and oneDNN's
thread counts; oneDNN on or off, which decides whose kernels run). Each run's training losses and test
probabilities are compared to the first run's, bit for bit. Prints one JSON object and writes it with --output.

    python -m benchmarks.determinism --recipe=glove_bilstm_bbc_news --budget=tiny --epochs=3

Op determinism (`--deterministic`, on by default where XLA is off) makes a run repeat on one machine. Across
machines, kernels may be chosen by what the CPU is (cache sizes, core count) and sum in another order; a variant
here that does not repeat names a cause that can differ between machines with the same flags.
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

REPO = pathlib.Path(__file__).resolve().parents[1]
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
# Each variant's environment, added to this process's.
VARIANTS = {"as is": {}, "again": {}, "one thread": ONE_THREAD, "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0"}}


def _cache_sizes(root="/sys/devices/system/cpu/cpu0/cache"):
    """{"L1d": "48K", "L2": "2048K", ...} of the first core: kernels choose their blocking by them."""
    sizes = {}
    for index in sorted(pathlib.Path(root).glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            sizes[f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")] = (index / "size").read_text().strip()
        except OSError:
            continue
    return sizes


def record(runtime):
    """What a benchmark row's repeatability rests on: op determinism, whose kernels ran (oneDNN or TensorFlow's
    own), the thread settings the environment gives and what of the CPU kernels adapt to. A row repeats to the last
    digit where all of it is the same (`python -m benchmarks.determinism` shows which of them move a recipe's
    numbers on a machine)."""
    from zoo import training

    cpuinfo = pathlib.Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    microcode = next((line.partition(":")[2].strip() for line in lines if line.startswith("microcode")), None)
    return {"op_determinism": runtime.deterministic, "onednn": not training.onednn_off(),
            "environment": {name: os.environ[name] for name in (*ONE_THREAD, "TF_ENABLE_ONEDNN_OPTS")
                            if name in os.environ},
            "cpu_model": training.cpu_info()["model"], "microcode": microcode, "caches": _cache_sizes()}


def fingerprint(run_dir):
    """What a run computed: its epochs' losses and its test probabilities, as written, with their sha256."""
    from zoo import runs

    run = runs.RunDir(run_dir)
    history = [{k: v for k, v in row.items() if "loss" in k or "accuracy" in k} for row in run.history()]
    probabilities = [json.loads(line)["probabilities"] for line in run.file(runs.PREDICTIONS).read_text().splitlines()]
    digest = lambda value: hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]  # noqa: E731
    return {"accuracy": run.metrics()["accuracy"], "final_loss": history[-1].get("loss"),
            "history_sha256": digest(history), "probabilities_sha256": digest(probabilities)}


def train(recipe, budget, epochs, run_dir, env):
    command = [sys.executable, "-m", "recipes.train", f"--recipe={recipe}", f"--budget={budget}",
               f"--epochs={epochs}", f"--output_dir={run_dir}", "--export_dir=", "--dtype_policy=float32"]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return fingerprint(run_dir)


def compare(runs):
    """Each variant's fingerprint and whether it equals the first variant's, bit for bit."""
    first = next(iter(runs.values()))
    keys = ("history_sha256", "probabilities_sha256")
    return {name: {**found, "same_as_first": all(found[k] == first[k] for k in keys)} for name, found in runs.items()}


def _define_flags():
    """The command's flags, defined only when it runs: `record` is imported by the benchmark's recipe processes,
    which define flags of the same names."""
    flags.DEFINE_string("recipe", "glove_bilstm_bbc_news", "Recipe to train.")
    flags.DEFINE_enum("budget", "tiny", ["tiny", "quick", "full"], "Recipe budget.")
    flags.DEFINE_integer("epochs", 3, "Epochs of each run (more epochs let a difference grow).")
    flags.DEFINE_string("output", None, "Also write the result here (JSON).")
    flags.DEFINE_list("variants", None, "Which variants to run (default: all of VARIANTS); the first is the one the "
                      "others are compared with.")


def main(argv):
    del argv
    from zoo import training

    options = flags.FLAGS
    chosen = options.variants or list(VARIANTS)
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"Unknown variants {unknown}. Allowed: {list(VARIANTS)}.")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, env) in enumerate((name, VARIANTS[name]) for name in chosen):
            runs[name] = train(options.recipe, options.budget, options.epochs, pathlib.Path(tmp) / f"run-{i}", env)
            print(f"{name}: {runs[name]}", file=sys.stderr, flush=True)
    result = {"recipe": options.recipe, "budget": options.budget, "epochs": options.epochs,
              "cpu": training.cpu_info(), "variants": {name: VARIANTS[name] for name in chosen},
              "runs": compare(runs)}
    print(json.dumps(result, indent=2))
    if options.output:
        pathlib.Path(options.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
