"""Predictions for a file (`zoo.predictions.predict_file`, the `textzoo predict --input` of recipes.predict): its
formats, its rows and metrics, and every bad input. The model is a function here; the command on a real export is
in tests/test_export.py."""

import csv
import json

import numpy as np
import pytest

from zoo import datasets
from zoo import predictions

CLASSES = ["money", "sport"]


def keyword_model(texts):
    """P(sport) from the word "goal": a model whose every output is known."""
    sport = np.array([0.9 if "goal" in t else 0.2 for t in texts], np.float32)
    return np.stack([1 - sport, sport], axis=1)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_labelled_csv_to_csv_with_top_k_and_metrics(tmp_path):
    source = write(tmp_path / "tickets.csv", 'title,body,queue\nA goal,late winner,sport\nShares,"rose, then fell",money\n'
                                               'Goal?,no: shares,money\n')
    output = tmp_path / "scored.csv"
    summary = predictions.predict_file(keyword_model, CLASSES, source, output, text_columns=["title", "body"],
                                       label_column="queue", top_k=2, verbose=0)
    rows = list(csv.DictReader(output.open()))
    assert [r["line"] for r in rows] == ["2", "3", "4"]
    assert [r["label"] for r in rows] == ["sport", "money", "money"]  # "Goal?" is not "goal": case matters here.
    assert [r["true_label"] for r in rows] == ["sport", "money", "money"]
    assert float(rows[0]["probability:sport"]) == pytest.approx(0.9) and rows[0]["top2_label"] == "money"
    assert summary["texts"] == 3 and summary["accuracy"] == 1.0
    metrics = json.loads(predictions.metrics_file(output).read_text())
    assert metrics["confusion_matrix"] == [[2, 0], [0, 1]] and metrics["class_names"] == CLASSES
    assert "money" in predictions.confusion_table(metrics["confusion_matrix"], CLASSES)


def test_text_file_one_per_line_to_jsonl_unlabelled(tmp_path):
    source = write(tmp_path / "texts.txt", "a goal\n\n  \nshares fell\n")
    output = tmp_path / "out.jsonl"
    summary = predictions.predict_file(keyword_model, CLASSES, source, output, verbose=0)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["line"], r["label"]) for r in rows] == [(1, "sport"), (4, "money")]
    assert "true_label" not in rows[0] and "accuracy" not in summary
    assert not predictions.metrics_file(output).exists()


def test_a_table_without_the_label_column_is_scored_without_metrics(tmp_path):
    source = write(tmp_path / "new.jsonl", '{"text": "a goal"}\n{"text": "shares"}\n')
    summary = predictions.predict_file(keyword_model, CLASSES, source, tmp_path / "out.jsonl", verbose=0)
    assert summary["texts"] == 2 and "accuracy" not in summary


@pytest.mark.parametrize("content, columns, message", [
    ("body,label\nx,sport\n", {}, "missing column 'text'. Columns present: ['body', 'label']"),
    ("text,label\nx,sport\ny,cooking\n", {}, "new.csv:3: label 'cooking' is not in the class set ['money', 'sport'] "
                                             "(the model's classes)"),
    ("text,label\n", {}, "new.csv: no records."),
    ("", {}, "new.csv: the file is empty."),
])
def test_bad_input_files_name_the_line_and_what_is_allowed(tmp_path, content, columns, message):
    source = write(tmp_path / "new.csv", content)
    with pytest.raises(datasets.DatasetError) as error:
        predictions.predict_file(keyword_model, CLASSES, source, tmp_path / "out.csv", verbose=0, **columns)
    assert message in str(error.value)
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_column_is_its_own_error(tmp_path):
    source = write(tmp_path / "new.csv", "body\nx\n")
    with pytest.raises(datasets.MissingColumnError):
        predictions.predict_file(keyword_model, CLASSES, source, tmp_path / "out.csv", verbose=0)


def test_outputs_that_would_lose_data_or_cannot_be_written_are_refused(tmp_path):
    source = write(tmp_path / "new.csv", "text\na goal\n")
    existing = write(tmp_path / "scored.csv", "keep me")
    for output, message in ((existing, "exists; pass --overwrite to replace it"),
                            (source, "is the input file"),
                            (tmp_path / "scored.xlsx", "unknown format '.xlsx'. Allowed: .jsonl, .csv"),
                            (tmp_path / "missing" / "scored.csv", "does not exist")):
        with pytest.raises(predictions.PredictionsError, match=message):
            predictions.predict_file(keyword_model, CLASSES, source, output, verbose=0)
    assert existing.read_text() == "keep me"
    predictions.predict_file(keyword_model, CLASSES, source, existing, overwrite=True, verbose=0)
    assert existing.read_text().startswith("line,label,")
    with pytest.raises(predictions.PredictionsError, match=r"--top_k=3: allowed 1 to 2"):
        predictions.predict_file(keyword_model, CLASSES, source, tmp_path / "k.csv", top_k=3, verbose=0)


def test_an_interrupted_run_leaves_the_previous_output_and_no_partial_file(tmp_path):
    source = write(tmp_path / "new.txt", "\n".join(f"text {i}" for i in range(10)))
    output = write(tmp_path / "scored.jsonl", "previous\n")
    calls = []

    def interrupted(texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return keyword_model(texts)

    with pytest.raises(KeyboardInterrupt):
        predictions.predict_file(interrupted, CLASSES, source, output, chunk_size=4, overwrite=True, verbose=0)
    assert output.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "scored.jsonl"]


def test_a_file_in_another_encoding_is_counted_by_text_and_read_with_its_encoding(tmp_path):
    source = tmp_path / "texts.txt"
    source.write_bytes("un but \xe0 la fin\nsans accent\nd\xe9j\xe0 vu\n".encode("latin-1"))
    summary = predictions.predict_file(keyword_model, CLASSES, source, tmp_path / "a.jsonl", verbose=0)
    assert summary["texts_with_undecodable_bytes"] == 2
    summary = predictions.predict_file(keyword_model, CLASSES, source, tmp_path / "b.jsonl", verbose=0,
                                       encoding="latin-1")
    assert summary["texts_with_undecodable_bytes"] == 0
