"""The texts a command classifies: `--text` (repeatable), else one per line of standard input. Shared by
`recipes.predict` and `recipes.explain`."""

import sys

from absl import app
from absl import flags

TEXT = flags.DEFINE_multi_string("text", None, "A text (repeatable). With none, reads one per line from standard "
                                 "input.")


def texts(argv):
    """The texts given, or a usage error naming what was received instead."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}. Pass texts with --text=...")
    given = TEXT.value or [line.rstrip("\n") for line in sys.stdin]
    if not given:
        raise app.UsageError("No text given: pass --text=... (repeatable) or lines on standard input.")
    return given
