"""The installed `textzoo` command, run as a user runs it: the console script of this interpreter's environment
(`make setup` installs the project into it), from a directory outside the clone, with no PYTHONPATH."""

import os
import pathlib
import signal
import subprocess
import sys

TEXTZOO = pathlib.Path(sys.executable).with_name("textzoo")


# TensorFlow's C++ log lines (glog's prefix: level, date or zeros, time, thread, file:line) and the absl banner.
TF_LOG_LINE = r"(?m)^[IWEF]\d{4} [\d:.]+ +\d+ \w+\.cc:\d+\]|absl::InitializeLog"


def environment():
    """The user's environment: without this process's PYTHONPATH and TF_CPP_MIN_LOG_LEVEL (tests/conftest.py)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, "KERAS_BACKEND": "tensorflow"}


def command(subcommand, *args):
    return [str(TEXTZOO), subcommand, *map(str, args)]


def default_signals():
    """Run in a child before it executes its program: SIGINT handled as a terminal's Ctrl-C. A test suite started
    in the background by a non-interactive shell (`make test &` in a script, many CI runners) has SIGINT ignored,
    its children inherit that, and Python in them then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(subcommand, *args, cwd, timeout=600, stdin=None, env=None):
    """`textzoo SUBCOMMAND ARGS...` in `cwd` (with `env` added to the environment); the finished process, its
    output as text. Its standard input is `stdin` (none by default: never the test runner's own)."""
    return subprocess.run(command(subcommand, *args), cwd=cwd, env={**environment(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None, preexec_fn=default_signals)


def start(subcommand, *args, cwd):
    """`textzoo SUBCOMMAND ARGS...` started in `cwd`, its standard input and output piped, Ctrl-C its default."""
    return subprocess.Popen(command(subcommand, *args), cwd=cwd, env=environment(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
