"""Length bucketing for BERT: every example once, batches padded to their own longest text, same outputs."""

import numpy as np
import pytest
import tensorflow as tf

from zoo import backbones
from zoo import classifier
from zoo import training

TEXTS = [("word " * n).strip() for n in (1, 3, 5, 40, 45, 2, 90, 7, 60, 33, 1, 120)]


@pytest.fixture(scope="module")
def bert():
    backbone = backbones.build("minilm_l6", {}, 128, None)
    core = classifier.build_core(backbone, 3, "softmax")
    return backbone, core, backbones.input_layout("minilm_l6", backbone.preprocessor)


def test_buckets_keep_every_example_and_pad_to_the_longest(bert):
    backbone, _, layout = bert
    ids = np.arange(len(TEXTS))  # Each text's own label: which text a row is.
    ds = training.make_dataset(TEXTS, ids, backbone.preprocessor, "softmax", batch_size=4, shuffle=True, seed=1,
                               bucket_width=32, layout=layout)
    seen = []
    for x, y in ds:
        lengths = x["padding_mask"].numpy().sum(axis=1)
        width = x["token_ids"].shape[1]
        assert width == lengths.max()  # Padded only to the longest text of the batch.
        assert len({(n - 1) // 32 for n in lengths}) == 1
        # Each row is its own text: [CLS], one token per word, [SEP].
        np.testing.assert_array_equal(lengths, [len(TEXTS[i].split()) + 2 for i in y.numpy()])
        seen += y.numpy().tolist()
    assert sorted(seen) == list(range(len(TEXTS)))


def test_bucketed_batches_give_the_outputs_of_full_padding(bert):
    backbone, core, layout = bert
    ids = np.arange(len(TEXTS))
    full = np.asarray(core(tf.function(backbone.preprocessor)(tf.constant(TEXTS))))  # Padded to 128.
    bucketed = training.make_dataset(TEXTS, ids, backbone.preprocessor, "softmax", 4, bucket_width=32,
                                     layout=layout)
    for x, y in bucketed:
        np.testing.assert_allclose(np.asarray(core(x)), full[y.numpy()], atol=1e-5)


def test_trim_padding_cuts_to_longest_and_keeps_outputs(bert):
    backbone, core, layout = bert
    # Inside tf.function, as in training and serving (eager keras-hub calls take a pure-Python path).
    preprocess = tf.function(backbone.preprocessor)
    inputs = preprocess(tf.constant(TEXTS[:3]))
    trimmed = tf.function(lambda x: classifier.trim_padding(x, layout))(inputs)
    assert trimmed["token_ids"].shape[1] == int(inputs["padding_mask"].numpy().sum(axis=1).max())
    np.testing.assert_allclose(core(trimmed), core(inputs), atol=1e-5)
    empty = tf.function(lambda x: classifier.trim_padding(x, layout))(preprocess(tf.constant([], dtype=tf.string)))
    assert empty["token_ids"].shape[0] == 0


def test_serving_chunks_sorted_by_length_give_the_same_outputs(bert):
    backbone, core, layout = bert
    texts = TEXTS * 2 + ["", "one"]
    preprocess = tf.function(backbone.preprocessor)
    inputs = preprocess(tf.constant(texts))
    chunked = tf.function(lambda x: classifier.run_core(core, x, layout, chunk_size=4))(inputs)
    np.testing.assert_allclose(chunked.numpy(), core(inputs).numpy(), atol=1e-5)
    empty = tf.function(lambda x: classifier.run_core(core, x, layout, chunk_size=4))(
        preprocess(tf.constant([], dtype=tf.string)))
    assert empty.shape == (0, 3)


def test_token_share_counts_the_positions_bucketed_batches_compute_on(bert):
    from benchmarks import timing

    backbone, _, layout = bert
    labels = np.zeros(len(TEXTS), dtype=int)
    words = [len(t.split()) for t in TEXTS]
    share = lambda batches: timing.token_share(timing.batch_shapes(batches), len(TEXTS), 128)  # noqa: E731
    one_each = training.make_dataset(TEXTS, labels, backbone.preprocessor, "softmax", 1, bucket_width=32,
                                     layout=layout)
    # Batches of one: every text costs its own tokens, [CLS] and [SEP] included.
    assert share(one_each) == pytest.approx(sum(n + 2 for n in words) / (12 * 128))
    bucketed = training.make_dataset(TEXTS, labels, backbone.preprocessor, "softmax", 4, bucket_width=32,
                                     layout=layout)
    computed = sum(int(np.prod(x["token_ids"].shape)) for x, _ in bucketed)
    assert share(bucketed) == pytest.approx(computed / (12 * 128))
    # Shuffled, every epoch batches differently, but never below the texts' own tokens nor up to full padding.
    shuffled = training.make_dataset(TEXTS, labels, backbone.preprocessor, "softmax", 4, shuffle=True, seed=1,
                                     bucket_width=32, layout=layout)
    assert sum(n + 2 for n in words) / (12 * 128) < share(shuffled) < 0.5
    padded = training.make_dataset(TEXTS, labels, backbone.preprocessor, "softmax", 4)
    assert share(padded) == 1.0  # Fixed-length padding: the stock pipeline's cost.
