"""Predictions for a file of texts: read as for training (`zoo.datasets.TextFile`), classified in chunks with a
progress bar, written as JSON lines or CSV, and scored (`zoo.evaluation`) where the file has labels."""

import csv
import json
import os
import pathlib
import sys

import numpy as np

from zoo import datasets
from zoo import evaluation

OUTPUT_FORMATS = (".jsonl", ".csv")


class PredictionsError(ValueError):
    """An output the predictions cannot be written to; the message names it and what is allowed."""


def metrics_file(output_path):
    """Where the metrics of a labelled input go: beside the predictions, <name>.metrics.json."""
    output_path = pathlib.Path(output_path)
    return output_path.with_name(output_path.stem + ".metrics.json")


def confusion_table(matrix, class_names):
    """The confusion matrix as text: a row per true class, a column per predicted class."""
    corner = "true \\ predicted"
    width = max(len(c) for c in [*class_names, corner])
    cell = max(6, *(len(c) for c in class_names))
    lines = [corner.ljust(width) + "  " + " ".join(c.rjust(cell) for c in class_names)]
    lines += [name.ljust(width) + "  " + " ".join(str(n).rjust(cell) for n in row)
              for name, row in zip(class_names, matrix)]
    return "\n".join(lines)


def check_output(input_path, output_path, overwrite=False):
    """Refuses an output that would lose data or cannot be written: the input itself, an existing file (unless
    `overwrite`), a format other than OUTPUT_FORMATS, a missing directory."""
    output_path = pathlib.Path(output_path)
    if output_path.suffix.lower() not in OUTPUT_FORMATS:
        raise PredictionsError(f"--output={output_path}: unknown format {output_path.suffix!r}. Allowed: "
                               f"{', '.join(OUTPUT_FORMATS)}.")
    if output_path.exists() and output_path.resolve() == pathlib.Path(input_path).resolve():
        raise PredictionsError(f"--output={output_path} is the input file; write the predictions elsewhere.")
    for existing in (output_path, metrics_file(output_path)):
        if existing.exists() and not overwrite:
            raise PredictionsError(f"--output={output_path}: {existing} exists; pass --overwrite to replace it.")
    if not output_path.parent.is_dir():
        raise PredictionsError(f"--output={output_path}: the directory {output_path.parent} does not exist.")
    return output_path


def records(probabilities, class_names, lines=None, labels=None, top_k=None):
    """One prediction record per row of `probabilities` ([n, classes]): its label and class probabilities, with
    its source line, top k and true label where given (what `predict_file` writes, `textzoo predict` prints)."""
    for i, row in enumerate(np.asarray(probabilities)):
        ranked = np.argsort(-row, kind="stable")
        record = {"label": class_names[int(ranked[0])],
                  "probabilities": {c: round(float(p), 6) for c, p in zip(class_names, row)}}
        if lines is not None:
            record = {"line": int(lines[i]), **record}
        if top_k:
            record["top_k"] = [{"label": class_names[int(j)], "probability": round(float(row[j]), 6)}
                               for j in ranked[:top_k]]
        if labels is not None:
            record["true_label"] = class_names[int(labels[i])]
        yield record


class _Writer:
    """JSON lines (one object per text), or CSV (a column per class probability, `top<k>_label` and
    `top<k>_probability` columns for the top k)."""

    def __init__(self, file, suffix, class_names, top_k, labelled):
        self._file, self._csv = file, None
        if suffix == ".csv":
            columns = (["line", "label"] + [f"probability:{c}" for c in class_names]
                       + [f"top{k}_{part}" for k in range(1, (top_k or 0) + 1) for part in ("label", "probability")]
                       + (["true_label"] if labelled else []))
            self._csv = csv.DictWriter(file, fieldnames=columns)
            self._csv.writeheader()

    def write(self, record):
        if self._csv is None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        flat = {"line": record["line"], "label": record["label"]}
        flat.update({f"probability:{c}": p for c, p in record["probabilities"].items()})
        for k, entry in enumerate(record.get("top_k", ()), start=1):
            flat[f"top{k}_label"], flat[f"top{k}_probability"] = entry["label"], entry["probability"]
        if "true_label" in record:
            flat["true_label"] = record["true_label"]
        self._csv.writerow(flat)


def _chunks(records, size):
    """Lists of up to `size` of `records` (itertools.batched is Python 3.12's)."""
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_file(predict_proba, class_names, input_path, output_path, text_columns=("text",), label_column="label",
                 top_k=None, chunk_size=1024, verbose="auto", overwrite=False, encoding="utf-8"):
    """Classifies every text of `input_path` with `predict_proba` (texts -> [n, classes] probabilities, in
    `class_names` order) and writes one row per text to `output_path` (.jsonl or .csv), replaced only when
    complete; `encoding` is the file's (bytes it cannot read become U+FFFD, counted in the summary). Returns a
    summary: the counts, the output, and where the file has labels, the metrics (also written beside the output
    as <name>.metrics.json; an earlier one is removed where this input has none).

    The file is read twice as a stream (`zoo.datasets.TextFile`: checked whole first, then classified
    `chunk_size` texts at a time), so memory does not grow with its length, but for a labelled file's label and
    probabilities (4 bytes per class and text), which its metrics need."""
    output_path = check_output(input_path, output_path, overwrite)
    source = datasets.TextFile(input_path, class_names, text_columns, label_column, encoding)
    if top_k is not None and not 1 <= top_k <= len(class_names):
        raise PredictionsError(f"--top_k={top_k}: allowed 1 to {len(class_names)} (the model's classes).")
    import keras  # Deferred: the reader above fails fast on a bad file.

    shown = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else verbose
    progress = keras.utils.Progbar(source.count, verbose=shown, unit_name="text") if shown else None
    # Written beside the output and renamed when complete: an interrupted run leaves no partial predictions file.
    partial = output_path.with_name(f".{output_path.name}.partial")
    labels, probabilities, done = [], [], 0
    try:
        with open(partial, "w", encoding="utf-8", newline="") as f:
            writer = _Writer(f, output_path.suffix.lower(), class_names, top_k, source.labelled)
            for chunk in _chunks(source.records(), chunk_size):
                lines, texts, chunk_labels = zip(*chunk)
                chunk_probabilities = np.asarray(predict_proba(list(texts)), dtype=np.float32)
                for record in records(chunk_probabilities, class_names, lines,
                                      chunk_labels if source.labelled else None, top_k):
                    writer.write(record)
                if source.labelled:
                    labels.extend(chunk_labels)
                    probabilities.append(chunk_probabilities)
                done += len(chunk)
                if progress:
                    progress.update(done)
        os.replace(partial, output_path)
    finally:
        partial.unlink(missing_ok=True)
    summary = {"input": str(input_path), "output": str(output_path), "texts": done,
               "texts_with_undecodable_bytes": source.decoding["texts_with_undecodable_bytes"]}
    metrics_path = metrics_file(output_path)
    if not source.labelled:
        metrics_path.unlink(missing_ok=True)  # An earlier run's, which --overwrite replaces: not this input's.
        return summary
    labels, probabilities = np.asarray(labels, dtype=np.int64), np.concatenate(probabilities)
    metrics = evaluation.compute_metrics(labels, probabilities, class_names)
    metrics_path.write_text(json.dumps({"class_names": class_names, **metrics}, indent=2))
    summary.update(accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"], metrics=str(metrics_path),
                   report=evaluation.report_text(labels, probabilities, class_names, metrics),
                   confusion_matrix=metrics["confusion_matrix"])
    return summary
