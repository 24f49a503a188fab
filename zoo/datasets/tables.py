"""Datasets as users bring them: CSV, TSV, JSON or JSONL files (`read_table`), and the GitHub issues layout. Every
bad file stops with one line naming the file, the line, what was received and what is allowed."""

import codecs
import csv
import decimal
import json
import logging
import os
import pathlib
import re
import sys


from zoo import text as text_lib
from zoo.datasets.base import DatasetError
from zoo.datasets.base import MissingColumnError
from zoo.datasets.base import RawData


_TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
_TEXT_SUFFIXES = (".txt",)
_CSV_RULES = ("a field holding the delimiter, a quote or a line break is wrapped in double quotes, and a quote "
              "inside it is doubled (\"\")")
# Fields are read whole however long (the csv module refuses those over 128 KiB by default); each text is then cut
# at the model's input limit (`text_lib.cut_text`).
csv.field_size_limit(sys.maxsize)
# How much of a file's start is looked at to tell a text file from a binary one, and its line ends.
_SNIFF_BYTES = 64 * 1024


def _binary_reason(head, encoding):
    """Why the bytes a file starts with are not a text file in `encoding`, or None."""
    for magic, what in ((b"PK\x03\x04", "a zip archive (an Excel .xlsx is one: save the sheet as CSV)"),
                        (b"\x1f\x8b", "gzip-compressed"), (b"%PDF", "a PDF document"),
                        (b"\xd0\xcf\x11\xe0", "an old Office document (.xls, .doc: save the sheet as CSV)")):
        if head.startswith(magic):
            return what
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return None
    sample = head[:8192]
    # NUL and other control bytes, which no text encoding but UTF-16/32 writes (tab, line ends, form feed and escape
    # are text). A stray NUL in a field is text with a NUL; a tenth of them is not text.
    control = sum(sample.count(bytes([b])) for b in (*range(0, 9), 11, *range(14, 27), *range(28, 32)))
    if sample and control > len(sample) // 10:
        low = sample[0::2]  # UTF-16LE text of Latin letters: every other byte printable, the others NUL.
        utf16 = sample.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            sample[1::2].count(0) > len(sample) // 4 and sum(32 <= b < 127 or b in (9, 10, 13) for b in low)
            > 0.9 * len(low))
        return ("UTF-16 text: pass encoding=utf-16" if utf16
                else f"{control} of its first {len(sample)} bytes are control bytes such as NUL")
    return None


def _open(path, decoder):
    """The file at `path` as a text stream (`DecodeCounter.open`): records end at \n (a \r\n ends as \n does, the
    \r going with the line end), or at \r in a file with no \n (old Mac line ends); a form feed, U+2028 or a lone
    \r inside a record is part of it. An empty or binary file is refused, naming it."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip() and os.path.getsize(path) <= _SNIFF_BYTES:
        raise DatasetError(f"{path}: the file is empty.")
    reason = _binary_reason(head, decoder.encoding)
    if reason:
        raise DatasetError(f"{path}: not a text file ({reason}). Allowed: CSV, TSV, JSON, JSONL or .txt text in "
                           f"{decoder.encoding} (another encoding: encoding=..., --encoding for predict).")
    return decoder.open(path, newline="\r" if b"\n" not in head and b"\r" in head else "\n")


def _line_content(line):
    """A line of a stream of `_open` without its line end."""
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def _unique_keys(where):
    """A json `object_pairs_hook` that refuses an object with a key twice (json keeps the last without a word)."""
    def pairs_to_dict(pairs):
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise _RepeatedKey(f"{where}: the key {repeated[0]!r} appears twice in one object; which value is meant "
                               "is not clear. Keep one.")
        return dict(pairs)
    return pairs_to_dict


class _RepeatedKey(Exception):
    pass


def _json_value(text, where):
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(where))
    except _RepeatedKey as e:
        raise DatasetError(str(e))
    except ValueError as e:
        raise DatasetError(f"{where}: invalid JSON ({e}).")


def _records(path, stream):
    """Yields (line_number, dict) from a table file's stream (`_open`)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from _csv_records(path, stream, "," if suffix == ".csv" else "\t")
        return
    first = stream.read(1)
    while first and first.isspace():
        first = stream.read(1)
    if suffix == ".json" and first == "[":
        rows = _json_value(first + stream.read(), str(path))
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: record {i} is not an object.")
            yield i, row
        return
    stream.seek(0)
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        row = _json_value(line, f"{path}:{line_number}")
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{line_number}: expected a JSON object, received {type(row).__name__}.")
        yield line_number, row


def _check_header(path, header):
    """A header whose columns are found by name: none given twice (the last would win without a word)."""
    lowered = [h.strip().lower() for h in header]
    repeated = sorted({h for h in lowered if lowered.count(h) > 1})
    if repeated:
        raise DatasetError(f"{path}:1: the header {header} names the column {repeated[0]!r} more than once (names are "
                           "matched without regard to case); which one is meant is not clear. Rename one.")


def _csv_records(path, stream, delimiter):
    """Rows of a CSV/TSV as dicts, strictly: a quote left open or a row with the wrong number of fields is an error
    naming the line where the row starts (the lenient default reads an open quote to the end of the file and turns
    every row after it into one text); so is a row that repeats the header (files joined with their headers)."""
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    row_start = 1  # The line the row being read starts on.
    try:
        header = next(reader, None)
        if header is None:
            return
        _check_header(path, header)
        row_start = reader.line_num + 1
        for fields in reader:
            if fields == header:
                raise DatasetError(f"{path}:{row_start}: this row repeats the header {header} (files joined with "
                                   "their headers?). Remove it: every row after the first is a record.")
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


def _read_records(path, decoder):
    """Yields (line_number, dict) from a CSV, TSV, JSON (list of objects) or JSONL file, read as a stream."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        raise DatasetError(f"{path}: unknown file type {suffix!r}. Allowed: {', '.join(_TABLE_SUFFIXES)}.")
    with _open(path, decoder) as stream:
        yield from _records(path, stream)


def _column(row, name, path, line_number):
    """Case-insensitive column lookup with an error listing the columns present."""
    if name in row:
        return row[name]
    lowered = {str(k).lower(): k for k in row}
    if name.lower() in lowered:
        return row[lowered[name.lower()]]
    raise MissingColumnError(f"{path}:{line_number}: missing column {name!r}. Columns present: "
                             f"{sorted(map(str, row))}.")


def _number(key):
    """The number a label spells (1, 1.0, 01 and 1e0 alike), or None: a spreadsheet writes the labels of one column
    as 1 in one export and 1.0 in another."""
    try:
        number = decimal.Decimal(key)
    except (decimal.InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _numeric_name(number):
    return str(int(number)) if number == number.to_integral_value() else str(number.normalize())


class _ClassIndex:
    """Label values (strings or numbers, as read) -> class ids, for a known class set: a label is a class name;
    else a number equal to one class name's number (1.0 for the class "1"); else an integer class id below the
    number of classes."""

    def __init__(self, class_names, origin=""):
        self.class_names = [str(c) for c in class_names]
        self.origin = origin
        self._index = {c: i for i, c in enumerate(self.class_names)}
        numbers = {}
        for i, name in enumerate(self.class_names):
            number = _number(name)
            if number is not None:
                numbers.setdefault(number, []).append(i)
        self._numbers = {n: ids[0] for n, ids in numbers.items() if len(ids) == 1}

    def id(self, where, value):
        key = str(value).strip()
        if key in self._index:
            return self._index[key]
        number = _number(key)
        if number is not None and number in self._numbers:
            return self._numbers[number]
        if number is not None and number == number.to_integral_value() and 0 <= number < len(self.class_names):
            return int(number)
        raise DatasetError(f"{where}: label {value!r} is not in the class set {self.class_names}{self.origin}.")


def _label_ids(values, class_names, origin=""):
    """Maps label values ((where: "file:line", value), strings or numbers) to ids: (class names, ids). The classes
    are `class_names`, else the labels in order of first appearance (numerically sorted where every label is a
    number); labels that spell one number (1 and 1.0) are one class, and a warning names the spellings merged."""
    if class_names:
        index = _ClassIndex(class_names, origin)
        return index.class_names, [index.id(where, value) for where, value in values]
    keys = [str(v).strip() for _, v in values]
    for (where, _), key in zip(values, keys):
        if not key:
            raise DatasetError(f"{where}: empty label.")
    numbers = [_number(k) for k in keys]
    spellings = {}
    for key, number in zip(keys, numbers):
        spellings.setdefault(key if number is None else number, {})[key] = None
    merged = {k: list(s) for k, s in spellings.items() if len(s) > 1}
    if merged:
        logging.warning("Labels that spell the same number are one class: %s (a spreadsheet export writes 1 as 1.0; "
                        "give class_names to set the classes yourself).",
                        "; ".join(" and ".join(repr(x) for x in s) for s in merged.values()))
    if all(n is not None for n in numbers):
        found = sorted(spellings)
        names = [_numeric_name(n) for n in found]
        position = {n: i for i, n in enumerate(found)}
        return names, [position[n] for n in numbers]
    groups = list(spellings)
    names = [next(iter(spellings[g])) for g in groups]
    position = {g: i for i, g in enumerate(groups)}
    return names, [position[k if n is None else n] for k, n in zip(keys, numbers)]


# File and directory names that say nothing of the data: the directory above names it.
_GENERIC_STEMS = {"train", "training", "data", "dataset", "all", "full", "labelled", "labeled"}


def data_name(path):
    """A name for your data, from its file or directory name (the directory's, where the file is train.csv or the
    like): lower-case letters, digits and '_'. Recipes, run directories, exports and MLflow runs of your data are
    named with it."""
    path = pathlib.Path(path)
    stem = path.stem if path.suffix else path.name
    if stem.lower() in _GENERIC_STEMS and path.parent.name:
        stem = path.parent.name
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "custom"


_SPLIT_FILE_STEMS = {"train": ("train", "training"), "validation": ("validation", "valid", "val", "dev"),
                     "test": ("test",)}


def _split_files(path, validation_path=None, test_path=None):
    """{split: [files]} for a table dataset: one file (split later); a directory of train/validation/test files; a
    directory of other table files, read as one dataset (split later: several exports of the same data); or a train
    file with the validation and test files given beside it."""
    path = pathlib.Path(path)
    files = {}
    if path.is_dir():
        tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES)
        for split, stems in _SPLIT_FILE_STEMS.items():
            found = [p for p in tables if p.stem.lower() in stems]
            if len(found) > 1:
                raise DatasetError(f"{path}: several {split} files {[p.name for p in found]}; keep one.")
            if found:
                files[split] = found
        if files and "train" not in files:
            raise DatasetError(
                f"{path}: {[p.name for f in files.values() for p in f]} but no train file in this directory. Allowed: "
                f"train, and optionally validation (or valid, val, dev) and test, each {'/'.join(_TABLE_SUFFIXES)}; "
                "or table files none of which is named after a split, read as one dataset.")
        if not files:
            if not tables:
                raise DatasetError(f"{path}: no {'/'.join(_TABLE_SUFFIXES)} file in this directory.")
            files["train"] = tables
    else:
        files["train"] = [path]
    for split, given in (("validation", validation_path), ("test", test_path)):
        if given is None:
            continue
        if split in files:
            raise DatasetError(f"{split}_path={given} given, but {path} already has the {split} file "
                               f"{files[split].name}; keep one.")
        given = pathlib.Path(given).expanduser()
        if not given.is_file():
            raise DatasetError(f"{split}_path={given}: no such file.")
        files[split] = [given]
    return files


def _decoder(encoding):
    try:
        return text_lib.DecodeCounter(encoding)
    except ValueError as e:
        raise DatasetError(str(e))


def _column_list(text_columns):
    """Text columns as a list: a sequence of names, or one string of names separated by commas."""
    return [c for c in text_columns.split(",") if c] if isinstance(text_columns, str) else list(text_columns)


def _joined_text(row, text_columns, path, line_number):
    parts = [_column(row, c, path, line_number) for c in text_columns]
    return text_lib.cut_text("\n\n".join(str(p) for p in parts if p not in (None, "")))


def _label_value(row, label_column, path, line_number):
    value = _column(row, label_column, path, line_number)
    if value is None or not str(value).strip():
        raise DatasetError(f"{path}:{line_number}: empty label in column {label_column!r}.")
    return value


def _read_table_files(paths, text_columns, label_column, decoder):
    """The texts and (where, label value) of `paths`, one after the other."""
    texts, values = [], []
    for path in paths:
        start = len(texts)
        for line_number, row in _read_records(path, decoder):
            where = f"{path}:{line_number}"
            texts.append(_joined_text(row, text_columns, path, line_number))
            decoder.count_text(texts[-1], where)
            values.append((where, _label_value(row, label_column, path, line_number)))
        if len(texts) == start:
            raise DatasetError(f"{path}: no records.")
    return texts, values


def read_table(path, text_columns=("text",), label_column="label", class_names=None, variant=None,
               validation_path=None, test_path=None, encoding="utf-8"):
    """CSV/TSV/JSON/JSONL data: several text columns are joined with a blank line; labels strings or ints.

    Args:
        path: a file (split 70/10/20 later); a directory with `train.<ext>` and optionally `validation.<ext>`
            (or valid, val, dev) and `test.<ext>`; or a directory of table files none named after a split, read in
            name order as one dataset (split later).
        validation_path, test_path: files to use as those splits instead of splitting them off the train data.
        class_names: the class set, in order; default: the labels of the train data, in order of first appearance
            (sorted by value where all are numbers; labels spelling one number are one class). Validation and test
            labels must be in it.
        encoding: the files' text encoding (a Python codec name); bytes it cannot read become U+FFFD, counted.
    """
    text_columns = _column_list(text_columns)
    files = _split_files(path, validation_path, test_path)
    decoder = _decoder(encoding)
    read = {split: _read_table_files(paths, text_columns, label_column, decoder) for split, paths in files.items()}
    names, train_ids = _label_ids(read["train"][1], class_names)
    splits = {"train": (read["train"][0], train_ids)}
    for split in ("validation", "test"):
        if split in read:
            texts, values = read[split]
            train_names = "+".join(p.name for p in files["train"])
            splits[split] = (texts, _label_ids(values, names,
                                               "" if class_names else f" (the labels of {train_names})")[1])
    if len(splits) == 1:
        splits = {"all": splits["train"]}
    return RawData(splits, names, variant or "file:" + "+".join(p.name for f in files.values() for p in f),
                   decoder.report())


class TextFile:
    """A file of texts to classify, read as a stream: memory does not grow with its length. Reading it
    (`TextFile(...)`) checks every record and counts them, before any is classified; `records()` reads them again.

    A CSV, TSV, JSON or JSONL file is read as for training (several text columns joined with a blank line; a JSON
    array is read whole); it is labelled where its first record has `label_column`, and then every record needs a
    label of `class_names`. A .txt file holds one text per line (a line ends at \n or \r\n; blank lines are
    skipped) and no labels. Each text keeps the number of the line it starts on.

    Args:
        path: the file.
        text_columns, label_column: its columns (a table).
        class_names: the model's classes, which the labels must be.
        encoding: the file's text encoding; bytes it cannot read become U+FFFD, counted in `decoding`.
    """

    def __init__(self, path, class_names, text_columns=("text",), label_column="label", encoding="utf-8"):
        self.path = pathlib.Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _TABLE_SUFFIXES + _TEXT_SUFFIXES:
            raise DatasetError(f"{self.path}: unknown file type {suffix!r}. Allowed: "
                               f"{', '.join(_TABLE_SUFFIXES + _TEXT_SUFFIXES)}.")
        self._text = suffix in _TEXT_SUFFIXES
        self._text_columns = _column_list(text_columns)
        self._label_column = label_column
        self._classes = _ClassIndex(class_names, " (the model's classes)")
        self.encoding = encoding
        self.labelled = False if self._text else None  # A table's: whether its first record has the label column.
        decoder = _decoder(encoding)
        self.count = sum(1 for _ in self._read(decoder))
        if not self.count:
            raise DatasetError(f"{self.path}: no text (one text per line, blank lines skipped)." if self._text
                               else f"{self.path}: no records.")
        self.decoding = decoder.report()

    def records(self):
        """Yields (line number, text, label id or None) for each text, in the file's order."""
        return self._read(_decoder(self.encoding))

    def _read(self, decoder):
        if self._text:
            with _open(self.path, decoder) as stream:
                for line_number, line in enumerate(stream, start=1):
                    text = _line_content(line)
                    if text.strip():
                        text = text_lib.cut_text(text)
                        decoder.count_text(text, f"{self.path}:{line_number}")
                        yield line_number, text, None
            return
        for line_number, row in _read_records(self.path, decoder):
            where = f"{self.path}:{line_number}"
            if self.labelled is None:
                self.labelled = self._label_column is not None and self._label_column.lower() in {
                    str(k).lower() for k in row}
            text = _joined_text(row, self._text_columns, self.path, line_number)
            decoder.count_text(text, where)
            label = None
            if self.labelled:
                label = self._classes.id(where, _label_value(row, self._label_column, self.path, line_number))
            yield line_number, text, label


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


