"""The real assets, resolved from the registry packages with the network sources failing fast here.

These use the shared asset cache (~/.cache/textzoo or $TEXTZOO_CACHE), so only the first run downloads.
"""

import subprocess
import urllib.request

import numpy as np
import pytest

from zoo import datasets
from zoo import pretrained
from zoo import text as text_lib

PACKAGED = {
    # name: (found sizes per split, found class counts of the first split)
    "spam_assassin": ({"all": 6046}, {"ham": 4150, "spam": 1896}),
    "bbc_news": ({"all": 2225}, {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}),
    "newsgroups20": ({"train": 11293, "test": 7528}, None),
    "reuters_r8": ({"train": 5485, "test": 2189}, None),
}


@pytest.fixture(scope="module")
def loaded():
    return {name: datasets.load(name) for name in PACKAGED}


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_packaged_dataset_counts(loaded, name):
    sizes, class_counts = PACKAGED[name]
    summary = loaded[name].summary()
    assert {s: v["size"] for s, v in summary["found"].items()} == sizes
    if class_counts:
        assert summary["found"]["all"]["class_counts"] == class_counts
    assert summary["source"]["kind"] in ("canonical", "package")
    assert summary["variant"]
    if summary["source"]["kind"] == "package":
        assert summary["source"]["sha256"]


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_no_test_text_appears_in_train_or_validation(loaded, name):
    keys = {s: {text_lib.whitespace_key(t) for t in split.texts} for s, split in loaded[name].splits.items()}
    assert not keys["test"] & keys["train"]
    assert not keys["test"] & keys["validation"]
    assert not keys["validation"] & keys["train"]
    assert len(keys["test"]) == len(loaded[name].splits["test"])  # No duplicates inside test either.


def refuse_clients(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network or package client used on a cached run: {args[:1]}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_second_run_uses_cache_and_no_client(isolated_cache, monkeypatch):
    first = datasets.load("bbc_news", offline=False)
    refuse_clients(monkeypatch)
    second = datasets.load("bbc_news", offline=False)
    assert second.summary() == first.summary()


def test_cached_fallback_is_used_before_retrying_canonical_sources(loaded, monkeypatch):
    # newsgroups20's canonical source (scikit-learn's download) failed here and is not cached: a second run must
    # read the cached package without trying it again.
    refuse_clients(monkeypatch)
    for name in PACKAGED:
        assert datasets.load(name, offline=False).summary() == loaded[name].summary()


def test_glove_50d_from_package():
    words, vectors, record = pretrained.load_glove(50)
    assert vectors.shape == (400000, 50) and vectors.dtype == np.float32
    assert words[0] == "the"
    official_the = [0.418, 0.24968, -0.41242, 0.1217, 0.34527, -0.044457, -0.49688, -0.17862, -0.00066023, -0.6566]
    np.testing.assert_allclose(vectors[words.index("the"), :10], official_the, rtol=1e-5)
    assert record["source"]


def test_minilm_weights_give_paraphrases_higher_similarity():
    import keras_hub

    directory, record = pretrained.resolve_bert("minilm_l6")
    backbone = keras_hub.models.BertBackbone.from_preset(str(directory))
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        str(directory), sequence_length=32, truncate="waterfall")
    inputs = preprocessor(["A man is playing a guitar.", "Someone plays the guitar.",
                           "The central bank raised interest rates."])
    sequence = backbone(inputs)["sequence_output"].numpy()
    mask = inputs["padding_mask"].numpy()[..., None].astype("float32")
    embeddings = (sequence * mask).sum(1) / mask.sum(1)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    paraphrase, unrelated = embeddings[0] @ embeddings[1], embeddings[0] @ embeddings[2]
    # Random weights give both pairs about the same similarity; pretrained weights separate them widely.
    assert paraphrase > 0.6 and paraphrase - unrelated > 0.4
    assert record["source"]


@pytest.mark.parametrize("name, resolve, pinned", [
    ("minilm_l6", pretrained.resolve_bert, pretrained.MINILM_L6_SHA256),
    ("mpnet_base", pretrained.resolve_mpnet, pretrained.MPNET_SHA256)])
def test_the_pinned_hugging_face_checksums_are_the_registry_packages_files(name, resolve, pinned):
    """The canonical files are pinned to a revision and to the sha256 Hugging Face publishes for each: the very bytes
    the registry package ships, so either source gives the same model."""
    from zoo import assets

    directory, _ = resolve(name)
    assert {file: assets.sha256_of(directory / file) for file in pinned} == pinned


# A name is one checkpoint: the architecture a name builds without weights is its checkpoint's, and no source of a
# name is another model's weights.
_ARCHITECTURE_KEYS = {"num_layers": "num_hidden_layers", "hidden_dim": "hidden_size", "num_heads": "num_attention_heads"}


@pytest.mark.parametrize("name", ["minilm_l6", "minilm_l3"])
def test_a_bert_name_builds_its_checkpoints_architecture(name):
    from zoo import backbones

    _, record = pretrained.resolve_bert(name)
    options = backbones.default_options(name)
    architecture = record["architecture"]
    assert {k: options[k] for k in _ARCHITECTURE_KEYS} == {
        k: architecture.get(hf, architecture.get(k)) for k, hf in _ARCHITECTURE_KEYS.items()}


@pytest.mark.parametrize("name, preset", [("bert_small", "bert_small_en_uncased"),
                                          ("bert_base", "bert_base_en_uncased")])
def test_a_keras_hub_name_is_its_preset_only(name, preset):
    import keras_hub

    from zoo import assets
    from zoo import backbones

    sources = pretrained.BERT_WEIGHTS[name].sources
    assert [s.preset for s in sources if isinstance(s, assets.KerasHubPreset)] == [preset]
    assert all(isinstance(s, (assets.KerasHubPreset, assets.Local)) for s in sources)
    options = backbones.default_options(name)
    network = keras_hub.models.BertBackbone(
        vocabulary_size=30522, max_sequence_length=512,
        **{k: options[k] for k in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim")})
    assert network.count_params() == keras_hub.models.BertBackbone.presets[preset]["metadata"]["params"]


def test_bert_small_without_kaggle_is_missing_not_another_model(monkeypatch):
    from zoo import backbones

    monkeypatch.setenv("TEXTZOO_OFFLINE", "1")
    reason = backbones.missing_weights("bert_small")
    assert "bert_small_en_uncased" in reason and "$TEXTZOO_BERT_SMALL" in reason and "minilm" not in reason.lower()
    assert backbones.missing_weights("minilm_l6") is None
