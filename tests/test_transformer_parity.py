"""The real transformers against their reference implementations: the zoo's network on the same token ids as the
reference, and the zoo's tokenizer against Hugging Face's (tokenizers, the library its checkpoints were made with).

MiniLM-L3's reference is its own ONNX file run by onnxruntime.
"""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from zoo import backbones
from zoo import pretrained

# Accents, CJK, Korean, emoji, a word past WordPiece's 100-character limit, empty and blank texts, punctuation,
# casing, what keras-hub's own normalization (NFKC case folding after accent stripping) changed, control characters,
# a text cut at the sequence length; shared with the reference scripts.
TEXTS = json.loads((pathlib.Path(__file__).with_name("reference") / "parity_texts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def minilm_l3():
    return backbones.build("minilm_l3", {"pooling": "mean"}, 128)


def _reference_tokenizer(vocabulary):
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(str(vocabulary), lowercase=True)


def test_minilm_l3_is_the_onnx_model(minilm_l3):
    """Hidden states and mean-pooled embeddings of the converted checkpoint against onnxruntime on the ONNX file
    (within 1e-4; measured 1.4e-6 and 6.3e-7)."""
    import onnxruntime

    inputs = minilm_l3.preprocessor(tf.constant(TEXTS))
    outputs = minilm_l3.network(inputs)
    onnx_file = next(pretrained.pathlib.Path(pretrained.BERT_WEIGHTS["minilm_l3"].resolve().path).rglob("*.onnx"))
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    feed = {"input_ids": inputs["token_ids"].numpy().astype(np.int64),
            "attention_mask": inputs["padding_mask"].numpy().astype(np.int64)}
    results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    hidden = next(v for v in results.values() if v.ndim == 3)  # [batch, length, 384]: the last layer's states.
    pooled = next(v for v in results.values() if v.shape == (len(TEXTS), 384))  # sentence-transformers' mean.
    mask = inputs["padding_mask"].numpy().astype(bool)
    assert np.abs(outputs["sequence_output"].numpy() - hidden)[mask].max() < 1e-4
    assert np.abs(outputs["pooled_output"].numpy() - pooled).max() < 1e-4
    assert minilm_l3.provenance["pooling"] == "mean" and minilm_l3.provenance["activation"] == "gelu"
    assert minilm_l3.provenance["architecture"] == {"num_layers": 3, "hidden_dim": 384, "num_heads": 12}


@pytest.mark.parametrize("name", ["minilm_l6", "minilm_l3"])
def test_wordpiece_ids_are_hugging_faces(name):
    parts = backbones.build(name, {"pooling": "mean"}, 128)
    vocabulary = next(pretrained.pathlib.Path(parts.provenance["path"]).rglob("vocab*.txt"))
    reference = _reference_tokenizer(vocabulary)
    reference.enable_truncation(128)
    ours = parts.preprocessor(tf.constant(TEXTS))
    for text, ids, mask in zip(TEXTS, ours["token_ids"].numpy(), ours["padding_mask"].numpy()):
        assert list(ids[mask.astype(bool)]) == reference.encode(text).ids, text


def test_minilm_l3_onnx_weights_are_named_by_the_biases_they_feed():
    onnx_file = next(pretrained.pathlib.Path(pretrained.BERT_WEIGHTS["minilm_l3"].resolve().path).rglob("*.onnx"))
    weights = pretrained.onnx_bert_weights(onnx_file)
    # 5 embedding tensors and 16 per layer (Q, K, V, attention output, intermediate, output: kernel and bias; two
    # layer norms), 17.2M parameters, no pooler.
    assert len(weights) == 5 + 3 * 16 and not any(k.startswith("pooler") for k in weights)
    assert sum(v.size for v in weights.values()) == pytest.approx(17.2e6, rel=0.01)
    assert weights["encoder.layer.2.intermediate.dense.weight"].shape == (1536, 384)  # Linear's [out, in].
    assert weights["encoder.layer.0.attention.self.query.weight"].shape == (384, 384)


@pytest.fixture(scope="module")
def mpnet_base():
    return backbones.build("mpnet_base", {"pooling": "mean", "trainable_layers": 2}, 128)


def test_mpnet_base_is_hugging_faces_mpnet(mpnet_base):
    """Token ids, last hidden states and sentence-transformers' mean pooling of all-mpnet-base-v2 against Hugging
    Face transformers' MPNetTokenizer and MPNetModel (tests/reference/mpnet_reference.py wrote the file; hidden
    states within 1e-4, measured 1.2e-6)."""
    reference = np.load(pathlib.Path(__file__).with_name("reference") / "mpnet_base.npz")
    texts = json.loads(str(reference["texts"]))
    assert texts == TEXTS  # The reference script's texts are this module's.
    inputs = mpnet_base.preprocessor(tf.constant(texts))
    assert set(inputs) == {"token_ids", "padding_mask"}  # MPNet has no segment embeddings.
    outputs = mpnet_base.network(inputs)
    offsets = np.concatenate([[0], np.cumsum(reference["lengths"])])
    for i, text in enumerate(texts):
        mask = inputs["padding_mask"][i].numpy().astype(bool)
        expected = slice(offsets[i], offsets[i + 1])
        assert list(inputs["token_ids"][i].numpy()[mask]) == list(reference["token_ids"][expected]), text
        assert np.abs(outputs["sequence_output"][i].numpy()[mask] - reference["hidden"][expected]).max() < 1e-4
    assert np.abs(outputs["pooled_output"].numpy() - reference["pooled"]).max() < 1e-4
    assert mpnet_base.provenance["pooling"] == "mean" and mpnet_base.provenance["activation"] == "gelu"
    assert mpnet_base.network.count_params() == pytest.approx(109.5e6, rel=0.005)


def test_mpnet_frozen_prefix_then_top_is_the_network(mpnet_base):
    """The relative-position bias is computed again in the top, on the features' length: the same outputs."""
    inputs = mpnet_base.preprocessor(tf.constant(TEXTS))
    prefix, top = mpnet_base.frozen_prefix.prefix, mpnet_base.frozen_prefix.top
    whole = mpnet_base.network(inputs)["pooled_output"].numpy()
    np.testing.assert_allclose(top(prefix(inputs))["pooled_output"].numpy(), whole, atol=1e-5)
    trainable = {v.path.split("/")[0] for v in mpnet_base.network.trainable_variables}
    assert not any(name.startswith(("embeddings", "relative_attention_bias", "transformer_layer_0")) for name in
                   trainable)


def test_the_default_benchmark_leaves_mpnet_out_unless_asked_for():
    from benchmarks import run

    runnable, skipped = run.plan(dataset_names=["reuters_r8"])
    assert "mpnet_base_reuters_r8" not in runnable
    assert "quick budget is not yet sized" in skipped["mpnet_base_reuters_r8"]
    assert run.plan(backbone_names=["mpnet_base"], dataset_names=["reuters_r8"])[0] == ["mpnet_base_reuters_r8"]
