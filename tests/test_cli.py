"""The installed `textzoo` command: its subcommands and its errors (each subcommand's own flags are tested with the
script it runs)."""

import importlib.util
import re
import signal
import subprocess
import sys
import time

import pytest

from tests import commands
from textzoo import cli


def test_every_subcommand_runs_a_script_with_a_main():
    for name, (module, summary) in cli.COMMANDS.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None, (name, module)
        source = spec.loader.get_source(module)
        assert "def main(" in source and 'if __name__ == "__main__":' in source, module
        assert summary


def test_usage_lists_every_subcommand(tmp_path):
    result = commands.run("--help", cwd=tmp_path, timeout=60)
    assert result.returncode == 0
    for name in cli.COMMANDS:
        assert f"\n  {name} " in result.stdout


def test_an_unknown_subcommand_names_what_is_allowed(tmp_path):
    result = commands.run("trian", "--recipe=x", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("textzoo: unknown command 'trian'. Allowed: train, predict, explain, export, demo, "
                                    "datasets, track, benchmark.")


@pytest.mark.parametrize("wait", [0.5, 6])
def test_ctrl_c_is_one_line_and_status_130(tmp_path, wait):
    """SIGINT while the script is imported (0.5 s) or while it runs (6 s: `textzoo predict` waiting for texts on
    standard input): no traceback, "Interrupted." as the last line, exit status 130 as a shell gives."""
    process = commands.start("predict", "--model=anything", cwd=tmp_path)
    time.sleep(wait)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "Interrupted.", stderr[-3000:]


def test_sigterm_runs_cleanup_and_says_what_was_kept(tmp_path):
    """`kill` (SIGTERM) stops a command as Ctrl-C does: its `finally` blocks run (predict's hidden partial output is
    removed), one line says what was kept, and the exit status is 143 as a shell reports it."""
    partial = tmp_path / ".scored.csv.partial"
    script = tmp_path / "slow_command.py"
    script.write_text(
        "import pathlib, time\n"
        "from recipes import console\n\n"
        "def main(argv):\n"
        f"    partial = pathlib.Path({str(partial)!r})\n"
        "    partial.write_text('half')\n"
        "    try:\n"
        "        print('started', flush=True)\n"
        "        time.sleep(120)\n"
        "    finally:\n"
        "        partial.unlink()\n\n"
        "console.run(main, interrupted=lambda: 'Interrupted: scored.csv was not written.')\n")
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=commands.environment(),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=commands.default_signals)
    assert process.stdout.readline().strip() == "started"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines() == ["Interrupted: scored.csv was not written."]
    assert not partial.exists()


def test_importing_the_library_prints_no_tensorflow_start_up_lines(tmp_path):
    """`from zoo import TextClassifier` in a user's Python: none of TensorFlow's start-up lines (the absl banner,
    oneDNN, CUDA stubs, the E-level cuInit error of a machine without a GPU), as the commands."""
    result = subprocess.run([sys.executable, "-c", "import zoo; from zoo import TextClassifier; import sys; "
                             "print('imported', file=sys.stderr)"], cwd=tmp_path, env=commands.environment(),
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and result.stderr.strip() == "imported", result.stderr[-3000:]
    shown = subprocess.run([sys.executable, "-c", "import zoo; import tensorflow"], cwd=tmp_path,
                           env={**commands.environment(), "TF_CPP_MIN_LOG_LEVEL": "0"}, capture_output=True,
                           text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert re.search(commands.TF_LOG_LINE, shown.stderr), "TF_CPP_MIN_LOG_LEVEL=0 shows them"
