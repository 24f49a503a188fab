"""Dataset readers, de-duplication, splits and bad-data errors, on small files the tests write."""

import json

import numpy as np
import pytest

from zoo import datasets
from zoo import text as text_lib


def write_imdb(root, n=6):
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}_7.txt").write_text(f"{split} {label} review number {i}<br />fine")
    (root / "aclImdb" / "train" / "unsup").mkdir()
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabelled, ignored")
    return root / "aclImdb"


def test_imdb_reads_aclimdb_layout_and_ignores_unsup(tmp_path):
    root = write_imdb(tmp_path)
    dataset = datasets.load("imdb", path=str(root))
    assert dataset.class_names == ["neg", "pos"]
    found = dataset.summary()["found"]
    assert found["train"]["size"] == 12 and found["test"]["size"] == 12
    assert found["test"]["class_counts"] == {"neg": 6, "pos": 6}
    all_texts = sum((s.texts for s in dataset.splits.values()), [])
    assert not any("ignored" in t for t in all_texts)
    test = dataset.splits["test"]
    for text, label in zip(test.texts, test.labels):
        assert text.split()[1] == dataset.class_names[label]
    assert dataset.source["kind"] == "local" and dataset.variant == "aclImdb-v1"


def test_imdb_html_cleaning_option(tmp_path):
    dataset = datasets.load("imdb", path=str(write_imdb(tmp_path)), clean=["html", "lower"])
    assert all("<br" not in t and t == t.lower() for t in dataset.splits["train"].texts)


def test_sms_spam_file(tmp_path):
    lines = [f"ham\tsee you at {i} o'clock" for i in range(20)] + [f"spam\tWIN {i} prizes now" for i in range(10)]
    path = tmp_path / "SMSSpamCollection"
    path.write_text("\n".join(lines) + "\n")
    dataset = datasets.load("sms_spam", path=str(path))
    summary = dataset.summary()
    assert summary["found"]["all"]["class_counts"] == {"ham": 20, "spam": 10}
    assert sum(s["size"] for s in summary["splits"].values()) == 30
    assert summary["splits"]["test"]["class_counts"] == {"ham": 4, "spam": 2}  # Stratified 20 %.


def test_sms_spam_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham\tfine\nmaybe\tnot a label\n")
    with pytest.raises(datasets.DatasetError, match=r"SMSSpamCollection:2: expected `ham<TAB>text`"):
        datasets.load("sms_spam", path=str(path))


def test_github_issues_json_joins_title_and_body(tmp_path):
    rows = [{"Title": f"title {i}", "Body": f"body {i}", "Label": i % 3} for i in range(30)]
    path = tmp_path / "Train.json"
    path.write_text(json.dumps(rows))
    dataset = datasets.load("github_issues", path=str(tmp_path))
    assert dataset.class_names == ["bug", "feature", "question"]
    texts = sum((s.texts for s in dataset.splits.values()), [])
    assert "title 4\n\nbody 4" in texts
    for split in dataset.splits.values():
        for text, label in zip(split.texts, split.labels):
            assert int(text.split()[1]) % 3 == label


def test_github_issues_csv_with_label_names(tmp_path):
    path = tmp_path / "issues.csv"
    path.write_text("title,body,label\n" + "".join(f"t{i},\"b, {i}\",{['bug', 'feature', 'question'][i % 3]}\n"
                                                  for i in range(30)))
    dataset = datasets.load("github_issues", path=str(path))
    assert dataset.summary()["found"]["all"]["class_counts"] == {"bug": 10, "feature": 10, "question": 10}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_custom_file_formats_keep_class_order(tmp_path, suffix):
    rows = [(f"text number {i}", ["zebra", "apple", "mango"][i % 3]) for i in range(30)]
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps({"review": t, "stars": y}) for t, y in rows))
    else:
        sep = "," if suffix == ".csv" else "\t"
        path.write_text(f"review{sep}stars\n" + "".join(f"{t}{sep}{y}\n" for t, y in rows))
    dataset = datasets.load("custom", path=str(path), text_columns=["review"], label_column="stars")
    assert dataset.class_names == ["zebra", "apple", "mango"]  # Order of first appearance.
    train = dataset.splits["train"]
    for text, label in zip(train.texts, train.labels):
        assert rows[int(text.split()[-1])][1] == dataset.class_names[label]


def test_custom_integer_labels_and_explicit_class_names(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"t {i},{i % 2}\n" for i in range(20)))
    assert datasets.load("custom", path=str(path)).class_names == ["0", "1"]
    named = datasets.load("custom", path=str(path), class_names=["negative", "positive"])
    assert named.class_names == ["negative", "positive"]


def test_deduplication_removes_duplicates_and_conflicts_before_splitting(tmp_path):
    rows = [f"unique text {i},{i % 2}" for i in range(40)]
    rows += ["unique   text 3,1", "same text,0", "same text,0", "conflict,0", "conflict ,1"]
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    dataset = datasets.load("custom", path=str(path))
    report = dataset.summary()["deduplication"]
    assert report["exact_duplicates_removed"] == 2  # "unique   text 3" and the second "same text".
    assert report["conflicting_label_texts_dropped"] == 2
    keys = [{text_lib.whitespace_key(t) for t in s.texts} for s in dataset.splits.values()]
    assert sum(len(k) for k in keys) == 41
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


def test_official_splits_keep_test_and_drop_train_copies():
    splits = {"train": (["a", "b", "c"], [0, 1, 0]), "test": (["b", "d"], [1, 0])}
    out, report = datasets.deduplicate(splits)
    assert out["test"] == (["b", "d"], [1, 0])
    assert out["train"] == (["a", "c"], [0, 0])
    assert report["duplicates_across_splits"] == 1


def test_splits_are_seeded_and_stratified(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"t {i},{'ab'[i % 5 == 0]}\n" for i in range(100)))
    first = datasets.load("custom", path=str(path), seed=3)
    again = datasets.load("custom", path=str(path), seed=3)
    other = datasets.load("custom", path=str(path), seed=4)
    assert first.splits["test"].texts == again.splits["test"].texts
    assert first.splits["test"].texts != other.splits["test"].texts
    assert first.summary()["splits"]["test"]["class_counts"] == {"a": 16, "b": 4}


def test_balance_options(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"t {i},{'ab'[i % 5 == 0]}\n" for i in range(200)))
    down = datasets.load("custom", path=str(path), balance="downsample")
    counts = np.bincount(down.splits["train"].labels)
    assert counts[0] == counts[1] > 0
    weighted = datasets.load("custom", path=str(path), balance="class_weight")
    minority = weighted.class_names.index("b")  # 1 in 5 rows.
    assert weighted.class_weight[minority] == pytest.approx(4 * weighted.class_weight[1 - minority], rel=0.05)
    with pytest.raises(datasets.DatasetError, match="Unknown balance mode 'up'. Allowed"):
        datasets.load("custom", path=str(path), balance="up")


def test_max_examples_caps_each_split(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"t {i},{i % 2}\n" for i in range(200)))
    dataset = datasets.load("custom", path=str(path), max_examples=10)
    assert [len(dataset.splits[s]) for s in datasets.SPLITS] == [10, 10, 10]


def test_missing_column_names_file_line_and_columns(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("body,label\nhello,0\n")
    with pytest.raises(datasets.DatasetError, match=r"data.csv:2: missing column 'text'. Columns present: "
                                                    r"\['body', 'label'\]"):
        datasets.load("custom", path=str(path))


def test_a_read_is_kept_until_the_file_changes(tmp_path):
    """`textzoo train` reads your file before TensorFlow is imported to check it; `load` then reuses that read,
    unless the file changed in between."""
    path = tmp_path / "data.csv"
    path.write_text("text,label\nfirst,x\nsecond,y\n")
    raw = datasets.read("custom", path, label_column="label")[1]
    assert datasets.read("custom", path, label_column="label")[1] is raw
    assert datasets.read("custom", path, label_column="label", encoding="latin-1")[1] is not raw
    path.write_text("text,label\nfirst,x\nsecond,y\nthird,y\n")
    assert len(datasets.read("custom", path, label_column="label")[1].splits["all"][0]) == 3


def test_empty_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("  \n")
    with pytest.raises(datasets.DatasetError, match="data.jsonl: the file is empty"):
        datasets.load("custom", path=str(path))


def test_label_outside_class_set(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,pos\nb,neg\nc,meh\n")
    with pytest.raises(datasets.DatasetError, match=r"data.csv:4: label 'meh' is not in the class set "
                                                    r"\['neg', 'pos'\]"):
        datasets.load("custom", path=str(path), class_names=["neg", "pos"])


def test_a_class_with_a_single_example_stays_in_train_with_a_warning(tmp_path, caplog):
    """As Reuters R52's `platinum`: it cannot be stratified, and is not lost either."""
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"t {i},{'ab'[i % 2]}\n" for i in range(30)) + "lonely,rare\n")
    with caplog.at_level("WARNING"):
        dataset = datasets.load("custom", path=str(path))
    train = dataset.splits["train"]
    assert "lonely" in train.texts and train.labels[train.texts.index("lonely")] == dataset.class_names.index("rare")
    for split in ("validation", "test"):
        assert dataset.class_names.index("rare") not in dataset.splits[split].labels
        assert {"a", "b"} == {dataset.class_names[y] for y in dataset.splits[split].labels}
    assert sum(len(s) for s in dataset.splits.values()) == 31  # Nothing lost.
    assert dataset.stats["kept_in_train"] == {"test": {"rare": 1}, "validation": {"rare": 1}}
    assert "classes with a single example stay in train, none in test: {'rare': 1}" in caplog.text


def test_a_file_too_small_to_split_stops_with_how_many_examples_it_needs(tmp_path):
    path = tmp_path / "ten.csv"
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(10)))
    with pytest.raises(datasets.DatasetError) as error:
        datasets.load("custom", path=str(path))
    message = str(error.value)
    # Not scikit-learn's "The test_size = 1 should be greater or equal to the number of classes = 2".
    assert "\n" not in message and "test_size" not in message
    assert "8 examples of 2 classes are too few to take a stratified validation split (12%: 1 examples)" in message
    assert "it needs at least 12 examples, or validation and test files of your own" in message
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(12)))
    dataset = datasets.load("custom", path=str(path))
    assert [len(dataset.splits[s]) for s in datasets.SPLITS] == [7, 2, 3]
    assert all(set(dataset.splits[s].labels) == {0, 1} for s in datasets.SPLITS)


@pytest.mark.parametrize("classes, shares, needed", [(2, [0.2, 0.125], 12), (2, [0.2], 6), (5, [0.1], 41)])
def test_examples_needed_is_the_least_that_splits(classes, shares, needed):
    assert datasets.examples_needed(classes, shares) == needed


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    lines = [f"ham\tmessage {i}".encode() for i in range(20)] + [b"spam\tcheap \xff\xfe offer"] * 1
    lines += [f"spam\toffer {i}".encode() for i in range(9)]
    path.write_bytes(b"\n".join(lines))
    dataset = datasets.load("sms_spam", path=str(path))
    assert dataset.summary()["decoding"]["texts_with_undecodable_bytes"] == 1
    texts = sum((s.texts for s in dataset.splits.values()), [])
    assert "cheap \ufffd\ufffd offer" in texts


def test_malformed_json_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": 0}\n{"text": oops}\n')
    with pytest.raises(datasets.DatasetError, match=r"data.jsonl:2: invalid JSON"):
        datasets.load("custom", path=str(path))


def test_unknown_dataset_and_option():
    with pytest.raises(datasets.DatasetError, match=r"Unknown dataset 'nope'. Allowed: \['bbc_news'"):
        datasets.load("nope")
    with pytest.raises(datasets.DatasetError, match=r"Unknown options \['colour'\] for dataset 'sms_spam'"):
        datasets.load("sms_spam", colour="red")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_huge_fields_are_read_whole_and_cut_where_the_model_cuts(tmp_path, suffix):
    """A field of any length is read (the csv module refuses those over 128 KiB by default), then cut as the model
    cuts a text where it enters (`zoo.classifier.preprocess`): the reader keeps no more than the model reads."""
    limit = text_lib.MAX_INPUT_BYTES
    rows = [{"text": ("\u00e9" * (limit * 2)) if i == 0 else f"t {i}", "label": i % 2} for i in range(20)]
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows), encoding="utf-8")
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    texts = [t for s in datasets.load("custom", path=str(path)).splits.values() for t in s.texts]
    assert max(len(t.encode()) for t in texts) == limit
    assert "\u00e9" * (limit // 2) in texts


def test_python_cut_equals_the_graph_cut():
    import tensorflow as tf

    limit = text_lib.MAX_INPUT_BYTES
    texts = ["short", "x" * (limit + 5), "\u20ac" * limit, "ok \U0001F600" * (limit // 7), "lone \ud800 half"]
    graph = text_lib.cut_to_input_limit(tf.constant([t.encode("utf-8", "surrogatepass") for t in texts])).numpy()
    python = [text_lib.cut_text(t) for t in texts]
    assert [g.decode() for g in graph[:4]] == python[:4]
    assert python[4] == "lone \ufffd\ufffd\ufffd half"


def test_the_input_limit_cuts_bytes_and_repairs_utf8():
    import tensorflow as tf

    limit = text_lib.MAX_INPUT_BYTES
    texts = ["short", "x" * (limit + 5), "\u20ac" * limit, "\u00e9" * limit, "ok \U0001F600" * (limit // 7)]
    cut = text_lib.cut_to_input_limit(tf.constant([t.encode() for t in texts])).numpy()
    # A cut inside a character leaves U+FFFD, as Python's decoder does.
    assert [c.decode() for c in cut] == [t.encode()[:limit].decode("utf-8", errors="replace") for t in texts]
    assert cut[2].decode() == "\u20ac" * (limit // 3) + "\ufffd"
    repaired = text_lib.cut_to_input_limit(tf.constant([b"\xff\xfe goal"])).numpy()
    assert repaired[0].decode() == "\ufffd\ufffd goal"


def test_email_text_header_modes():
    raw = ("From: a@b.c\nSubject: Cheap pills\nX-Spam-Status: Yes\nContent-Type: text/html\n\n"
           "<p>Buy <b>now</b></p>\n")
    assert datasets.email_text(raw, "subject").split() == ["Cheap", "pills", "Buy", "now"]
    assert "Cheap" not in datasets.email_text(raw, "none")
    assert "X-Spam-Status" in datasets.email_text(raw, "all")
    with pytest.raises(datasets.DatasetError, match="Unknown email header mode 'some'"):
        datasets.email_text(raw, "some")


def topic_rows(n, offset=0, topics=("sport", "money")):
    words = {"sport": "goal match league", "money": "shares bank profit", "tech": "chip phone laptop"}
    return [(f"{words[topics[i % len(topics)]]} item {offset + i}", topics[i % len(topics)]) for i in range(n)]


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "".join(f"{t},{y}\n" for t, y in rows))
    return path


def test_unterminated_quote_names_the_line_it_opens_on(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\nfine,sport\n"an open quote, never closed,money\nmore,sport\nrows,money\n')
    with pytest.raises(datasets.DatasetError, match=r"data.csv:3: a quoted field in the row starting on this line "
                                                    r"is never closed"):
        datasets.load("custom", path=str(path))


def test_quote_closed_in_the_middle_of_a_field_is_malformed(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\nfine,sport\n"quoted" then more,money\n')
    with pytest.raises(datasets.DatasetError, match=r"data.csv:3: malformed row .*doubled"):
        datasets.load("custom", path=str(path))


def test_row_with_wrong_number_of_fields(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\nfine,sport\nunquoted, comma,money\nshort\n")
    with pytest.raises(datasets.DatasetError, match=r"data.csv:3: expected 2 fields as in the header "
                                                    r"\['text', 'label'\], received 3"):
        datasets.load("custom", path=str(path))
    path.write_text("text,label\nfine,sport\nshort\n")
    with pytest.raises(datasets.DatasetError, match=r"data.csv:3: expected 2 fields .* received 1"):
        datasets.load("custom", path=str(path))


def test_quoted_fields_with_commas_and_line_breaks_are_read(tmp_path):
    path = tmp_path / "data.csv"
    rows = [(f'"line one, {i}\nline ""two"""', "sport" if i % 2 else "money") for i in range(30)]
    write_csv(path, rows)
    dataset = datasets.load("custom", path=str(path))
    texts = sum((s.texts for s in dataset.splits.values()), [])
    assert 'line one, 3\nline "two"' in texts and len(texts) == 30


def test_single_class_is_refused(tmp_path):
    path = write_csv(tmp_path / "data.csv", [(f"text {i}", "only") for i in range(20)])
    with pytest.raises(datasets.DatasetError, match=r"needs examples of at least 2 classes, received 1: "
                                                    r"\{'only': 20\}"):
        datasets.load("custom", path=str(path))


def test_empty_label_names_the_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,x\nb,\n")
    with pytest.raises(datasets.DatasetError, match=r"data.csv:3: empty label in column 'label'"):
        datasets.load("custom", path=str(path))


def test_directory_of_train_validation_test_files(tmp_path):
    write_csv(tmp_path / "train.csv", topic_rows(40))
    write_csv(tmp_path / "dev.csv", topic_rows(10, 100, ("money", "sport")))
    write_csv(tmp_path / "test.csv", topic_rows(12, 200))
    dataset = datasets.load("custom", path=str(tmp_path))
    assert [len(dataset.splits[s]) for s in datasets.SPLITS] == [40, 10, 12]
    assert dataset.class_names == ["sport", "money"]  # Order of the train file, whatever the other files' order.
    assert dataset.splits["validation"].texts[0] == "shares bank profit item 100"
    assert dataset.splits["validation"].labels[0] == 1
    assert dataset.summary()["splits_from_source"] == ["test", "train", "validation"]
    assert dataset.variant == "file:train.csv+dev.csv+test.csv"


def test_validation_and_test_files_beside_a_train_file(tmp_path):
    train = write_csv(tmp_path / "tickets.csv", topic_rows(50))
    test = write_csv(tmp_path / "held_out.jsonl", [], header="")
    test.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in topic_rows(8, 300)))
    dataset = datasets.load("custom", path=str(train), test_path=str(test))
    assert len(dataset.splits["test"]) == 8
    assert len(dataset.splits["train"]) + len(dataset.splits["validation"]) == 50  # Validation taken from train.
    validation = write_csv(tmp_path / "val.csv", topic_rows(6, 400))
    dataset = datasets.load("custom", path=str(train), validation_path=str(validation))
    assert len(dataset.splits["validation"]) == 6
    assert len(dataset.splits["train"]) + len(dataset.splits["test"]) == 50  # Test taken from train.


def test_test_label_outside_the_train_labels(tmp_path):
    write_csv(tmp_path / "train.csv", topic_rows(20))
    write_csv(tmp_path / "test.csv", topic_rows(6, 50, ("sport", "tech")))
    with pytest.raises(datasets.DatasetError, match=r"test.csv:3: label 'tech' is not in the class set "
                                                    r"\['sport', 'money'\] \(the labels of train.csv\)"):
        datasets.load("custom", path=str(tmp_path))


def test_directory_without_a_train_file(tmp_path):
    write_csv(tmp_path / "test.csv", topic_rows(6))
    with pytest.raises(datasets.DatasetError, match=r"\['test.csv'\] but no train file in this directory"):
        datasets.load("custom", path=str(tmp_path))
    (tmp_path / "test.csv").unlink()
    (tmp_path / "notes.txt").write_text("not a table")
    with pytest.raises(datasets.DatasetError, match=r"no .csv/.*file in this directory"):
        datasets.load("custom", path=str(tmp_path))


def test_a_directory_of_several_files_is_one_dataset(tmp_path):
    """Several exports of the same data (none named after a split): read in name order, one dataset, split later;
    a bad label is named by its own file and line."""
    data = tmp_path / "tickets"
    data.mkdir()
    write_csv(data / "2024-01.csv", topic_rows(30))
    (data / "2024-02.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                                                for t, y in topic_rows(20, 100, ("money", "tech"))))
    dataset = datasets.load("custom", path=str(data))
    assert sum(len(split) for split in dataset.splits.values()) == 50
    assert dataset.class_names == ["sport", "money", "tech"] and dataset.variant == "file:2024-01.csv+2024-02.jsonl"
    assert datasets.data_name(data) == "tickets"
    write_csv(data / "2024-03.csv", topic_rows(4, 200)[:2] + [("no label here", "")])
    with pytest.raises(datasets.DatasetError, match=r"2024-03.csv:4: empty label"):
        datasets.load("custom", path=str(data))
    (data / "2024-03.csv").unlink()
    with pytest.raises(datasets.DatasetError, match=r"2024-02.jsonl:2: label 'tech' is not in the class set "
                                                    r"\['sport', 'money'\]"):
        datasets.load("custom", path=str(data), class_names=["sport", "money"])


def test_undecodable_bytes_in_a_custom_file_are_counted(tmp_path):
    path = tmp_path / "data.csv"
    rows = b"".join(f"text {i},{'a' if i % 2 else 'b'}\n".encode() for i in range(20))
    path.write_bytes(b"text,label\n" + rows + b"caf\xe9,a\n")
    dataset = datasets.load("custom", path=str(path))
    assert dataset.summary()["decoding"]["texts_with_undecodable_bytes"] == 1


def test_a_latin1_file_is_warned_about_counted_by_text_and_read_with_its_encoding(tmp_path, caplog):
    import logging

    path = tmp_path / "tickets.csv"
    rows = [f"ticket {i}: caf\xe9 cr\xe8me,{'a' if i % 2 else 'b'}" for i in range(20)]
    path.write_bytes(("text,label\n" + "\n".join(rows) + "\n").encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        dataset = datasets.load("custom", path=str(path))
    assert dataset.summary()["decoding"]["texts_with_undecodable_bytes"] == 20  # Every text, not the one file.
    assert "20 texts held bytes that are not utf-8" in caplog.text and "encoding=cp1252" in caplog.text
    again = datasets.load("custom", path=str(path), encoding="latin-1")
    assert again.summary()["decoding"] == {"encoding": "latin-1", "texts_with_undecodable_bytes": 0, "examples": []}
    assert any("caf\xe9 cr\xe8me" in t for s in again.splits.values() for t in s.texts)
    with pytest.raises(datasets.DatasetError, match=r"Unknown encoding 'klingon'. Allowed: a Python codec name"):
        datasets.load("custom", path=str(path), encoding="klingon")
