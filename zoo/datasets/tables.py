"""Datasets as users bring them: CSV, TSV, JSON or JSONL files (`read_table`), and the GitHub issues layout. Every
bad file stops with one line naming the file, the line, what was received and what is allowed."""

import csv
import json
import pathlib
import re


from zoo import text as text_lib
from zoo.datasets.base import DatasetError
from zoo.datasets.base import MissingColumnError
from zoo.datasets.base import READ_LIMIT_BYTES
from zoo.datasets.base import RawData


_TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
_CSV_RULES = ("a field holding the delimiter, a quote or a line break is wrapped in double quotes, and a quote "
              "inside it is doubled (\"\")")


def _read_records(path, decoder):
    """[(line_number, dict)] from a CSV, TSV, JSON (list of objects) or JSONL file, and whether bytes of it were
    replaced in decoding (its texts are counted then: `DecodeCounter.count_texts`)."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        raise DatasetError(f"{path}: unknown file type {suffix!r}. Allowed: {', '.join(_TABLE_SUFFIXES)}.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DatasetError(f"{path}: the file is empty.")
    content, replaced = decoder.decode_file(raw, where=str(path))
    return list(_records(path, suffix, content)), replaced


def _records(path, suffix, content):
    """Yields (line_number, dict) from a table file's decoded content."""
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
    csv.field_size_limit(max(csv.field_size_limit(), READ_LIMIT_BYTES))
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
    raise MissingColumnError(f"{path}:{line_number}: missing column {name!r}. Columns present: "
                             f"{sorted(map(str, row))}.")


def _label_ids(values, class_names, origin=""):
    """Maps label values ((where: "file:line", value), strings or integers) to ids; class order is `class_names` or
    order of first appearance."""
    if class_names:
        index = {str(c): i for i, c in enumerate(class_names)}
        ids = []
        for where, value in values:
            key = str(value).strip()
            if key not in index:
                if re.fullmatch(r"\d+", key) and int(key) < len(class_names):
                    ids.append(int(key))
                    continue
                raise DatasetError(
                    f"{where}: label {value!r} is not in the class set {list(class_names)}{origin}."
                )
            ids.append(index[key])
        return list(class_names), ids
    keys = [str(v).strip() for _, v in values]
    if all(re.fullmatch(r"\d+", k) for k in keys):
        found = sorted({int(k) for k in keys})
        names = [str(i) for i in found]
        return names, [found.index(int(k)) for k in keys]
    names = list(dict.fromkeys(keys))
    for (where, value), key in zip(values, keys):
        if not key:
            raise DatasetError(f"{where}: empty label.")
    return names, [names.index(k) for k in keys]


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


def _joined_text(row, text_columns, path, line_number):
    parts = [_column(row, c, path, line_number) for c in text_columns]
    return "\n\n".join(str(p) for p in parts if p not in (None, ""))


def _label_value(row, label_column, path, line_number):
    value = _column(row, label_column, path, line_number)
    if value is None or not str(value).strip():
        raise DatasetError(f"{path}:{line_number}: empty label in column {label_column!r}.")
    return value


def _read_table_files(paths, text_columns, label_column, decoder):
    """The texts and (where, label value) of `paths`, one after the other."""
    texts, values = [], []
    for path in paths:
        records, replaced = _read_records(path, decoder)
        start = len(texts)
        for line_number, row in records:
            texts.append(_joined_text(row, text_columns, path, line_number))
            values.append((f"{path}:{line_number}", _label_value(row, label_column, path, line_number)))
        if replaced:
            decoder.count_texts(texts[start:], where=str(path))
        if not records:
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
            (sorted numerically if all are integers). Validation and test labels must be in it.
        encoding: the files' text encoding (a Python codec name); bytes it cannot read become U+FFFD, counted.
    """
    if isinstance(text_columns, str):
        text_columns = [c for c in text_columns.split(",") if c]
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


_TEXT_SUFFIXES = (".txt",)


def read_texts(path, text_columns=("text",), label_column="label", class_names=None, encoding="utf-8"):
    """The texts of a file to classify, and their labels where it has them: (texts, label ids or None, line
    numbers). A CSV, TSV, JSON or JSONL file is read as for training (several text columns joined with a blank
    line); it is labelled where its first record has `label_column`, and then every record needs a label in
    `class_names`. A .txt file holds one text per line (blank lines skipped) and no labels."""
    path = pathlib.Path(path)
    if isinstance(text_columns, str):
        text_columns = [c for c in text_columns.split(",") if c]
    decoder = _decoder(encoding)
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        content, replaced = decoder.decode_file(path.read_bytes(), where=str(path))
        numbered = [(i, line) for i, line in enumerate(content.splitlines(), start=1) if line.strip()]
        if not numbered:
            raise DatasetError(f"{path}: no text (one text per line, blank lines skipped).")
        texts = [t for _, t in numbered]
        if replaced:
            decoder.count_texts(texts, where=str(path))
        return texts, None, [i for i, _ in numbered], decoder.report()
    if suffix not in _TABLE_SUFFIXES:
        raise DatasetError(f"{path}: unknown file type {suffix!r}. Allowed: "
                           f"{', '.join(_TABLE_SUFFIXES + _TEXT_SUFFIXES)}.")
    records, replaced = _read_records(path, decoder)
    if not records:
        raise DatasetError(f"{path}: no records.")
    first = {str(k).lower() for k in records[0][1]}
    labelled = label_column is not None and label_column.lower() in first
    texts, values = [], []
    for line_number, row in records:
        texts.append(_joined_text(row, text_columns, path, line_number))
        if labelled:
            values.append((f"{path}:{line_number}", _label_value(row, label_column, path, line_number)))
    ids = _label_ids(values, class_names, " (the model's classes)")[1] if labelled else None
    if replaced:
        decoder.count_texts(texts, where=str(path))
    return texts, ids, [n for n, _ in records], decoder.report()


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


