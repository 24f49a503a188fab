"""BERT pooling and frozen-prefix training: the top of the network trains on features of the frozen bottom, computed
once per example; the saved and exported model is the whole network."""

import json
import pathlib

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import zoo
from recipes import catalog
from zoo import backbones
from zoo import classifier
from zoo import datasets
from zoo import experiment
from zoo import heads
from zoo import pretrained
from zoo import training

TEXTS = [("word " * n).strip() + " end" for n in (1, 3, 5, 40, 45, 2, 90, 7, 60, 33, 1, 120)]


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_dtype_policy("float32")


def build(length=128, **options):
    backbone = backbones.build("minilm_l6", {"dropout": 0.0, **options}, length, None)
    return backbone, backbones.input_layout("minilm_l6", backbone.preprocessor)


def preprocess(backbone, texts):
    return tf.function(backbone.preprocessor)(tf.constant(texts))


def test_mean_pooling_is_the_masked_mean_and_follows_the_weights():
    backbone, _ = build(pooling="auto")
    assert backbone.provenance["pooling"] == "mean"  # all-MiniLM-L6-v2 was trained with mean pooling.
    inputs = preprocess(backbone, TEXTS[:4])
    outputs = backbone.network(inputs)
    sequence = np.asarray(outputs["sequence_output"], dtype=np.float64)
    mask = np.asarray(inputs["padding_mask"], dtype=np.float64)[..., None]
    expected = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
    np.testing.assert_allclose(np.asarray(outputs["pooled_output"]), expected, atol=1e-5)
    assert mask.sum(axis=1).min() < mask.shape[1]  # Padding was there to leave out.

    cls, _ = build(pooling="cls")
    assert cls.provenance["pooling"] == "cls" and isinstance(cls.network, keras_hub.models.BertBackbone)
    pooled = np.asarray(cls.network(inputs)["pooled_output"])
    np.testing.assert_allclose(pooled, np.tanh(sequence[:, 0] @ np.asarray(cls.network.pooled_dense.kernel)
                                               + np.asarray(cls.network.pooled_dense.bias)), atol=1e-4)


def test_pooling_of_a_checkpoint_is_read_from_its_files(tmp_path):
    assert pretrained.trained_pooling(tmp_path) == "cls"
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
    assert pretrained.trained_pooling(tmp_path) == "mean"
    random, _ = build(random_init=True, num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)
    assert random.provenance["pooling"] == "cls"


@pytest.mark.parametrize("value", [7, -1, "two", 1.5, True])
def test_trainable_layers_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match=rf"trainable_layers must be 'all' or an integer from 0 to 6 .*received "
                                         rf"{value!r}"):
        build(trainable_layers=value)
    with pytest.raises(ValueError, match=r"Unknown pooling 'max'. Allowed: \['auto', 'cls', 'mean'\]"):
        build(pooling="max")


@pytest.mark.parametrize("trainable", [2, 0])
def test_cached_features_are_the_frozen_layers_outputs_and_give_the_whole_models_outputs(trainable):
    backbone, layout = build(trainable_layers=trainable)
    frozen = backbone.frozen_prefix
    assert frozen.layout.variable_length == (trainable > 0)
    trainable_weights = {id(w) for w in backbone.network.trainable_weights}
    assert trainable_weights == {id(w) for w in frozen.top.trainable_weights}
    features, index = training.cache_features(frozen, TEXTS, np.arange(len(TEXTS)), backbone.preprocessor, layout,
                                              batch_size=4, bucket_width=32, storage_dtype="float32")
    padded = preprocess(backbone, [TEXTS[i] for i in index])
    expected = frozen.prefix(padded)  # The frozen layers on the whole padded batch.
    if trainable:
        lengths = padded["padding_mask"].numpy().sum(axis=1)
        assert features["hidden"].row_lengths().numpy().tolist() == lengths.tolist()
        for row, length in enumerate(lengths):
            np.testing.assert_allclose(features["hidden"][row].numpy(), expected["hidden"][row, :length], atol=1e-5)
    else:
        np.testing.assert_allclose(features["pooled_output"], expected["pooled_output"], atol=1e-5)

    core = classifier.build_core(backbone, 3, "softmax")
    top_core = classifier.build_top_core(backbone.frozen_prefix, core)
    batch, order = next(iter(training.feature_dataset(features, index, frozen.layout, None, len(TEXTS))))
    whole = core(preprocess(backbone, [TEXTS[i] for i in order.numpy()]))
    np.testing.assert_allclose(top_core(batch), whole, atol=1e-5)


def test_a_training_step_on_cached_features_is_the_step_of_the_whole_model_with_its_bottom_frozen():
    backbone, layout = build(trainable_layers=2)
    core = classifier.build_core(backbone, 3, "softmax", hidden_units=(16,))
    top_core = classifier.build_top_core(backbone.frozen_prefix, core)
    features, index = training.cache_features(backbone.frozen_prefix, TEXTS, np.arange(len(TEXTS)),
                                              backbone.preprocessor, layout, 4, 32, storage_dtype="float32")
    batch, order = next(iter(training.feature_dataset(features, index, backbone.frozen_prefix.layout, None, 12)))
    labels = order.numpy() % 3
    inputs = classifier.trim_padding(preprocess(backbone, [TEXTS[i] for i in order.numpy()]), layout)
    start = [np.asarray(w) for w in core.weights]

    def step(model, x):
        model.compile(optimizer=training.make_optimizer("transformer", 1e-3, 10, 0.0, 0.01),
                      loss=heads.loss_and_metric("softmax")[0])
        loss = model.train_on_batch(x, labels)
        return loss, [np.asarray(w) for w in core.weights]

    cached_loss, cached_weights = step(top_core, batch)
    core.set_weights(start)
    whole_loss, whole_weights = step(core, inputs)
    assert cached_loss == pytest.approx(whole_loss, abs=1e-5)
    changed = [not np.array_equal(a, b) for a, b in zip(start, whole_weights)]
    assert 0 < sum(changed) < len(start)  # The top and the head moved, the frozen bottom did not.
    for a, b in zip(cached_weights, whole_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == 2:
            raise KeyboardInterrupt("simulated interruption")


def test_frozen_prefix_run_resumes_and_its_export_is_the_whole_model(tmp_path):
    recipe = {**catalog.resolve("minilm_l3_bbc_news", "tiny",
                                {"epochs": 3, "patience": 3, "backbone_options": {"trainable_layers": 1}}),
              "seed": zoo.DEFAULT_SEED}
    runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="float32")
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        experiment.train_and_evaluate(recipe, run, runtime, callbacks=[Interrupt()])
    assert training.resumed_epoch(run / "backup") == 1
    metrics = experiment.train_and_evaluate(recipe, run, runtime, export_dir=tmp_path / "exports")
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and all("val_loss" in h for h in history)
    assert metrics["caching_seconds"] > 0
    config = json.loads((run / "config.json").read_text())
    assert config["provenance"]["pooling"] == "mean"
    assert 0 < config["parameters"]["trainable"] < config["parameters"]["total"] / 3

    texts = datasets.for_recipe(recipe, seed=zoo.DEFAULT_SEED).splits["test"].texts
    rows = [json.loads(line) for line in (run / "test_predictions.jsonl").read_text().splitlines()]
    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    probabilities = served(text=tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, [r["probabilities"] for r in rows], atol=1e-5)
    info = json.loads((pathlib.Path(metrics["export"]) / "export_info.json").read_text())
    assert info["verification"]["ok"] and info["provenance"]["pooling"] == "mean"


def test_a_trained_or_loaded_classifier_fits_again_on_cached_features(tmp_path):
    """A fit after a fit, or after loading (frozen flags are not saved), keeps the bottom frozen and trains the top
    on cached features, as the first fit did."""
    options = {"random_init": True, "num_layers": 2, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
               "pooling": "mean", "dropout": 0.0, "trainable_layers": 1}
    labels = [i % 2 for i in range(len(TEXTS))]
    model = zoo.TextClassifier("bert_base", backbone_options=options, sequence_length=32,
                               training={"epochs": 1, "batch_size": 4, "learning_rate": 1e-2})
    assert model.fit(TEXTS, labels, validation_data=(TEXTS, labels)).caching_seconds is not None
    model.save(tmp_path / "classifier.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras")
    for again in (model, loaded):
        before = {w.path: np.asarray(w) for w in again.core.weights}
        assert again.fit(TEXTS, labels, validation_data=(TEXTS, labels)).caching_seconds is not None
        moved = {w.path for w in again.core.weights if not np.array_equal(np.asarray(w), before[w.path])}
        assert any("transformer_layer_1" in p for p in moved) and any("probabilities" in p for p in moved), moved
        assert not any("transformer_layer_0" in p or "embedding" in p for p in moved), moved
