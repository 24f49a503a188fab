"""SavedModel export for TF Serving: raw strings in, probabilities and label names out, preprocessing in the graph.

Layout (TF Serving's): `<export_dir>/<model_name>/<version>/`, integer versions, a new export never overwrites an
existing version, and each version is written to a temporary directory and renamed into place.

Signatures:
- `serving_default` (Predict): `text` [batch] tf.string -> `probabilities` [batch, num_classes] float32,
  `label` [batch] string, `label_id` [batch] int64.
- `classify` (Classify API, method tensorflow/serving/classify): `inputs` [batch] serialized tf.Example with a
  `text` bytes feature -> `classes` [batch, num_classes] string, `scores` [batch, num_classes] float32.

Size: each served weight is stored once (`compat.store_served_weights_once`), the model graph once (a concrete
function), and the preprocessor is the classifier's with its vocabularies read from files
(`backbones.serving_preprocessor`): asset files in `assets/`, not graph constants.

Beside the model: `assets.extra/tf_serving_warmup_requests`, `assets/labels.txt`, `export_info.json`; and
`<export_dir>/models.config` (every model under export_dir) plus `<export_dir>/batching_parameters.txt`.
"""

import dataclasses
import datetime
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from zoo import backbones
from zoo import compat
from zoo import datasets
from zoo import runs
from zoo import text as text_lib
from zoo import training

CLASSIFY_METHOD = "tensorflow/serving/classify"
SERVING_CHECK = pathlib.Path(__file__).with_name("serving_check.py")


def _serving_fns(model, preprocessor):
    """The two endpoint functions of `model` (a `zoo.TextClassifier`) with `preprocessor` in the graph."""
    class_names = tf.constant(model.class_names)
    # The in-memory model's own function (one piece of code for text -> probabilities), a concrete function that both
    # signatures call: the graph library holds the model once (a tf.function would be traced again in SavedModel's
    # saving context, a second copy of the whole model graph in saved_model.pb).
    probabilities_of = model.probabilities_fn(preprocessor)

    # Plain functions: ExportArchive wraps them in tf.function(input_signature) itself, traced only while saving. A
    # tf.function traced here would be traced again in SavedModel's saving context and stored twice.
    def serve(text):
        probabilities = probabilities_of(text)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "label": tf.gather(class_names, label_id), "label_id": label_id}

    def classify(inputs):
        features = tf.io.parse_example(inputs, {"text": tf.io.FixedLenFeature([], tf.string, default_value="")})
        scores = probabilities_of(features["text"])
        classes = tf.tile(class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    return serve, classify, probabilities_of


# The endpoints' inputs: the names are the request keys (`"text"` for Predict; Classify sends `inputs`).
SERVE_INPUT = [tf.TensorSpec([None], tf.string, name="text")]
CLASSIFY_INPUT = [tf.TensorSpec([None], tf.string, name="inputs")]


def _set_classify_method(saved_model_dir):
    """TF2 saves every signature with the Predict method name; TF Serving's Classify API wants its own."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = pathlib.Path(saved_model_dir) / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(path.read_bytes())
    for meta_graph in proto.meta_graphs:
        if "classify" in meta_graph.signature_def:
            meta_graph.signature_def["classify"].method_name = CLASSIFY_METHOD
    path.write_bytes(proto.SerializeToString())


def write_saved_model(model, path):
    """Writes `model` (a `zoo.TextClassifier`) as a SavedModel with both signatures and a labels asset."""
    model.probabilities_of_request(["build"])  # A classifier loaded from a file has unbuilt layers until called.
    with tempfile.TemporaryDirectory() as tmp:
        # The exported preprocessor is the classifier's, its vocabularies read from files written here (SavedModel
        # copies them into assets/).
        preprocessor = backbones.serving_preprocessor(model.backbone_name, model.preprocessor,
                                                      pathlib.Path(tmp) / "vocabulary")
        serve, classify, probabilities_of = _serving_fns(model, preprocessor)
        archive = keras.export.ExportArchive()
        archive.track(model.core)
        archive.track(preprocessor)
        archive.add_endpoint("serving_default", serve, input_signature=SERVE_INPUT)
        archive.add_endpoint("classify", classify, input_signature=CLASSIFY_INPUT)
        compat.store_served_weights_once(archive, probabilities_of)
        labels = pathlib.Path(tmp) / "labels.txt"
        labels.write_text("\n".join(model.class_names) + "\n", encoding="utf-8")
        compat.add_saved_model_asset(archive, "labels", labels)
        archive.write_out(str(path), verbose=False)
    _set_classify_method(path)


# Warm-up texts are cut to what the model reads: this many characters per token of its sequence length (tokens are
# words or word pieces, a few characters each), at most WARMUP_TEXT_CHARS (enough for a 256-token BERT input). The
# replay then runs the same ops at the largest shapes real requests reach, without storing whole articles in every
# export. Models that read whole texts (bags of n-grams) get WARMUP_TEXT_CHARS.
WARMUP_CHARS_PER_TOKEN = 8
WARMUP_TEXT_CHARS = 2_000


def warmup_text_chars(sequence_length):
    """How much of a text the warm-up keeps, for a model that reads `sequence_length` tokens (None: whole texts)."""
    if not sequence_length:
        return WARMUP_TEXT_CHARS
    return min(WARMUP_TEXT_CHARS, WARMUP_CHARS_PER_TOKEN * sequence_length)


# Public-domain prose (the opening of Moby-Dick): the warm-up's texts, so that no text of the training data ships in
# an export. Repeated to the length the model reads.
_WARMUP_PROSE = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
                 "and nothing particular to interest me on shore, I thought I would sail about a little and see the "
                 "watery part of the world. ")


def warmup_texts(chars=WARMUP_TEXT_CHARS, count=8):
    """`count` texts of synthetic prose, from one sentence up to `chars` characters: the warm-up reaches the
    longest inputs the model reads without shipping any of the user's texts."""
    longest = (_WARMUP_PROSE * (chars // len(_WARMUP_PROSE) + 1))[:chars]
    return [longest[:max(len(_WARMUP_PROSE) // 4, chars * (i + 1) // count)] for i in range(count)][::-1]


def _warmup_requests(path, model_name, texts, chars=WARMUP_TEXT_CHARS):
    """TF Serving replays these at load time so the first real request does not pay for graph warm-up."""
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        texts = [text[:chars] for text in texts]
        for batch in (texts[:1], texts[:8]):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default"))
            request.inputs["text"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def next_version(model_dir):
    versions = [int(p.name) for p in pathlib.Path(model_dir).iterdir() if p.is_dir() and p.name.isdigit()] \
        if pathlib.Path(model_dir).exists() else []
    return max(versions, default=0) + 1


def write_models_config(export_dir, base_path="/models"):
    """Regenerates `<export_dir>/models.config` listing every model there (for `--model_config_file`)."""
    export_dir = pathlib.Path(export_dir)
    models = sorted(p.name for p in export_dir.iterdir()
                    if p.is_dir() and any(v.is_dir() and v.name.isdigit() for v in p.iterdir()))
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{base_path}/{name}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ latest {{ num_versions: 1 }} }}\n  }}\n"
        for name in models)
    (export_dir / "models.config").write_text(f"model_config_list {{\n{entries}}}\n")
    (export_dir / "batching_parameters.txt").write_text(
        "# Example for tensorflow_model_server --enable_batching --batching_parameters_file=...\n"
        "max_batch_size { value: 64 }\n"
        "batch_timeout_micros { value: 2000 }\n"
        "max_enqueued_batches { value: 100 }\n"
        "num_batch_threads { value: 4 }\n"
        "allowed_batch_sizes: 8\nallowed_batch_sizes: 16\nallowed_batch_sizes: 32\nallowed_batch_sizes: 64\n"
        "pad_variable_length_inputs: false\n")
    return models


class ExportNameError(ValueError):
    """A model name that is not allowed, or that already serves a model trained on other data."""


# A TF Serving model name is a directory under the model base path and a URL path segment.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_model_name(name):
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ExportNameError(f"Invalid model name {name!r}: use 1 to 128 letters, digits, '_', '.' or '-', starting "
                              "with a letter or digit (it becomes a directory and a URL path segment).")
    return name


def default_model_name(config):
    """What the model is: `<backbone>_<dataset>` for a registered dataset (a catalog recipe's own name), and
    `<backbone>_<file or directory name>` for custom data, so models of different data never share a name."""
    recipe, dataset = config["recipe"], config["dataset"]
    data = dataset["dataset"]
    if data == "custom":
        data = datasets.data_name(dataset["source"].get("path") or recipe.get("dataset_path") or "custom")
    return check_model_name(f"{recipe['backbone']}_{data}")


def data_identity(config, class_names):
    """What a served model answers about: its dataset, the dataset's variant and the label set clients receive."""
    return {"dataset": config["dataset"]["dataset"], "variant": config["dataset"]["variant"],
            "class_names": list(class_names)}


def check_export_target(export_dir, model_name, identity, allow_dataset_change=False):
    """Refuses to add a version to `<export_dir>/<model_name>` whose latest version was trained on other data (TF
    Serving would answer that model's requests with this one), unless `allow_dataset_change`."""
    check_model_name(model_name)
    model_dir = pathlib.Path(export_dir) / model_name
    latest = next_version(model_dir) - 1
    if latest < 1 or allow_dataset_change:
        return
    info_file = model_dir / str(latest) / "export_info.json"
    if not info_file.exists():
        raise ExportNameError(
            f"{model_dir} already holds version {latest}, which has no export_info.json, so what it was trained on "
            "cannot be checked. Pass another --model_name, or --allow_dataset_change to add a version anyway.")
    info = json.loads(info_file.read_text())
    existing = {"dataset": info.get("dataset", {}).get("name"), "variant": info.get("dataset", {}).get("variant"),
                "class_names": info.get("class_names")}
    differing = [k for k in identity if identity[k] != existing.get(k)]
    if differing:
        received = ", ".join(f"{k}={identity[k]!r}" for k in differing)
        served = ", ".join(f"{k}={existing.get(k)!r}" for k in differing)
        raise ExportNameError(
            f"Model name {model_name!r} already serves a model trained on other data: version {latest} has {served}, "
            f"this one {received}. Pass another --model_name, or --allow_dataset_change to make this the next "
            "version of that model.")


def directory_size(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def _export_info(model, model_name, info):
    """export_info.json's fields: the model's classes and signatures, the input limit, the time, and `info`."""
    return {
        "model_name": model_name,
        "class_names": model.class_names,
        "head_type": model.head_type,
        "backbone": model.backbone_name,
        "signatures": {
            "serving_default": {"inputs": {"text": "string [batch]"},
                                "outputs": {"probabilities": f"float32 [batch, {len(model.class_names)}]",
                                            "label": "string [batch]", "label_id": "int64 [batch]"}},
            "classify": {"inputs": {"inputs": "serialized tf.Example [batch] with bytes feature 'text'"},
                         "outputs": {"classes": "string [batch, num_classes]",
                                     "scores": "float32 [batch, num_classes]"}},
        },
        "max_input_bytes": text_lib.MAX_INPUT_BYTES,
        # How a long text is read (`zoo.windows`): None, cut at the sequence length.
        "windows": None if model.windows is None else dataclasses.asdict(model.windows),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(info or {}),
    }


def export_classifier(model, export_dir, model_name=None, info=None, verify_texts=None, verify=True, identity=None,
                      allow_dataset_change=False, warmup=None):
    """Exports `model` to `<export_dir>/<model_name>/<next version>/`, verifies it, and returns that path.

        path = export.export_classifier(classifier, "exports", "news")  # exports/news/1/

    Args:
        model: a trained `zoo.TextClassifier`.
        model_name: the served model's name; None for the classifier's own name.
        info: dict written into export_info.json (recipe, dataset, metrics ...) beside the classifier's provenance
            and the library versions.
        verify_texts: held-out texts to compare the served outputs against the in-memory model (awkward inputs,
            `AWKWARD_TEXTS`, are added).
        verify: run the serving check in a fresh process (TensorFlow and tensorflow_text only).
        identity: `data_identity(...)`; with it, a model name whose latest version has other data is refused
            (`check_export_target`) unless `allow_dataset_change`.
        warmup: texts TF Serving replays when it loads the model (`assets.extra/tf_serving_warmup_requests`);
            default `warmup_texts()`, synthetic prose: an export carries none of the training data by default.
    """
    if model.core is None:
        raise ValueError(f"{model.name} has not been trained: call fit(texts, labels) before exporting it.")
    model_name = model_name or model.name
    info = {"provenance": model.provenance, **(info or {})}
    if "library_versions" not in info:  # A run's export passes those it trained with.
        info["library_versions"] = training.library_versions()
    verify_texts = list(verify_texts or []) + AWKWARD_TEXTS
    if identity is not None:
        check_export_target(export_dir, model_name, identity, allow_dataset_change)  # Checks the name too.
    else:
        check_model_name(model_name)
    model_dir = pathlib.Path(export_dir) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=".export-", dir=model_dir))
    try:
        staged = work / "model"
        write_saved_model(model, staged)
        texts = list(verify_texts or [])[:64] or ["an example text"]
        chars = warmup_text_chars(model.layout.sequence_length)
        # Synthetic unless the caller gives its own: the held-out texts verify the export but are not shipped in it.
        _warmup_requests(staged / "assets.extra" / "tf_serving_warmup_requests", model_name,
                         list(warmup or warmup_texts(chars)), chars)
        export_info = _export_info(model, model_name, info)
        if verify:
            # The same request as the check sends, so that the same chunks run: equal to the last bit in float32.
            expected = model.probabilities_of_request(texts)
            export_info["verification"] = verify_export(staged, texts, expected, VERIFY_TOLERANCE)
        export_info["size_bytes"] = directory_size(staged)
        (staged / "export_info.json").write_text(json.dumps(export_info, indent=2, default=str))
        while True:  # Another process may take a version number between our look and our rename.
            target = model_dir / str(next_version(model_dir))
            try:
                os.rename(staged, target)
                break
            except OSError:
                if not target.exists():
                    raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_models_config(export_dir)
    logging.info("Exported %s (%.1f MB)", target, directory_size(target) / 1e6)
    return target


# Serving-time precision, as TF Serving's `--mixed_precision` flag (2.15 and later) names it: "bfloat16" has
# grappler rewrite the float32 graph to bfloat16 where oneDNN's kernels can run it, "none" serves it as exported,
# "auto" is bfloat16 for transformers on a CPU with AVX512_BF16 or AMX under oneDNN (TensorFlow's default;
# TF_ENABLE_ONEDNN_OPTS=0 turns it off): the rewrite pays for transformers only (docs/measurements.md#bf16-at-load).
MIXED_PRECISION = ("auto", "bfloat16", "none")


def serve_mixed_precision(choice="auto", family=None):
    """Sets this process's graph rewrite for serving to `choice` (one of `MIXED_PRECISION`) for a model of backbone
    family `family` (`backbones.family`; "auto" rewrites transformers only) and returns what it resolved to
    ("bfloat16" or "none"). Graphs run after it follow it, those of a SavedModel loaded before included
    (docs/measurements.md#bf16-at-load)."""
    if choice not in MIXED_PRECISION:
        raise ValueError(f"Unknown mixed precision {choice!r}. Allowed: {list(MIXED_PRECISION)}.")
    if choice == "auto":
        onednn = not training.onednn_off()
        choice = "bfloat16" if onednn and family == "transformer" and training.cpu_has_bf16() else "none"
    tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": choice == "bfloat16"})
    return choice


# Served vs in-memory probabilities: both compute in float32 (`classifier.computing_in_float32`).
VERIFY_TOLERANCE = 1e-5


def verify_export(path, texts, expected, tolerance=VERIFY_TOLERANCE):
    """Loads the export in a fresh process that imports only tensorflow and tensorflow_text, through the TF2
    signature and through a TF1 session (the way TF Serving's C++ loader runs SignatureDefs), and checks the
    outputs against `expected` and the op set against what TF Serving 2.12+ links. Raises on any failure."""
    path = pathlib.Path(path).resolve()  # The check runs from a temporary working directory.
    with tempfile.TemporaryDirectory() as tmp:
        request = pathlib.Path(tmp) / "request.json"
        request.write_text(json.dumps({"texts": list(texts), "expected": np.asarray(expected).tolist(),
                                       "tolerance": tolerance}))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # `-I`-like isolation without -I (which would drop site-packages of the venv): run the file by path from
        # a temporary cwd so nothing of ours is importable.
        result = subprocess.run([sys.executable, str(SERVING_CHECK), str(path), str(request)], cwd=tmp, env=env,
                                capture_output=True, text=True, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else None
    if result.returncode != 0 or report is None or not report.get("ok"):
        raise RuntimeError(f"Export verification failed for {path}: {report or result.stderr[-2000:]}")
    return report


# Verified beside a model's held-out texts: the in-memory and served outputs must agree on these too.
AWKWARD_TEXTS = ["", "   ", "\u00e9t\u00e9 \U0001F600 \u4e2d\u6587 \u0645\u0631\u062d\u0628\u0627"]


def export_run(run_dir, export_dir, metrics=None, model_name=None, verify=True, allow_dataset_change=False,
               model=None):
    """Exports the classifier a run directory holds (its model.keras, the one hand-off from training; `model` where
    the caller has read it already); verifies it on the held-out texts the run kept and on awkward inputs.

    The model name defaults to `default_model_name` (backbone and data); see `check_export_target` for the refusal.
    """
    run = runs.RunDir(run_dir)
    run.require(runs.CONFIG, runs.MODEL)
    config = run.config()
    model = model or run.load_classifier()
    metrics = metrics or run.metrics() or {}
    run_dir = run.path
    name = model_name or default_model_name(config)
    info = {
        "recipe": config["recipe"],
        "dataset": {"name": config["dataset"]["dataset"], "variant": config["dataset"]["variant"],
                    "source": config["dataset"]["source"]},
        "metrics": {k: metrics.get(k) for k in ("accuracy", "macro_f1", "roc_auc", "num_examples") if k in metrics},
        "provenance": config["provenance"],
        "library_versions": config.get("library_versions"),
        "run_dir": str(run_dir.resolve()),
    }
    return export_classifier(model, export_dir, name, info, run.held_out_texts(), verify=verify,
                             identity=data_identity(config, model.class_names),
                             allow_dataset_change=allow_dataset_change)
