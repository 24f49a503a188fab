"""Files as users' tools write them: spreadsheet labels, joined exports, line ends of every kind, byte-order marks,
binary files, options spelled wrong. Each is read as the user meant or refused in one line naming the file (issue
51); each of these failed on the readers before it."""

import json
import zipfile

import numpy as np
import pytest

from zoo import datasets
from zoo import predictions

CLASSES = ["money", "sport"]


def rows(n, label=lambda i: "sport" if i % 2 else "money"):
    return [(f"text number {i} {'goal' if i % 2 else 'shares'}", label(i)) for i in range(n)]


def write_csv(path, data, header="text,label", newline="\n", encoding="utf-8"):
    path.write_bytes((header + newline + "".join(f"{t},{y}{newline}" for t, y in data)).encode(encoding))
    return path


def all_texts(dataset):
    return [t for split in dataset.splits.values() for t in split.texts]


def test_labels_that_spell_one_number_are_one_class(tmp_path, caplog):
    path = write_csv(tmp_path / "export.csv", rows(40, lambda i: ["1", "1.0", "0", "0.0"][i % 4]))
    with caplog.at_level("WARNING"):
        dataset = datasets.load("custom", path=str(path))
    assert dataset.class_names == ["0", "1"]
    assert "'1' and '1.0'" in caplog.text and "'0' and '0.0'" in caplog.text
    counts = dataset.summary()["found"]["all"]["class_counts"]
    assert counts == {"0": 20, "1": 20}


def test_a_number_matches_the_class_it_spells_in_other_files(tmp_path):
    write_csv(tmp_path / "train.csv", rows(40, lambda i: str(i % 2)))
    write_csv(tmp_path / "test.csv", rows(10, lambda i: f"{i % 2}.0"))
    dataset = datasets.load("custom", path=str(tmp_path))
    assert dataset.class_names == ["0", "1"] and len(dataset.splits["test"]) == 10
    write_csv(tmp_path / "test.csv", rows(10, lambda i: f"{i % 2 + 0.5}"))
    with pytest.raises(datasets.DatasetError, match=r"test.csv:2: label '0.5' is not in the class set \['0', '1'\]"):
        datasets.load("custom", path=str(tmp_path))


def test_a_row_repeating_the_header_is_refused_with_its_line(tmp_path):
    path = tmp_path / "joined.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows(20)) + "text,label\n"
                    + "".join(f"{t},{y}\n" for t, y in rows(20)))
    with pytest.raises(datasets.DatasetError, match=r"joined.csv:22: this row repeats the header"):
        datasets.load("custom", path=str(path))


def test_a_column_named_twice_is_refused(tmp_path):
    path = write_csv(tmp_path / "two.csv", [(f"{t},other", y) for t, y in rows(20)], header="text,Text,label")
    with pytest.raises(datasets.DatasetError, match=r"two.csv:1: the header .* names the column 'text' more than "
                                                    r"once"):
        datasets.load("custom", path=str(path))
    path = tmp_path / "two.jsonl"
    path.write_text('{"text": "a goal", "label": "sport"}\n{"text": "x", "label": "a", "label": "b"}\n')
    with pytest.raises(datasets.DatasetError, match=r"two.jsonl:2: the key 'label' appears twice"):
        datasets.load("custom", path=str(path))


# Characters that Python's str.splitlines ends a line at but that are text inside a record.
IN_RECORD = ["\f", "\u2028", "\u2029", "\x85", "\x1c", "\r", "\v"]


def test_text_file_lines_end_at_newline_only(tmp_path):
    texts = [f"text {i} with {c!r} inside:{c}here" for i, c in enumerate(IN_RECORD)]
    path = tmp_path / "texts.txt"
    path.write_bytes("\n".join(texts[:3]).encode() + b"\r\n" + "\n".join(texts[3:]).encode() + b"\n")
    source = datasets.TextFile(path, CLASSES)
    read = list(source.records())
    assert [line for line, _, _ in read] == list(range(1, len(texts) + 1))
    assert [text for _, text, _ in read] == texts
    assert source.count == len(texts) and source.labelled is False


def test_a_file_with_old_mac_line_ends_is_read_as_lines(tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"first text\rsecond text\r\rfourth text\r")
    assert [(n, t) for n, t, _ in datasets.TextFile(path, CLASSES).records()] == [
        (1, "first text"), (2, "second text"), (4, "fourth text")]
    table = write_csv(tmp_path / "mac.csv", rows(20), newline="\r")
    assert len(all_texts(datasets.load("custom", path=str(table)))) == 20


def test_records_keep_every_character_that_is_not_a_line_end(tmp_path):
    texts = [f"record {i}:{c}end" for i, c in enumerate(IN_RECORD * 3)]
    labels = ["sport" if i % 2 else "money" for i in range(len(texts))]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                             for t, y in zip(texts, labels)), encoding="utf-8")
    csv_file = tmp_path / "data.csv"
    csv_file.write_text("text,label\r\n" + "".join(f'"{t}",{y}\r\n' for t, y in zip(texts, labels)),
                        encoding="utf-8", newline="")
    for path in (jsonl, csv_file):
        assert sorted(all_texts(datasets.load("custom", path=str(path)))) == sorted(texts)
        read = list(datasets.TextFile(path, CLASSES).records())
        assert [t for _, t, _ in read] == texts and [CLASSES[y] for _, _, y in read] == labels


def test_a_byte_order_mark_is_read_as_utf8(tmp_path):
    path = write_csv(tmp_path / "excel.csv", rows(20), encoding="utf-8-sig")
    dataset = datasets.load("custom", path=str(path))
    assert dataset.class_names == ["money", "sport"]
    assert all(not t.startswith("\ufeff") for t in all_texts(dataset))
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes("\ufeff".encode() + b'{"text": "a goal", "label": "sport"}\n')
    assert [t for _, t, _ in datasets.TextFile(jsonl, CLASSES).records()] == ["a goal"]


def test_a_binary_file_is_not_a_text_file(tmp_path):
    archive = tmp_path / "sheet.csv"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>" * 100)
    with pytest.raises(datasets.DatasetError, match=r"sheet.csv: not a text file \(a zip archive \(an Excel .xlsx"):
        datasets.load("custom", path=str(archive))
    blob = tmp_path / "weights.jsonl"
    blob.write_bytes(np.arange(5000, dtype=np.int32).tobytes())
    with pytest.raises(datasets.DatasetError, match=r"weights.jsonl: not a text file \(\d+ of its first 8192 bytes"
                                                    r" are control bytes") as error:
        datasets.TextFile(blob, CLASSES)
    assert len(str(error.value)) < 300
    utf16 = write_csv(tmp_path / "utf16.csv", rows(20), encoding="utf-16")
    with pytest.raises(datasets.DatasetError, match=r"UTF-16 text: pass encoding=utf-16"):
        datasets.load("custom", path=str(utf16))
    assert len(all_texts(datasets.load("custom", path=str(utf16), encoding="utf-16"))) == 20
    one_nul = write_csv(tmp_path / "nul.csv", rows(20) + [("a text with a \x00 in it", "sport")])
    assert "a text with a \x00 in it" in all_texts(datasets.load("custom", path=str(one_nul)))


def test_a_lone_surrogate_in_json_becomes_a_replacement_character(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "half \\ud800 pair", "label": "sport"}\n')
    assert [t for _, t, _ in datasets.TextFile(path, CLASSES).records()] == ["half \ufffd\ufffd\ufffd pair"]


def test_a_misspelt_dataset_option_is_refused_before_reading(tmp_path):
    path = write_csv(tmp_path / "data.csv", rows(20))
    with pytest.raises(datasets.DatasetError, match=r"Unknown options \['label_col'\] for dataset 'custom'. "
                                                    r"Allowed: .*'label_column'"):
        datasets.read("custom", str(path), label_col="label")


def test_predictions_of_a_file_stream_and_number_every_line(tmp_path):
    """predict --input reads its file as a stream: each chunk is classified as it is read, and every input line
    gets one prediction under its own line number."""
    seen = []

    def model(texts):
        seen.append(len(texts))
        return np.tile([[0.25, 0.75]], (len(texts), 1)).astype(np.float32)

    path = tmp_path / "many.txt"
    lines = [f"line {i}\f" if i % 7 else "" for i in range(1, 2501)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    summary = predictions.predict_file(model, CLASSES, path, output, chunk_size=1000, verbose=0)
    written = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    expected = [i for i, text in enumerate(lines, start=1) if text]
    assert [r["line"] for r in written] == expected and summary["texts"] == len(expected)
    assert seen == [1000, 1000, len(expected) - 2000]


def test_overwriting_with_an_unlabelled_input_removes_the_old_metrics(tmp_path):
    def model(texts):
        return np.tile([[0.25, 0.75]], (len(texts), 1)).astype(np.float32)

    labelled = write_csv(tmp_path / "labelled.csv", rows(4))
    output = tmp_path / "scored.csv"
    predictions.predict_file(model, CLASSES, labelled, output, verbose=0)
    assert predictions.metrics_file(output).exists()
    unlabelled = tmp_path / "new.txt"
    unlabelled.write_text("a goal\n")
    predictions.predict_file(model, CLASSES, unlabelled, output, verbose=0, overwrite=True)
    assert not predictions.metrics_file(output).exists()


def test_caps_on_a_file_are_recorded(tmp_path):
    path = write_csv(tmp_path / "many.csv", rows(200))
    dataset = datasets.load("custom", path=str(path), max_examples={"train": 40, "validation": 10})
    assert dataset.stats["capped"] == {"train": {"available": 140, "used": 40},
                                       "validation": {"available": 20, "used": 10}}
    assert datasets.load("custom", path=str(path)).stats["capped"] == {}
