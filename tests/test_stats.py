"""Intervals and paired comparisons over the test texts (benchmarks.stats), and what the report makes of them."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from benchmarks import report
from benchmarks import stats


def predictions(n, accuracy, classes=4, seed=0):
    """Labels and predictions right on about `accuracy` of the texts (a seeded draw)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    wrong = (labels + rng.integers(1, classes, n)) % classes
    return labels, np.where(rng.random(n) < accuracy, labels, wrong)


def record(labels, predicted, classes=4, texts=None):
    texts = texts or [f"text {i}" for i in range(len(labels))]
    return stats.test_record(texts, labels, predicted, classes)


def test_labels_round_trip_compactly_and_identity_is_of_texts_and_labels():
    labels, predicted = predictions(500, 0.8, classes=62)
    r = record(labels, predicted, 62)
    assert isinstance(r["predicted"], str) and len(r["predicted"]) == 500
    assert (stats.decode(r["predicted"]) == predicted).all() and (stats.decode(r["labels"]) == labels).all()
    assert stats.decode(stats.encode([70, 3])).tolist() == [70, 3]  # More classes than digits: a list.
    texts = [f"text {i}" for i in range(500)]
    assert stats.identity(texts, labels) == r["identity"]
    assert stats.identity(texts[::-1], labels[::-1]) != r["identity"]
    assert stats.identity(texts, (labels + 1) % 62) != r["identity"]


def test_intervals_hold_the_measured_value_and_narrow_with_more_texts():
    small, large = record(*predictions(400, 0.85)), record(*predictions(8000, 0.85))
    for r in (small, large):
        labels, predicted = stats.decode(r["labels"]), stats.decode(r["predicted"])
        got = stats.intervals(r)
        assert got["accuracy"][0] < np.mean(labels == predicted) < got["accuracy"][1]
        f1 = f1_score(labels, predicted, labels=range(4), average="macro", zero_division=0)
        assert got["macro_f1"][0] < f1 < got["macro_f1"][1]
    width = lambda r: np.diff(stats.intervals(r)["accuracy"])[0]  # noqa: E731
    # The width of a binomial proportion's interval: about 2 x 1.96 x sqrt(p (1 - p) / n).
    assert width(small) == pytest.approx(2 * 1.96 * np.sqrt(0.85 * 0.15 / 400), rel=0.25)
    assert width(large) < width(small) / 3


def test_a_few_texts_apart_is_no_difference_and_a_real_gap_is_better_or_worse():
    labels, ours = predictions(425, 0.97, seed=1)
    twice_wrong = ours.copy()
    right = np.flatnonzero(ours == labels)[:2]
    twice_wrong[right] = (labels[right] + 1) % 4  # Two texts: 0.47 points.
    a, b = record(labels, ours), record(labels, twice_wrong)
    close = stats.compare(a, b)
    assert close["points"] == pytest.approx(200 / 425) and close["verdict"] == "no difference"
    assert close["interval"][0] <= 0 <= close["interval"][1]
    _, poor = predictions(425, 0.80, seed=1)
    gap = stats.compare(a, record(labels, poor))
    assert gap["verdict"] == "better" and gap["interval"][0] > 0
    assert stats.compare(record(labels, poor), a)["verdict"] == "worse"
    assert stats.compare(a, a) == {"points": 0.0, "interval": [0.0, 0.0], "verdict": "no difference"}
    other_texts = record(labels, ours, texts=[f"other {i}" for i in range(425)])
    assert stats.compare(a, other_texts) is None  # Not the same test texts: no comparison.


def row(recipe, accuracy, test, served, size, p95, dataset="tickets", reference=False):
    r = {"recipe": recipe, "dataset": dataset, "accuracy": accuracy, "macro_f1": accuracy, "test": test}
    if reference:
        return {**r, "reference": "sklearn TF-IDF + LogisticRegression"}
    return {**r, "backbone": recipe.split("_tickets")[0], "inference_examples_per_second": {"32": served},
            "export_size_bytes": size, "latency_batch_1": {"p50_ms": p95 / 2, "p95_ms": p95}}


def test_recommendations_pick_the_fastest_and_smallest_of_those_not_worse_than_the_best():
    labels, best = predictions(2000, 0.95, seed=2)
    close = best.copy()  # 10 texts it gets wrong and 8 it gets right where the best does not: 0.1 points below.
    right, wrong = np.flatnonzero(best == labels)[:10], np.flatnonzero(best != labels)[:8]
    close[right], close[wrong] = (labels[right] + 1) % 4, labels[wrong]
    _, poor = predictions(2000, 0.80, seed=4)
    rows = [row("minilm_l6_tickets", 0.95, record(labels, best), served=40.0, size=90e6, p95=30.0),
            row("ngram_linear_tickets", 0.945, record(labels, close), served=900.0, size=9e6, p95=3.0),
            row("glove_bilstm_tickets", 0.80, record(labels, poor), served=2000.0, size=1e6, p95=2.0),
            row("reference_sklearn_tfidf_lr_tickets", 0.94, record(labels, close), 0, 0, 0, reference=True)]
    rows = [{**r, "accuracy": float(np.mean(stats.decode(r["test"]["predicted"]) == labels))} for r in rows]
    rec = report.recommendations(rows, max_latency_ms=10)["tickets"]
    assert rec["most_accurate"]["recipe"] == "minilm_l6_tickets"
    assert rec["not_worse_than_it"] == ["minilm_l6_tickets", "ngram_linear_tickets"]  # glove_bilstm is worse.
    assert rec["fastest_not_worse"]["recipe"] == rec["smallest_not_worse"]["recipe"] == "ngram_linear_tickets"
    assert rec["within_latency"]["recipe"] == "ngram_linear_tickets" and rec["test_texts"] == 2000
    assert report.recommendations(rows, max_latency_ms=1)["tickets"]["within_latency"]["recipe"] is None
    text = "\n".join(report.decision_section(rows))
    assert "### tickets" in text and "Test: 2000 texts (one text is 0.05 points)." in text
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ") and "_" in line}
    assert "| best |" in lines["minilm_l6_tickets"]
    assert " worse |" in lines["glove_bilstm_tickets"] and "no difference" in lines["ngram_linear_tickets"]
    assert "Fastest of those: `ngram_linear_tickets`" in text
