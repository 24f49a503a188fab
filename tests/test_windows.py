"""Long texts read as windows (zoo.windows): the split against a plain-Python statement of the rule, the pooling,
the options' errors, and a classifier that trains on windows, predicts by pooling them and exports them."""

import json

import numpy as np
import pytest
import tensorflow as tf

from recipes import catalog
from zoo import classifier as classifier_lib
from zoo import export
from zoo import windows


def expected_windows(text, w):
    """The rule, in plain Python: a text of at most `words` words is itself; a longer one is windows of `words`
    words starting every `stride` words until one reaches its end, at most `max_windows`."""
    words = text.split()
    if len(words) <= w.words:
        return [text]
    out, start = [], 0
    while len(out) < w.max_windows:
        out.append(" ".join(words[start:start + w.words]))
        if start + w.words >= len(words):
            break
        start += w.stride
    return out


@pytest.mark.parametrize("w", [windows.Windows(4, 2, 3), windows.Windows(5, 5, 2), windows.Windows(3, 1, 10),
                               windows.Windows(1, 1, 4)])
def test_split_follows_the_rule(w):
    rng = np.random.default_rng(0)
    texts = ["", "   ", "one", "a b c d", " a  b\tc\nd ", "\u00e9t\u00e9 \U0001F600 \u4e2d\u6587 x y z"]
    texts += [" ".join(f"w{i}" for i in range(n)) for n in rng.integers(0, 30, size=20)]
    window_texts, owners = windows.split(tf.constant(texts), w)
    got = {}
    for text, owner in zip(window_texts.numpy(), owners.numpy()):
        got.setdefault(int(owner), []).append(text.decode("utf-8"))
    assert sorted(got) == list(range(len(texts)))  # Every text has a window, in order.
    assert list(owners.numpy()) == sorted(owners.numpy())
    for i, text in enumerate(texts):
        assert got[i] == expected_windows(text, w), text


def test_split_of_no_texts():
    window_texts, owners = windows.split(tf.constant([], tf.string), windows.Windows(4, 2, 3))
    assert window_texts.shape == (0,) and owners.shape == (0,)


def test_pooling_mean_and_max():
    probabilities = tf.constant([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])
    owners = tf.constant([0, 0, 1])
    np.testing.assert_allclose(windows.pool(probabilities, owners, 2, "mean"), [[0.4, 0.6], [0.9, 0.1]], atol=1e-6)
    np.testing.assert_allclose(windows.pool(probabilities, owners, 2, "max"), [[0.6 / 1.4, 0.8 / 1.4], [0.9, 0.1]],
                               atol=1e-6)


def test_expand_labels_every_window_with_its_text():
    texts, labels = windows.expand(["a b c d e f", "x", "p q r s t"], np.array([2, 0, 1]), windows.Windows(4, 2, 5))
    assert texts == ["a b c d", "c d e f", "x", "p q r s", "r s t"] and labels.tolist() == [2, 2, 0, 1, 1]


@pytest.mark.parametrize("options, length, message", [
    ({"max_windows": 0}, 128, "max_windows must be a positive integer"),
    ({"max_windows": "4"}, 128, "max_windows must be a positive integer"),
    ({"max_windows": 4}, None, "need a sequence length"),
    ({"max_windows": 4, "window_words": 10, "window_stride": 20}, 128, r"window_stride \(20\) must be at most"),
    ({"max_windows": 4, "window_words": -3}, 128, "window_words must be a positive integer"),
    ({"max_windows": 4, "window_pooling": "sum"}, 128, r"Unknown window_pooling 'sum'. Allowed: \['mean', 'max'\]"),
])
def test_bad_window_options_are_named(options, length, message):
    with pytest.raises(ValueError, match=message):
        windows.of(options, length)


def test_defaults_follow_the_sequence_length():
    assert windows.of({"max_windows": 1}, 128) is None
    assert windows.of({"max_windows": 4}, 128) == windows.Windows(words=94, stride=47, max_windows=4)
    assert windows.of({"max_windows": 2, "window_words": 50, "window_stride": 50, "window_pooling": "max"},
                      128) == windows.Windows(50, 50, 2, "max")


TOPICS = {"sport": "goal match league striker coach", "money": "shares bank profit market loan"}


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = ["sport", "money"][i % 2]
        length = int(rng.integers(3, 60))
        texts.append(" ".join(rng.choice(TOPICS[label].split() + ["the", "a", "today"], length)))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def windowed(tmp_path_factory):
    """A tiny minilm_l3 classifier that trains on windows of 12 words (sequence length 32)."""
    classifier = catalog.make_classifier("minilm_l3_bbc_news", budget="tiny", class_names=["sport", "money"],
                                         backbone_options={"trainable_layers": 1, "max_windows": 3,
                                                           "window_words": 12, "window_stride": 6})
    classifier.fit(*_texts(48, 0), validation_data=_texts(16, 1), epochs=1, verbose=0,
                   run_dir=tmp_path_factory.mktemp("run"))
    return classifier


def test_a_text_is_its_windows_probabilities_pooled(windowed):
    texts, _ = _texts(12, 2)
    w = windowed.windows
    assert w == windows.Windows(12, 6, 3)
    got = windowed.predict(texts, verbose=0)
    assert any(len(expected_windows(t, w)) > 1 for t in texts) and any(len(t.split()) <= 12 for t in texts)
    for text, row in zip(texts, got):  # Each window through the same core without windows, then averaged.
        alone = classifier_lib.probabilities(tf.constant(expected_windows(text, w)), windowed.preprocessor,
                                             windowed.core, windowed.layout, windowed.head_type)
        np.testing.assert_allclose(row, np.mean(alone, axis=0), atol=1e-5)


def test_windows_are_in_the_export(windowed, tmp_path):
    path = export.export_classifier(windowed, tmp_path / "exports", "windowed")
    info = json.loads((path / "export_info.json").read_text())
    assert info["verification"]["ok"]
    assert info["windows"] == {"words": 12, "stride": 6, "max_windows": 3, "pooling": "mean"}
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    texts, _ = _texts(6, 3)
    probabilities = served(text=tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, windowed.predict(texts, verbose=0), atol=1e-5)
