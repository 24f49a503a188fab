"""Long texts read as overlapping windows: a text longer than one window is split into windows of words, each window
is classified as a text of its own, and the text's probabilities are its windows' pooled.

A transformer reads `sequence_length` tokens; without windows the rest of a longer text is cut off (20 Newsgroups'
posts are mostly longer than 128 tokens). With `max_windows` > 1 (a backbone option), a text of more than `words`
words becomes windows of `words` words every `stride` words (overlapping: the words a window's token limit cuts off
are read by the next), at most `max_windows` of them from the start, so that a 1 MB request stays bounded. Training
reads every window as an example with its text's label; prediction pools the windows' probabilities (`pooling`:
"mean", or "max": each class's largest, renormalised). A text of at most `words` words is one window, the text
itself: such texts are classified exactly as without windows.

Windows of words rather than of tokens: the split is a few string ops ahead of any preprocessor (every backbone, the
exported graph, TF Serving's core ops), and the tokenizer stays keras-hub's. Its cost: a window's length is counted
in whitespace-separated words; `words` defaults to 3/4 of the sequence length (WordPiece gives about 1.3 tokens per
English word), and a text without spaces (Chinese, Japanese) is one window, cut as without windows.
"""

import dataclasses
from typing import Optional

POOLINGS = ("mean", "max")

# A backbone's window options (merged into the transformers' defaults). Off by default, and in the quick budgets: on
# 20 Newsgroups and BBC News, 4 windows pooled were no better than the first window or a longer sequence length;
# mean pooling was the better on BBC News (docs/measurements.md#windows).
OPTIONS = {"max_windows": 1, "window_words": None, "window_stride": None, "window_pooling": "mean"}


@dataclasses.dataclass(frozen=True)
class Windows:
    """How a classifier reads a long text: windows of `words` words every `stride` words, at most `max_windows`,
    their probabilities pooled by `pooling`."""
    words: int
    stride: int
    max_windows: int
    pooling: str = "mean"


def of(options, sequence_length) -> Optional[Windows]:
    """The `Windows` a backbone's options (merged with its defaults) ask for; None where a text is one window
    (`max_windows` 1, the default, or a backbone without the options)."""
    max_windows = options.get("max_windows", 1)
    if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 1:
        raise ValueError(f"max_windows must be a positive integer (1: no windows), received {max_windows!r}.")
    if max_windows == 1:
        return None
    if not sequence_length:
        raise ValueError("Windows (max_windows > 1) need a sequence length: the backbone reads whole texts.")
    words = options.get("window_words") or max(1, (int(sequence_length) - 2) * 3 // 4)
    stride = options.get("window_stride") or max(1, words // 2)
    pooling = options.get("window_pooling", "mean")
    for name, value in (("window_words", words), ("window_stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer (words), received {value!r}.")
    if stride > words:
        raise ValueError(f"window_stride ({stride}) must be at most window_words ({words}): windows would skip "
                         "words.")
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown window_pooling {pooling!r}. Allowed: {list(POOLINGS)}.")
    return Windows(int(words), int(stride), int(max_windows), pooling)


def split(texts, windows):
    """[batch] strings -> (window texts [windows], the index of each window's text [windows] int32), windows of a
    text in order. A text of at most `windows.words` words is its one window, unchanged; a longer one's windows are
    its words joined by single spaces."""
    import tensorflow as tf

    words = tf.strings.split(texts)
    counts = tf.cast(words.row_lengths(), tf.int32)
    longer = tf.maximum(counts - windows.words, 0)
    per_text = tf.minimum(windows.max_windows, 1 + (longer + windows.stride - 1) // windows.stride)
    starts = tf.ragged.range(per_text) * windows.stride
    owners = tf.cast(starts.value_rowids(), tf.int32)
    first = starts.flat_values
    last = tf.minimum(first + windows.words, tf.gather(counts, owners))
    offsets = tf.gather(tf.cast(words.row_starts(), tf.int32), owners)
    positions = tf.ragged.range(first + offsets, tf.maximum(last, first) + offsets)
    joined = tf.strings.reduce_join(tf.gather(words.flat_values, positions), axis=1, separator=" ")
    whole = tf.gather(counts <= windows.words, owners)
    return tf.where(whole, tf.gather(texts, owners), joined), owners


def pool(probabilities, owners, count, pooling):
    """[windows, classes] probabilities -> [count, classes]: each text's windows' mean, or each class's maximum
    renormalised to sum 1 (`pooling`)."""
    import tensorflow as tf

    if pooling == "mean":
        return tf.math.unsorted_segment_mean(probabilities, owners, count)
    top = tf.math.unsorted_segment_max(probabilities, owners, count)
    return top / tf.maximum(tf.reduce_sum(top, axis=-1, keepdims=True), 1e-12)


def expand(texts, labels, windows, batch_size=1024):
    """Training examples of `texts` (a list of str) and `labels` (an array): every window with its text's label
    (`split`, the very windows prediction reads)."""
    import numpy as np
    import tensorflow as tf

    out_texts, out_labels = [], []
    labels = np.asarray(labels)
    for start in range(0, len(texts), batch_size):
        window_texts, owners = split(tf.constant(list(texts[start:start + batch_size]), dtype=tf.string), windows)
        out_texts += [t.decode("utf-8") for t in window_texts.numpy()]
        out_labels.append(labels[start:start + batch_size][owners.numpy()])
    return out_texts, (np.concatenate(out_labels) if out_labels else labels[:0])
