"""`zoo.TextClassifier`, the Python API: the README's block run as written for each backbone family, and the
contract around it (labels, class names, validation split, bad input, Keras serialization)."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from recipes import catalog
from zoo import inputs
from zoo import settings
from zoo import text_classifier

REPO = pathlib.Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_RECIPE = "ngram_linear_bbc_news"


def readme_block():
    """The one ```python block of the README's "Python API" section."""
    section = README.read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"expected one python block in the README's Python API section, found {len(blocks)}"
    return blocks[0]


# Run after the block, where it ran: what the checks below read, as files.
OBSERVE = """
import json as _json
import numpy as _np
import keras as _keras
import zoo as _zoo
_np.save("probabilities.npy", probabilities)
_np.save("restored.npy", restored.predict(test.texts))
_np.save("served.npy", outputs["probabilities"].numpy())
_json.dump({"keras_model": isinstance(classifier, _keras.Model), "restored": isinstance(restored, _zoo.TextClassifier),
            "class_names": classifier.class_names, "restored_class_names": restored.class_names,
            "served_labels": [label.decode() for label in outputs["label"].numpy()],
            "predicted_labels": classifier.predict_labels(test.texts), "texts": len(test.texts),
            "path": str(path.resolve()), "val_losses": len(history.history["val_loss"]),
            "epochs": classifier.training_settings.epochs}, open("observed.json", "w"))
"""


@pytest.mark.parametrize("recipe, installed", [
    # As a user runs it: saved as a script in a directory outside the clone, run by the environment's interpreter
    # without PYTHONPATH, so that `import zoo` is the installed package's.
    pytest.param(README_RECIPE, True, id="bag_of_words-installed"),
    pytest.param("glove_bilstm_bbc_news", False, id="recurrent"),
    pytest.param("minilm_l6_bbc_news", False, id="bert", marks=pytest.mark.large),
    pytest.param("mpnet_base_bbc_news", False, id="mpnet", marks=pytest.mark.large),
])
def test_readme_python_api_block_runs_as_written(recipe, installed, tmp_path, monkeypatch):
    code = readme_block()
    assert f'"{README_RECIPE}"' in code
    code = code.replace(README_RECIPE, recipe) + OBSERVE
    if installed:
        script = tmp_path / "readme_block.py"
        script.write_text(code)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        monkeypatch.chdir(tmp_path)  # The block writes news.keras and exports/ where it runs.
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102

    observed = json.loads((tmp_path / "observed.json").read_text())
    assert observed["keras_model"] and observed["restored"]
    probabilities = np.load(tmp_path / "probabilities.npy")
    assert probabilities.shape == (observed["texts"], 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert observed["class_names"] == observed["restored_class_names"] and len(set(observed["class_names"])) == 5
    # Saved and loaded: the same outputs, to the bit.
    np.testing.assert_array_equal(np.load(tmp_path / "restored.npy"), probabilities)
    # The export serves what the classifier predicts (the same function, float32 both).
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), probabilities, atol=1e-5)
    assert observed["served_labels"] == observed["predicted_labels"]
    path = pathlib.Path(observed["path"])
    assert path == tmp_path / "exports" / "news" / "1"
    info = json.loads((path / "export_info.json").read_text())
    assert info["verification"]["ok"] and info["class_names"] == observed["class_names"]
    assert info["backbone"] == recipe.split("_bbc_news")[0]
    assert (tmp_path / "exports" / "models.config").exists()
    # History as Keras gives it, over the epochs the recipe's tiny budget runs.
    assert observed["val_losses"] == observed["epochs"]


# Three separable topics, as words a bag of n-grams adapts to in a second.
TOPICS = {"sport": "match goal striker league", "money": "shares market profit bank",
          "music": "album band concert song"}


def topic_texts(per_class=12, seed=0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for name, words in TOPICS.items():
        words = words.split()
        for _ in range(per_class):
            texts.append(" ".join(rng.choice(words, size=6)))
            labels.append(name)
    return texts, labels


@pytest.fixture(scope="module")
def fitted():
    texts, labels = topic_texts()
    classifier = zoo.TextClassifier("ngram_linear", training={"epochs": 8, "learning_rate": 0.05, "patience": 8})
    history = classifier.fit(texts, labels, validation_split=0.25, seed=3)
    return classifier, history, texts, labels


def test_fit_takes_class_names_from_labels_and_learns(fitted):
    classifier, history, texts, labels = fitted
    assert classifier.class_names == ["sport", "money", "music"]  # In order of first appearance.
    assert classifier.head_type == "softmax"
    # validation_split: a stratified quarter of the 36 texts held out (3 per class), the rest trained on.
    assert history.best_epoch is not None and len(history.rows) == 8
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    assert classifier.predict_labels(["striker goal league match", "band song album"]) == ["sport", "music"]
    assert classifier.evaluate(texts, labels)["accuracy"] == 1.0
    # Integer ids and names are the same labels.
    ids = [classifier.class_names.index(label) for label in labels]
    assert classifier.evaluate(texts, ids) == classifier.evaluate(texts, labels)


def test_call_predict_and_evaluate_are_one_function(fitted):
    classifier, _, texts, labels = fitted
    called = classifier(tf.constant(texts)).numpy()
    np.testing.assert_allclose(classifier.predict(texts), called, atol=1e-6)
    probabilities = classifier.predict(texts)
    expected_loss = -np.mean(np.log(probabilities[np.arange(len(texts)), classifier.label_ids(labels)]))
    assert classifier.evaluate(texts, labels)["loss"] == pytest.approx(expected_loss, rel=1e-4)
    # Tensors and bytes are texts too; an empty request gives no rows.
    np.testing.assert_allclose(classifier.predict(tf.constant([t.encode() for t in texts])), probabilities,
                               atol=1e-6)
    assert classifier.predict([]).shape == (0, 3)


def test_keras_serialization_round_trip(fitted, tmp_path):
    classifier, _, texts, _ = fitted
    config = classifier.get_config()
    assert config["backbone"] == "ngram_linear" and config["class_names"] == ["sport", "money", "music"]
    assert config["training"]["epochs"] == 8
    classifier.save(tmp_path / "topics.keras")
    restored = keras.saving.load_model(tmp_path / "topics.keras")
    np.testing.assert_array_equal(restored.predict(texts), classifier.predict(texts))
    assert restored.training_settings == classifier.training_settings
    assert restored.provenance == classifier.provenance
    # In a fresh process, as the README says: the zoo's classes are registered by importing TextClassifier.
    code = ("import json, sys\nfrom zoo import TextClassifier\nimport keras\n"
            "model = keras.saving.load_model(sys.argv[1])\nprint(json.dumps(model.predict(sys.argv[2:]).tolist()))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "topics.keras"), *texts[:3]],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(json.loads(result.stdout.splitlines()[-1]), classifier.predict(texts[:3]))


def test_bad_labels_and_texts_are_refused_with_what_was_received(fitted):
    classifier, _, texts, _ = fitted
    with pytest.raises(ValueError, match=r"Label 'jazz' \(example 1\) is not one of the classes \['sport', 'money'"):
        classifier.label_ids(["sport", "jazz"])
    with pytest.raises(ValueError, match=r"Label 7 \(example 0\) is not a class id: allowed 0 to 2"):
        classifier.label_ids([7])
    with pytest.raises(TypeError, match="received one str: wrap it in a list"):
        classifier.predict("one text")
    with pytest.raises(TypeError, match=r"x\[1\] must be a string, received int"):
        classifier.predict(["fine", 3])
    fresh = zoo.TextClassifier("ngram_linear")
    with pytest.raises(ValueError, match="fit got 2 texts and 1 labels"):
        fresh.fit(["a", "b"], ["x"])
    with pytest.raises(ValueError, match=r"at least 2 classes, received \['x'\]"):
        fresh.fit(["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="has not been built yet: call fit"):
        fresh.predict(["a"])
    with pytest.raises(ValueError, match=r"Unknown backbone 'bert_huge'. Allowed: \["):
        zoo.TextClassifier("bert_huge")
    with pytest.raises(ValueError, match=r"Unknown options \['layers'\] for backbone 'ngram_linear'"):
        zoo.TextClassifier("ngram_linear", backbone_options={"layers": 2})
    with pytest.raises(TypeError, match=r"unexpected arguments \['steps_per_epoch'\]"):
        fresh.fit(texts, texts, steps_per_epoch=3)


def test_too_few_texts_for_a_validation_split_say_how_many_are_needed():
    texts, labels = topic_texts(per_class=1)
    classifier = zoo.TextClassifier("ngram_linear")
    with pytest.raises(ValueError, match="too few to take a stratified validation split.*at least"):
        classifier.fit(texts, labels)


def test_make_classifier_takes_the_recipe_settings():
    classifier = catalog.make_classifier("minilm_l6_reuters_r8", budget="quick", learning_rate=1e-4)
    assert classifier.name == "minilm_l6_reuters_r8" and classifier.core is None  # Built by fit.
    assert classifier.training_settings == settings.TrainingSettings(
        batch_size=32, epochs=2, learning_rate=1e-4, warmup_fraction=0.1, weight_decay=0.01, patience=2,
        bucket_width=32)
    assert classifier.backbone_options == {"trainable_layers": 1} and classifier.sequence_length == 256
    with pytest.raises(ValueError, match="Unknown recipe 'minilm_l6_tweets'"):
        catalog.make_classifier("minilm_l6_tweets")
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_fit_in_mixed_precision_ships_a_float32_classifier():
    """As the scripts do on a CPU with bfloat16: training computes in mixed_bfloat16, what `fit` leaves (and
    `predict` and the export run) computes in float32."""
    from zoo import compat

    class Policies(keras.callbacks.Callback):
        seen = set()

        def on_train_begin(self, logs=None):
            Policies.seen = {layer.dtype_policy.name for layer in compat.all_layers(self.model)}

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        texts, labels = topic_texts()
        classifier = zoo.TextClassifier("ngram_linear", training={"epochs": 2, "learning_rate": 0.05})
        classifier.fit(texts, labels, validation_split=0.25, callbacks=[Policies()])
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    assert "mixed_bfloat16" in Policies.seen
    assert {layer.dtype_policy.name for layer in compat.all_layers(classifier.core)} == {"float32"}
    assert classifier.predict(texts).dtype == np.float32


def test_huge_and_undecodable_texts_are_read_as_the_served_model_reads_them(fitted):
    from zoo import text as text_lib

    classifier = fitted[0]
    huge = "striker goal " * 300_000  # 3.9 MB: cut at the model's input limit where it enters the model.
    cut = huge.encode()[:text_lib.MAX_INPUT_BYTES].decode("utf-8", errors="replace")
    assert len(cut.encode()) <= text_lib.MAX_INPUT_BYTES < len(huge.encode())
    assert inputs.texts([huge, b"\xff\xfe goal"], "x") == [huge, "\ufffd\ufffd goal"]  # Read whole, decoded.
    np.testing.assert_allclose(classifier.predict([huge]), classifier.predict([cut]), atol=1e-6)
    # Undecodable bytes read as U+FFFD, as the served model reads them (the label itself is the model's business:
    # an 8-epoch n-gram fit on 27 texts put it at sport 0.42-0.53 from run to run).
    np.testing.assert_allclose(classifier.predict([b"\xff\xfe goal striker"]),
                               classifier.predict(["\ufffd\ufffd goal striker"]), atol=1e-6)
    assert classifier.predict_labels([b"\xff\xfe goal striker"]) == classifier.predict_labels(
        ["\ufffd\ufffd goal striker"])


def test_fit_reads_a_huge_text_as_far_as_the_model_does():
    """The vocabulary adapts on what the model reads of a text: a word past the input limit is not in it."""
    from zoo import text as text_lib

    texts, labels = topic_texts(per_class=4)
    texts[0] = "striker " * (text_lib.MAX_INPUT_BYTES // 8) + "zeppelin"
    classifier = zoo.TextClassifier("ngram_linear", training={"epochs": 1})
    classifier.fit(texts, labels, validation_data=(texts, labels), verbose=0)
    vocabulary = classifier.preprocessor.get_vocabulary()
    assert "striker" in vocabulary and "zeppelin" not in vocabulary


def test_export_goes_through_zoo_export_with_a_clear_error_otherwise(tmp_path):
    from zoo import export

    classifier = catalog.make_classifier("ngram_linear_bbc_news", budget="tiny")
    with pytest.raises(NotImplementedError, match=r"export\('exports', \.\.\.\) is Keras' generic export.*"
                                                  r"zoo\.export\.export_classifier\(classifier, export_dir"):
        classifier.export("exports")
    with pytest.raises(ValueError, match="ngram_linear_bbc_news has not been trained: call fit"):
        export.export_classifier(classifier, tmp_path)


def test_a_tf_data_dataset_is_taken_where_keras_takes_one(fitted):
    classifier, _, texts, labels = fitted
    probabilities = classifier.predict(texts)
    pairs = tf.data.Dataset.from_tensor_slices((texts, labels))
    # Batched or not, texts alone or with labels: the same texts, the same probabilities.
    np.testing.assert_allclose(classifier.predict(pairs.batch(5)), probabilities, atol=1e-6)
    np.testing.assert_allclose(classifier.predict(tf.data.Dataset.from_tensor_slices(texts)), probabilities,
                               atol=1e-6)
    assert classifier.evaluate(pairs.batch(7)) == classifier.evaluate(texts, labels)
    # `steps` counts batches: the dataset's own, or of batch_size texts.
    np.testing.assert_allclose(classifier.predict(pairs.batch(5), steps=2), probabilities[:10], atol=1e-6)
    np.testing.assert_allclose(classifier.predict(texts, batch_size=4, steps=3), probabilities[:12], atol=1e-6)
    assert classifier.evaluate(texts, labels, return_dict=False) == [
        pytest.approx(v) for v in (lambda r: [r["loss"], r["accuracy"], r["macro_f1"]])(
            classifier.evaluate(texts, labels))]
    # fit takes one too, its validation data as well.
    fresh = zoo.TextClassifier("ngram_linear", training={"epochs": 2, "learning_rate": 0.05})
    history = fresh.fit(pairs.batch(8), validation_data=pairs, verbose=0)
    assert fresh.class_names == ["sport", "money", "music"] and len(history.rows) == 2


def test_keras_arguments_that_cannot_be_honoured_are_refused_saying_why(fitted):
    classifier, _, texts, labels = fitted
    with pytest.raises(TypeError, match=r"predict got unexpected arguments \['callbacks'\]: callbacks: prediction "
                                        r"is one traced function"):
        classifier.predict(texts, callbacks=[keras.callbacks.History()])
    with pytest.raises(TypeError, match=r"evaluate got unexpected arguments \['sample_weight'\]: sample_weight: "
                                        r"every text counts once"):
        classifier.evaluate(texts, labels, sample_weight=np.ones(len(texts)))
    with pytest.raises(TypeError, match=r"fit got unexpected arguments \['sample_weight', 'validation_freq'\]"):
        classifier.fit(texts, labels, sample_weight=np.ones(len(texts)), validation_freq=2)
    pairs = tf.data.Dataset.from_tensor_slices((texts, labels))
    with pytest.raises(ValueError, match=r"batch_size must be None for a batched tf.data.Dataset.*received 8"):
        classifier.predict(pairs.batch(4), batch_size=8)
    with pytest.raises(ValueError, match=r"y must be None when x is a tf.data.Dataset"):
        classifier.evaluate(pairs, labels)
    with pytest.raises(ValueError, match=r"must be a tf.data.Dataset of \(texts, labels\), received texts only"):
        classifier.evaluate(tf.data.Dataset.from_tensor_slices(texts))
    with pytest.raises(ValueError, match=r"sample weights are not supported"):
        classifier.evaluate(tf.data.Dataset.from_tensor_slices((texts, labels, np.ones(len(texts)))))
    with pytest.raises(TypeError, match=r"must hold strings as its texts, received int32"):
        classifier.predict(tf.data.Dataset.from_tensor_slices(np.arange(3, dtype=np.int32)))
