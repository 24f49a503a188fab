"""Resolves a dataset and prints, as JSON, its source, variant, split sizes and class counts.

    textzoo datasets --dataset=bbc_news
    textzoo datasets --dataset=custom --path=my.csv --text_columns=title,body --label_column=label
    textzoo datasets --all
"""

import json
import sys

from absl import app
from absl import flags

import zoo
from recipes import console
from zoo import datasets

_DATASET = flags.DEFINE_string("dataset", None, f"Dataset name. One of: {', '.join(datasets.names())}.")
_ALL = flags.DEFINE_bool("all", False, "Resolve every dataset whose data can be found, and report the others.")
_PATH = flags.DEFINE_string("path", None, "A local file or directory to read instead of the registered sources.")
_OFFLINE = flags.DEFINE_bool("offline", None, "Skip network sources (default: the TEXTZOO_OFFLINE variable).")
_SEED = flags.DEFINE_integer("seed", zoo.DEFAULT_SEED, "Seed of the splits.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Stratified cap on the size of each split.")
_BALANCE = flags.DEFINE_enum("balance", None, ["downsample", "class_weight"], "Class balancing of the train split.")
_CLEAN = flags.DEFINE_list("clean", [], "Cleaning steps: any of html, lower, punctuation.")
_TEXT_COLUMNS = flags.DEFINE_list("text_columns", None, "custom: the text columns, joined with a blank line.")
_LABEL_COLUMN = flags.DEFINE_string("label_column", None, "custom: the label column.")
_CLASS_NAMES = flags.DEFINE_list("class_names", None, "custom: the class set, in order (default: order of first "
                                 "appearance; integer labels are sorted).")
_HEADERS = flags.DEFINE_enum("headers", None, list(datasets.EMAIL_HEADER_MODES),
                             "spam_assassin: which email headers to keep (default: subject).")


def reader_options():
    """The reader options given by flag (only those set), shared with the training script."""
    options = {}
    for key, flag in (("text_columns", _TEXT_COLUMNS), ("label_column", _LABEL_COLUMN),
                      ("class_names", _CLASS_NAMES), ("headers", _HEADERS)):
        if flag.value is not None:
            options[key] = flag.value
    return options


def main(argv):
    del argv
    if not _ALL.value and not _DATASET.value:
        raise app.UsageError(f"Pass --dataset=NAME (one of: {', '.join(datasets.names())}) or --all.")
    names = datasets.names() if _ALL.value else [_DATASET.value]
    failed = False
    for name in names:
        try:
            dataset = datasets.load(
                name, path=_PATH.value, offline=_OFFLINE.value, seed=_SEED.value, max_examples=_MAX_EXAMPLES.value,
                balance=_BALANCE.value, clean=_CLEAN.value, **reader_options())
            print(json.dumps(dataset.summary(), indent=2))
        except Exception as e:  # Report and go on with --all; the exit status says something failed.
            failed = True
            print(json.dumps({"dataset": name, "error": f"{type(e).__name__}: {e}"}, indent=2))
            if not _ALL.value:
                print(f"error: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    console.run(main)
