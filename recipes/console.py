"""How the scripts meet a terminal: quiet by default, one line per usage error.

`run(main)` is `absl.app.run(main)` with three differences (the `textzoo` command makes the first for every
subcommand, before the script is imported):
- `quiet()`: TensorFlow's start-up lines are dropped: the lines its C++ libraries write to the process's stderr
  while it is imported (the absl banner, oneDNN, CUDA stubs, CPU features), and its Python INFO lines;
  `TF_CPP_MIN_LOG_LEVEL` defaults to 3, so its later C++ warnings and errors are not shown either. Anything else
  written during the import is passed on. `TF_CPP_MIN_LOG_LEVEL` set by you (0 shows everything) turns this off.
- A usage error (`app.UsageError`: an unknown recipe, a missing path) is one line naming the flag, not the
  flags' help first (`--help` shows that).
- Ctrl-C and SIGTERM are one line saying what was kept, not a traceback.
"""

import contextlib
import importlib.util
import logging as std_logging
import os
import pathlib
import signal
import sys

from absl import app
from absl import logging

from zoo import startup

class _OursOrWarnings(std_logging.Filter):
    """INFO lines from this project's packages; warnings and errors from any (TensorFlow logs its INFO through absl,
    under absl's logger name, so its file is what tells them apart)."""

    _OURS = tuple(str(pathlib.Path(importlib.util.find_spec(name).origin).parent) + os.sep
                  for name in ("zoo", "recipes", "benchmarks"))

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or record.pathname.startswith(self._OURS)


def quiet():
    """From here on in this process: TensorFlow's start-up lines dropped when it is imported, its C++ log level 3,
    INFO lines only from this project. Nothing changes where `TF_CPP_MIN_LOG_LEVEL` is set (by you: it is how to
    see everything)."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    startup.drop_tensorflow_start_up_lines()  # Before the level is set: it does nothing where one is.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    logging.get_absl_handler().addFilter(_OursOrWarnings())


# The flags that name a file's columns, for each command's hint.
TRAINING_COLUMNS = "--dataset_options=text_columns=A+B,label_column=C"


@contextlib.contextmanager
def input_errors(columns=TRAINING_COLUMNS, more=()):
    """Bad input, not a bug: one line and exit status 1 (the message names the file, line, what was received and what
    is allowed); a missing column also names the flags that choose columns (`columns`). `more`: other exception
    classes that mean bad input."""
    from zoo import assets
    from zoo import datasets

    try:
        yield
    except datasets.MissingColumnError as e:
        sys.exit(f"Error: {e} Name the columns with {columns}.")
    except (datasets.DatasetError, assets.AssetError, *more) as e:
        sys.exit(f"Error: {e}")


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a CI runner's or a container's stop): raised as Ctrl-C is, so that `finally` blocks run
    (no hidden partial file is left) and the same line says what was kept."""


def _terminate(signum, frame):
    raise Terminated(f"signal {signum}")


def run(main, interrupted=lambda: "Interrupted."):
    """`app.run(main)`, quiet, its usage errors one line each; Ctrl-C and SIGTERM print `interrupted()` (what was
    kept, how to go on) instead of a traceback, and exit with status 130 or 143 as a shell reports them."""

    def quiet_main(argv):
        try:
            return main(argv)
        except app.UsageError as e:
            sys.exit(f"Error: {e} (--help lists the flags)")
        except KeyboardInterrupt as e:
            print(f"\n{interrupted()}", file=sys.stderr)
            sys.exit(143 if isinstance(e, Terminated) else 130)

    quiet()
    signal.signal(signal.SIGTERM, _terminate)
    app.run(quiet_main)
