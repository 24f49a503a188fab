"""The benchmark on your own file (`textzoo benchmark --dataset_path=FILE`): every backbone and the TF-IDF
reference on the same test texts, intervals, comparisons and the recommendation; and the errors about the file."""

import json
import re

import pytest
from absl import app

import zoo

from benchmarks import report
from benchmarks import run
from benchmarks import stats
from recipes import budgets
from tests import commands


def tickets_csv(path, n=240):
    """A user's file: title, body and queue columns, three queues told apart by their words."""
    import numpy as np

    rng = np.random.default_rng(0)
    words = {"hardware": ["printer", "screen", "laptop", "cable"], "accounts": ["password", "login", "locked", "reset"],
             "billing": ["invoice", "refund", "charge", "payment"]}
    filler = ["please", "help", "again", "today", "broken", "the"]
    rows = []
    for i in range(n):
        queue = list(words)[i % 3]
        body = " ".join([*rng.choice(words[queue], 4), *rng.choice(filler, 4), f"ticket{i}"])
        rows.append(f"{rng.choice(words[queue])} issue,{body},{queue}")
    path.write_text("title,body,queue\n" + "\n".join(rows) + "\n")
    return path


def test_your_file_every_backbone_on_the_same_test_texts_with_intervals_and_a_recommendation(tmp_path):
    """`textzoo benchmark --dataset_path=FILE --dataset_options=...`: every backbone asked for and the TF-IDF
    reference on your file, named after it, each scored on the very same test texts; the report gives intervals,
    paired comparisons and the recommendation, which the run prints and records."""
    data = tickets_csv(tmp_path / "tickets.csv")
    out = tmp_path / "out"
    result = commands.run("benchmark", f"--dataset_path={data}", "--dataset_options=text_columns=title+body,"
                          "label_column=queue", "--backbones=ngram_linear,glove_bilstm", "--budget=tiny",
                          f"--output_dir={out}", "--max_latency_ms=10000", "--seeds=2", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["recipe"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    scored = {name: rows[name] for name in ("ngram_linear_tickets", "glove_bilstm_tickets",
                                             "reference_sklearn_tfidf_lr_tickets")}
    assert {r["dataset"] for r in scored.values()} == {"tickets"}
    tests = [r["test"] for r in scored.values()]
    assert len({(t["identity"], t["labels"], t["texts"]) for t in tests}) == 1  # The same texts, for every one.
    assert tests[0]["texts"] == budgets.TEST_EXAMPLES["tiny"] and tests[0]["classes"] == 3
    for r in scored.values():
        labels, predicted = stats.decode(r["test"]["labels"]), stats.decode(r["test"]["predicted"])
        assert r["accuracy"] == pytest.approx(float((labels == predicted).mean()))
    assert (out / "exports" / "ngram_linear_tickets").is_dir() and (out / "exports" / "glove_bilstm_tickets").is_dir()
    recommended = rows[report.RECOMMENDATIONS]["recommendations"]["tickets"]
    best = max(("ngram_linear_tickets", "glove_bilstm_tickets"), key=lambda n: rows[n]["accuracy"])
    assert recommended["most_accurate"]["recipe"] == best and recommended["within_latency"]["recipe"] == best
    text = (out / "RESULTS.md").read_text()
    assert "### tickets" in text and "| best |" in text
    assert f"- Most accurate: `{best}`" in text
    # --seeds=2: each recipe trained again with the next seed on the same splits (the repeat checks its test texts).
    for name in ("ngram_linear_tickets", "glove_bilstm_tickets"):
        seeds = rows[name]["seeds"]
        assert seeds["seeds"] == [zoo.DEFAULT_SEED, zoo.DEFAULT_SEED + 1] and not seeds["errors"], seeds
        assert seeds["accuracy"][0] == rows[name]["accuracy"] and len(seeds["wall_seconds"]) == 1
        assert f"({min(seeds['accuracy']):.4f}-{max(seeds['accuracy']):.4f}; 2 seeds)" in text
    assert "seeds" not in rows["reference_sklearn_tfidf_lr_tickets"]
    for r in (rows["ngram_linear_tickets"], rows["glove_bilstm_tickets"]):  # Without --deep: the rates that compare.
        assert set(r["inference_examples_per_second"]) == {"32"} and r["latency_batch_1"]["p95_ms"] > 0
        assert r["deep"] is False and "served_precision_examples_per_second_32" not in r
    assert "Recommendations (intervals and comparisons in RESULTS.md):" in result.stdout
    assert f"tickets: most accurate {best}" in result.stdout


def test_a_mistyped_column_of_your_file_is_one_line_before_anything_runs(tmp_path):
    tickets_csv(tmp_path / "tickets.csv", n=12)
    result = commands.run("benchmark", "--dataset_path=tickets.csv", "--dataset_options=text_columns=title+bodyy,"
                          "label_column=queue", f"--output_dir={tmp_path / 'out'}", cwd=tmp_path, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].endswith(
        "tickets.csv:2: missing column 'bodyy'. Columns present: ['body', 'queue', 'title']. Name the columns with "
        "--dataset_options=text_columns=A+B,label_column=C.")
    assert not (tmp_path / "out" / "results.jsonl").exists()


@pytest.mark.parametrize("settings, message", [
    ({"dataset_options": ["label_column=queue"]}, "--dataset_options reads your file: pass --dataset_path=FILE"),
    ({"dataset_path": "missing.csv"}, "--dataset_path=missing.csv: no such file or directory."),
    ({"dataset_path": "tickets.csv", "datasets": ["bbc_news"]}, "--datasets chooses registered datasets"),
    ({"dataset_path": "tickets.csv", "dataset_options": ["label_column"]}, "--dataset_options takes key=value"),
])
def test_flags_about_your_file_are_usage_errors_before_anything_runs(tmp_path, monkeypatch, parsed_flags, settings,
                                                                      message):
    tickets_csv(tmp_path / "tickets.csv", n=12)
    monkeypatch.chdir(tmp_path)
    for name, value in {"output_dir": str(tmp_path / "out"), **settings}.items():
        setattr(parsed_flags, name, value)
    with pytest.raises(app.UsageError, match=re.escape(message)):
        run.main(["benchmarks.run"])
    assert not (tmp_path / "out").exists()
