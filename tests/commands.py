"""The installed `textzoo` command, run as a user runs it: the console script of this interpreter's environment
(`make setup` installs the project into it), from a directory outside the clone, with no PYTHONPATH."""

import os
import pathlib
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


def run(subcommand, *args, cwd, timeout=600, stdin=None, env=None):
    """`textzoo SUBCOMMAND ARGS...` in `cwd` (with `env` added to the environment); the finished process, its
    output as text."""
    return subprocess.run(command(subcommand, *args), cwd=cwd, env={**environment(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def start(subcommand, *args, cwd):
    """`textzoo SUBCOMMAND ARGS...` started in `cwd`, its output piped."""
    return subprocess.Popen(command(subcommand, *args), cwd=cwd, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
