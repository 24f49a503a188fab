"""`textzoo`: the project's scripts as one command. Each subcommand runs its module as `python -m MODULE` would, with
the module's absl flags (`textzoo train --help` lists them).

    textzoo train --recipe=minilm_l6_bbc_news --budget=quick
    textzoo predict --model=exports/minilm_l6_bbc_news --text="Shares rose after the results"
    textzoo benchmark --backbones=ngram_linear
"""

import runpy
import sys

# subcommand: (the module it runs, what it does).
COMMANDS = {
    "train": ("recipes.train", "train, evaluate and export a recipe"),
    "predict": ("recipes.predict", "score texts with a run directory or an export"),
    "explain": ("recipes.explain", "explain a prediction (LIME)"),
    "export": ("recipes.export", "export a run directory as a TF Serving SavedModel"),
    "demo": ("recipes.demo", "serve the demo page for runs or exports"),
    "datasets": ("recipes.datasets", "list the datasets, or load one and print its summary"),
    "track": ("recipes.track", "log a run directory to MLflow"),
    "benchmark": ("benchmarks.run", "the benchmark of every recipe (the main job)"),
}


def usage():
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return ("usage: textzoo COMMAND [--flag=value ...]\n\ncommands:\n" + "\n".join(lines)
            + "\n\n`textzoo COMMAND --help` lists a command's flags.\n")


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    command = argv[1] if len(argv) > 1 else None
    if command in (None, "-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0 if command else 2
    if command not in COMMANDS:
        sys.stderr.write(f"textzoo: unknown command {command!r}. Allowed: {', '.join(COMMANDS)}.\n\n{usage()}")
        return 2
    from recipes import console

    console.quiet()  # Before the script's imports, some of which import TensorFlow.
    sys.argv = [f"textzoo {command}"] + argv[2:]
    try:
        # As `python -m`: the module runs as __main__, so absl's --help shows its docstring and its flags.
        runpy.run_module(COMMANDS[command][0], run_name="__main__", alter_sys=True)
    except KeyboardInterrupt:  # While the script is imported (once it runs, `console.run` says what was kept).
        sys.stderr.write("\nInterrupted.\n")
        return 130
    return 0
