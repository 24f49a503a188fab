"""Every backbone's tiny BBC News recipe, trained, evaluated and exported for TF Serving, and the export checks."""

import json
import pathlib
import re
import warnings

import numpy as np
import pytest
import tensorflow as tf

import zoo

from tests import buildable
from tests import commands

from recipes import catalog
from zoo import backbones
from zoo import classifier
from zoo.text_classifier import TextClassifier
from zoo import datasets
from zoo import evaluation
from zoo import experiment
from zoo import runs
from zoo import export
from zoo import training

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN_FILES = ("config.json", "history.json", "metrics.json", "report.txt", "confusion_matrix.png",
             "training_curves.png", "test_predictions.jsonl", "model.keras", "held_out_texts.json")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, exports):
    """The tiny BBC News recipe of every backbone, trained and exported once for this module."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for backbone in buildable.names():
        recipe = {**catalog.resolve(f"{backbone}_bbc_news", "tiny"), "seed": zoo.DEFAULT_SEED}
        runtime = training.configure_runtime(seed=zoo.DEFAULT_SEED, dtype_policy="float32",
                                             family=backbones.family(backbone))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics = experiment.train_and_evaluate(recipe, root / backbone, runtime, export_dir=exports)
        runs[backbone] = (root / backbone, {**metrics, "warnings": [str(w.message) for w in caught]})
    return runs


@pytest.mark.parametrize("backbone", buildable.params())
def test_tiny_recipe_writes_every_file_and_real_metrics(tiny_runs, backbone):
    run, metrics = tiny_runs[backbone]
    for name in RUN_FILES:
        assert (run / name).exists(), name
    rows = [json.loads(line) for line in (run / "test_predictions.jsonl").read_text().splitlines()]
    class_names = list(metrics["per_class"])
    labels = [class_names.index(r["label"]) for r in rows]
    recomputed = evaluation.compute_metrics(labels, [r["probabilities"] for r in rows], class_names)
    for key in ("accuracy", "macro_f1"):
        assert recomputed[key] == pytest.approx(metrics[key])
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["variant"] and config["provenance"]["source"]
    # An epoch of length-bucketed batches ends as its data runs out: no warning that reads as a failure.
    assert not [w for w in metrics["warnings"] if "ran out of data" in w]
    if backbone == "bert_base":
        assert "RANDOM" in metrics["warning"] and metrics["pretrained"] is False


@pytest.mark.parametrize("backbone", buildable.params())
def test_test_metrics_are_those_of_the_exported_model(tiny_runs, backbone):
    """One path from text to probabilities: metrics.json's test predictions equal, example by example, what the
    export serves for the same texts."""
    run, metrics = tiny_runs[backbone]
    config = json.loads((run / "config.json").read_text())
    texts = datasets.for_recipe(config["recipe"], seed=config["runtime"]["seed"]).splits["test"].texts
    rows = [json.loads(line) for line in (run / "test_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(texts) == metrics["num_examples"]
    serve = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    served = serve(text=tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(served, [r["probabilities"] for r in rows], atol=1e-5)


@pytest.mark.parametrize("backbone", buildable.params())
def test_tiny_recipe_export_is_verified_and_versioned(tiny_runs, exports, backbone):
    run, metrics = tiny_runs[backbone]
    path = pathlib.Path(metrics["export"])
    assert path == exports / f"{backbone}_bbc_news" / "1"
    info = json.loads((path / "export_info.json").read_text())
    check = info["verification"]
    assert check["ok"] and not check["problems"]
    assert check["tf2_max_abs_diff"] <= 1e-5 and check["tf1_max_abs_diff"] <= 1e-5
    assert check["classify_method_name"] == "tensorflow/serving/classify"
    assert (path / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
    assert (path / "assets" / "labels.txt").read_text().split() == list(metrics["per_class"])
    assert info["dataset"]["variant"] and info["metrics"]["accuracy"] == metrics["accuracy"]
    if backbone.startswith("bert"):
        assert set(check["tf_text_ops"]) <= {"CaseFoldUTF8", "NormalizeUTF8", "RegexSplitWithOffsets",
                                            "WordpieceTokenizeWithOffsets", "FastWordpieceTokenizeWithOffsets"}
        assert check["tf_text_ops"]  # Tokenisation really is inside the graph.


def test_export_stores_each_weight_once(tiny_runs):
    """keras-team/keras#23553: guards zoo.compat.store_served_weights_once on every Keras upgrade."""
    run, metrics = tiny_runs["minilm_l6"]
    model = runs.RunDir(run).load_classifier()
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.core.weights)
    variables = pathlib.Path(metrics["export"]) / "variables"
    stored = sum(f.stat().st_size for f in variables.iterdir())
    assert weight_bytes * 0.95 < stored < weight_bytes * 1.05


# Directory size / (float32 weights + vocabulary file): at most 1.16, the tiny GloVe BiLSTM included (1.4 MB of
# weights against a ~0.2 MB saved_model.pb of two masked LSTM loops and each signature's cut of the request to its
# longest text: 1.151, the closest to the bound).
SIZE_BOUND = 1.16


@pytest.mark.parametrize("backbone", buildable.params())
def test_export_size_close_to_weights_and_vocabulary(tiny_runs, backbone, tmp_path):
    run, metrics = tiny_runs[backbone]
    path = pathlib.Path(metrics["export"])
    model = runs.RunDir(run).load_classifier()
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.core.weights)
    backbones.save_preprocessor(backbone, model.preprocessor, tmp_path / "preprocessor")
    vocabulary = next((tmp_path / "preprocessor").rglob("vocabulary.txt"))
    # The vocabulary is an asset file, byte for byte, not graph constants.
    assert (path / "assets" / "vocabulary.txt").read_bytes() == vocabulary.read_bytes()
    ratio = export.directory_size(path) / (weight_bytes + vocabulary.stat().st_size)
    print(f"{backbone}: {export.directory_size(path)} bytes, {ratio:.3f} x weights and vocabulary")
    assert ratio <= SIZE_BOUND, f"{backbone}: export is {ratio:.3f} x its weights and vocabulary"


@pytest.mark.parametrize("backbone", buildable.params())
def test_export_graph_embeds_no_vocabulary_or_duplicate_functions(tiny_runs, backbone):
    from tensorflow.core.protobuf import saved_model_pb2

    _, metrics = tiny_runs[backbone]
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((pathlib.Path(metrics["export"]) / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    # Every constant but those of the checkpoint machinery (the save/restore functions and the object-graph proto
    # the saver is fed), whose sizes grow with the number of variables.
    saving = ("__inference__traced_save", "__inference__traced_restore")
    saver_inputs = {i.split(":")[0] for n in graph.node if n.attr["f"].func.name.startswith(saving) for i in n.input}
    nodes = [("graph", n) for n in graph.node if n.name not in saver_inputs] + [
        (f.signature.name, n) for f in graph.library.function for n in f.node_def
        if not f.signature.name.startswith(saving)]
    size, where, name = max((n.ByteSize(), where, n.name) for where, n in nodes if n.op == "Const")
    # A vocabulary, an IDF vector or a WordPiece model buffer would be hundreds of KB.
    assert size < 16_000, f"{where}/{name}: a {size}-byte constant"
    # The model's graph and each endpoint are traced once: a second trace would store them twice (see zoo.export).
    for name in ("probabilities_of", "serve", "classify"):
        assert sum(f.signature.name.startswith(f"__inference_{name}_") for f in graph.library.function) == 1, name


@pytest.mark.parametrize("backbone", buildable.params())
def test_serving_graph_only_reads_state(tiny_runs, backbone):
    """No request writes a variable or draws random numbers (Keras RNNs draw dropout masks even when not training:
    zoo.compat.rnn_dropout_off)."""
    from tensorflow.core.protobuf import saved_model_pb2

    _, metrics = tiny_runs[backbone]
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((pathlib.Path(metrics["export"]) / "saved_model.pb").read_bytes())
    library = proto.meta_graphs[0].graph_def.library.function
    # Restoring the checkpoint assigns variables; it runs at load time, never per request.
    serving = [f for f in library if not f.signature.name.startswith("__inference__traced_restore")]
    writes = {(f.signature.name, n.op) for f in serving for n in f.node_def
              if n.op.startswith(("Assign", "ResourceApply", "ScatterNd")) or "Random" in n.op}
    assert not writes


@pytest.mark.parametrize("backbone", buildable.params())
def test_warmup_requests_replay_on_the_export(tiny_runs, backbone):
    from tensorflow_serving.apis import prediction_log_pb2

    run, metrics = tiny_runs[backbone]
    path = pathlib.Path(metrics["export"])
    loaded = tf.saved_model.load(str(path)).signatures["serving_default"]
    model = runs.RunDir(run).load_classifier()
    preprocessor = model.preprocessor
    chars = export.warmup_text_chars(model.layout.sequence_length)
    assert chars == (export.WARMUP_TEXT_CHARS if backbone == "ngram_linear" else 8 * 32)  # Tiny budget: 32 tokens.
    sizes = []
    for record in tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        assert request.model_spec.name == f"{backbone}_bbc_news"
        assert request.model_spec.signature_name == "serving_default"
        texts = tf.make_ndarray(request.inputs["text"])
        assert all(0 < len(t.decode("utf-8")) <= chars for t in texts)
        # Synthetic prose: no text of the training data ships in an export.
        assert [t.decode("utf-8") for t in texts] == export.warmup_texts(chars)[:len(texts)]
        assert not {t.decode("utf-8") for t in texts} & set(runs.RunDir(run).held_out_texts())
        if backbone != "ngram_linear":  # Cut as they are, the texts still fill the model's whole input.
            inputs = preprocessor(tf.constant(texts))
            last = inputs["padding_mask"] if isinstance(inputs, dict) else inputs
            assert np.asarray(last)[:, -1].any(), f"no warm-up text fills the {backbone} input"
        probabilities = loaded(text=tf.constant(texts))["probabilities"].numpy()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        sizes.append(len(texts))
    assert sizes == [1, 8]


def test_serving_wordpiece_gives_keras_hub_ids(tiny_runs, tmp_path):
    """The export's preprocessor (`transformer.Transformer.serving_preprocessor`) swaps FastWordpiece for
    WordpieceTokenizer over a vocabulary file: the ids must not move."""
    from zoo import datasets

    run, _ = tiny_runs["minilm_l6"]
    stock = runs.RunDir(run).load_classifier().preprocessor
    serving = backbones.serving_preprocessor("minilm_l6", stock, tmp_path / "vocabulary")
    assert type(serving.tokenizer._fast_word_piece).__name__ == "WordpieceTokenizer"
    texts = ["", "   ", "Hello, World!", "unaffable antidisestablishmentarianism", "x" * 99, "y" * 150,
             "na\u00efve caf\u00e9 r\u00e9sum\u00e9 \u00c5ngstr\u00f6m", "\u4e2d\u6587\u5b57 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4",
             "\U0001F600\U0001F44D\U0001F3FD emoji", "[CLS] [SEP] [MASK] [UNK]", "1,234.56 $5 -- e-mail: a.b@c.org",
             "https://example.com/path?q=1&r=2", "tab\tnew\nline\rreturn\u00a0nbsp", "\u0000\u0007 control",
             "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0928\u092e\u0938\u094d\u0924\u0947", "word " * 400]
    texts += datasets.load("bbc_news").splits["train"].texts[:100]
    for start in range(0, len(texts), 16):
        batch = tf.constant(texts[start:start + 16])
        expected, served = stock(batch), serving(batch)
        for key in ("token_ids", "segment_ids", "padding_mask"):
            np.testing.assert_array_equal(np.asarray(served[key]), np.asarray(expected[key]), err_msg=key)


def test_second_export_is_version_2_and_models_config_lists_all(tiny_runs, exports):
    run, _ = tiny_runs["ngram_linear"]
    second = export.export_run(run, exports, verify=False)
    assert second == exports / "ngram_linear_bbc_news" / "2"
    assert (exports / "ngram_linear_bbc_news" / "1" / "saved_model.pb").exists()
    config = (exports / "models.config").read_text()
    for backbone in buildable.names():
        assert f'name: "{backbone}_bbc_news"' in config
        assert f'base_path: "/models/{backbone}_bbc_news"' in config
    assert (exports / "batching_parameters.txt").exists()


def test_relative_export_dir_is_verified(tiny_runs, tmp_path, monkeypatch):
    """The default --export_dir is relative ("exports"); the check runs from another working directory."""
    run, _ = tiny_runs["ngram_linear"]
    monkeypatch.chdir(tmp_path)
    path = export.export_run(run, "exports")
    assert path == pathlib.Path("exports/ngram_linear_bbc_news/1")
    assert json.loads((path / "export_info.json").read_text())["verification"]["ok"]


def test_failed_export_leaves_no_half_model(tiny_runs, tmp_path, monkeypatch):
    run, _ = tiny_runs["ngram_linear"]

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export, "_warmup_requests", crash)
    with pytest.raises(OSError, match="disk full"):
        export.export_run(run, tmp_path, verify=False)
    model_dir = tmp_path / "ngram_linear_bbc_news"
    assert list(model_dir.iterdir()) == []


def test_op_set_check_fails_on_round_robin_trim(tmp_path):
    """The check is real: keras-hub's default truncate="round_robin" emits an op TF Serving 2.12-2.19 lack."""
    # The op comes from the preprocessor: a one-layer random network keeps the export short.
    options = {"random_init": True, "num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16}
    backbone = backbones.build("bert_base", options, 16, None)
    backbone.preprocessor.truncate = "round_robin"
    core = classifier.build_core(backbone, 2, "softmax")
    model = TextClassifier("bert_base", ["a", "b"], head="softmax", preprocessor=backbone.preprocessor, core=core)
    with pytest.raises(RuntimeError, match=r"TFText>RoundRobinTrim"):
        export.export_classifier(model, tmp_path / "exports", "round_robin", verify_texts=["a text"])


def test_predict_cli_from_export_and_run_dir(tiny_runs, exports, tmp_path):
    run, _ = tiny_runs["glove_bilstm"]
    texts = ["Shares rose after strong results", "The striker scored twice"]
    outputs = {}
    for model in (exports / "glove_bilstm_bbc_news", run):
        # As exported (float32), where the export and the run directory agree to 1e-5 (the bfloat16 rewrite at
        # load time: tests/test_float32_export.py).
        # Quiet by default (no TensorFlow start-up or C++ log line); TF_CPP_MIN_LOG_LEVEL=0 shows them.
        verbose = model == run
        result = commands.run("predict", f"--model={model}", "--mixed_precision=none",
                              *(f"--text={t}" for t in texts), cwd=tmp_path,
                              env={"TF_CPP_MIN_LOG_LEVEL": "0"} if verbose else None)
        assert result.returncode == 0, result.stderr[-2000:]
        assert bool(re.search(commands.TF_LOG_LINE, result.stderr)) == verbose, result.stderr[-2000:]
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert [r["text"] for r in rows] == texts
        for row in rows:
            assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
            assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        outputs[model.name] = rows
    exported, in_memory = outputs.values()
    for a, b in zip(exported, in_memory):
        for name in a["probabilities"]:
            assert a["probabilities"][name] == pytest.approx(b["probabilities"][name], abs=1e-5)


@pytest.mark.parametrize("backbone", buildable.params())
def test_explanations_run_on_every_backbones_export(tiny_runs, backbone):
    from zoo import explain
    from zoo import served

    run, _ = tiny_runs[backbone]
    model = served.ServedModel(served.export_of(run))
    text = "Shares rose after strong results, said the bank's chief executive"
    result = explain.explain(model, text, num_samples=40, seed=0, num_features=5)
    probabilities = model.predict_proba([text])[0]
    assert result["label"] == model.class_names[int(probabilities.argmax())]
    assert list(result["probabilities"].values()) == pytest.approx(probabilities.tolist(), abs=1e-6)
    assert result["model_calls"] == 2 and set(result["classes"]) == set(model.class_names)
    assert all(len(words) == 5 for words in result["classes"].values())
    for span in result["spans"]:
        assert text[span["start"]:span["end"]] == span["word"]


def test_predict_and_export_cli_errors(tmp_path):
    result = commands.run("predict", f"--model={tmp_path}", "--text=x", cwd=tmp_path)
    assert result.returncode != 0 and "is neither a SavedModel" in result.stderr
    result = commands.run("export", f"--run_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode != 0 and "is not a finished run directory" in result.stderr
