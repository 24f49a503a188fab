"""MLflow tracking against real stores: a `mlflow server` on 127.0.0.1, a SQLite store, and a server that is down."""

import json
import logging
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import mlflow
import numpy as np
import pytest

from recipes import catalog
from zoo import experiment
from zoo import tracking
from zoo import training

REPO = pathlib.Path(__file__).resolve().parents[1]
MLFLOW = pathlib.Path(sys.executable).with_name("mlflow")


@pytest.fixture(scope="module")
def topic_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = {"sport": ["goal", "match", "league", "coach"], "money": ["shares", "profit", "bank", "stocks"]}
    rows = [f"{' '.join(rng.choice(words[t], 5))} w{i},{t}" for i, t in enumerate(["sport", "money"] * 40)]
    path = tmp_path_factory.mktemp("data") / "topics.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def recipe(path):
    return {**catalog.resolve("ngram_linear_bbc_news", "tiny", {
        "dataset": "custom", "dataset_path": str(path), "max_examples": None, "epochs": 3, "patience": 3}), "seed": 7}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    process = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
         str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            break
        except OSError:
            assert process.poll() is None, (root / "server.log").read_text()[-2000:]
            time.sleep(0.5)
    else:
        pytest.fail("mlflow server did not start: " + (root / "server.log").read_text()[-2000:])
    yield uri
    process.terminate()
    process.wait(timeout=30)


def check_logged(client, run_id, run_dir):
    run = client.get_run(run_id)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    assert run.info.status == "FINISHED"
    assert run.data.params["recipe"] == "ngram_linear_bbc_news" and run.data.params["dataset"] == "custom"
    assert run.data.params["epochs"] == "3" and run.data.params["runtime.seed"] == "7"
    assert run.data.tags["dataset.source"].startswith("local path") and "weights.source" in run.data.tags
    assert run.data.metrics["test.accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.metrics["test.macro_f1"] == pytest.approx(metrics["macro_f1"])
    val_loss = client.get_metric_history(run_id, "val_loss")
    assert [(m.step, m.value) for m in val_loss] == [(r["epoch"], pytest.approx(r["val_loss"])) for r in history]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.json", "metrics.json", "report.txt", "confusion_matrix.png", "training_curves.png",
            "saved_model"} <= artifacts
    model_dir = pathlib.Path(metrics["export"])
    saved = {a.path for a in client.list_artifacts(run_id, f"saved_model/{model_dir.parent.name}/{model_dir.name}")}
    assert f"saved_model/{model_dir.parent.name}/{model_dir.name}/saved_model.pb" in saved


# A real `mlflow server` (it starts job consumers of its own) and the CLI's process: ~1.5 min, `make test-large`.
@pytest.mark.large
def test_train_cli_logs_to_a_real_mlflow_server(server, topic_csv, tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "recipes.train", "--recipe=ngram_linear_bbc_news", "--budget=tiny", "--dataset=custom",
         f"--dataset_path={topic_csv}", "--epochs=3", "--patience=3", "--seed=7", f"--output_dir={run_dir}",
         f"--export_dir={tmp_path / 'exports'}", f"--mlflow_tracking_uri={server}", "--mlflow_experiment=cli"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((run_dir / "mlflow.json").read_text())
    assert state["status"] == "logged" and state["tracking_uri"] == server
    client = mlflow.MlflowClient(server)
    assert client.get_experiment_by_name("cli") is not None
    check_logged(client, state["run_id"], run_dir)


def test_server_down_trains_to_the_end_with_one_warning_and_logs_later(topic_csv, tmp_path, caplog):
    down = f"http://127.0.0.1:{free_port()}"  # Nothing listens there.
    run_dir = tmp_path / "run"
    runtime = training.configure_runtime(seed=7, dtype_policy="float32", family="bag_of_words")
    with caplog.at_level(logging.WARNING):
        with tracking.tracked_run(down, run_dir) as tracked:
            metrics = experiment.train_and_evaluate(recipe(topic_csv), run_dir, runtime,
                                                    export_dir=tmp_path / "exports", callbacks=tracked.callbacks)
            tracked.finish(metrics)
    warnings = [r for r in caplog.records if "MLflow tracking at" in r.getMessage()]
    assert len(warnings) == 1 and "textzoo track --run_dir=" in warnings[0].getMessage()
    assert (run_dir / "metrics.json").exists() and pathlib.Path(metrics["export"]).exists()
    assert json.loads((run_dir / "mlflow.json").read_text())["status"] == "failed"
    # Nothing lost: the finished run is logged afterwards from its files, into a store that works.
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    result = subprocess.run([sys.executable, "-m", "recipes.track", f"--run_dir={run_dir}",
                             f"--mlflow_tracking_uri={store}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    logged = json.loads(result.stdout.strip().splitlines()[-1])
    assert logged["logged"] and json.loads((run_dir / "mlflow.json").read_text())["status"] == "logged"
    check_logged(mlflow.MlflowClient(store), logged["run_id"], run_dir)


def test_tracking_off_changes_nothing(tmp_path):
    with tracking.tracked_run(None, tmp_path) as tracked:
        assert tracked.callbacks == []
        tracked.finish({"accuracy": 1.0})
    assert list(tmp_path.iterdir()) == []


# Two tiny trainings (~40 s): `make test-large`.
@pytest.mark.large
def test_an_interrupted_run_resumes_into_the_same_mlflow_run(topic_csv, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    runtime = training.configure_runtime(seed=7, dtype_policy="float32", family="bag_of_words")

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with tracking.tracked_run(store, run_dir) as tracked:
            experiment.train_and_evaluate(recipe(topic_csv), run_dir, runtime, callbacks=[*tracked.callbacks, Stop()])
    first = json.loads((run_dir / "mlflow.json").read_text())
    client = mlflow.MlflowClient(store)
    assert client.get_run(first["run_id"]).info.status == "KILLED"
    with tracking.tracked_run(store, run_dir) as tracked:
        metrics = experiment.train_and_evaluate(recipe(topic_csv), run_dir, runtime, callbacks=tracked.callbacks)
        tracked.finish(metrics)
    second = json.loads((run_dir / "mlflow.json").read_text())
    assert second["run_id"] == first["run_id"] and client.get_run(first["run_id"]).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(first["run_id"], "loss")]
    assert steps == sorted(set(steps)) == [1, 2, 3]  # Each epoch once, across the interruption.


def test_flatten_and_metrics_keep_what_mlflow_takes():
    assert tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {}}) == {"a.b": "1", "a.c": "[1, 2]",
                                                                             "d": "x", "e": "{}"}
    assert tracking.numeric_metrics({"a": 1, "b": {"c": 0.5}, "d": True, "e": float("nan"), "f": "x"}) == {
        "a": 1.0, "b.c": 0.5}
    long = tracking.params_of({"recipe": {"x": "y" * 10000}})
    assert len(long["x"]) == tracking.MAX_PARAM_LENGTH


@pytest.mark.parametrize("uri", ["file:///srv/mlruns", "./mlruns", "/srv/mlruns", "~/mlruns"])
def test_a_file_store_is_refused_with_what_to_use_instead(uri):
    with pytest.raises(ValueError) as error:
        tracking.check_tracking_uri(uri)
    message = str(error.value)
    assert message.startswith(f"MLflow tracking URI {uri!r} is a file store")
    assert "sqlite:///" in message and "mlflow.db" in message and "mlflow migrate-filestore" in message


@pytest.mark.parametrize("uri", ["sqlite:///srv/mlflow.db", "http://127.0.0.1:5000", "https://mlflow.example.com",
                                 "databricks"])
def test_stores_mlflow_logs_to_are_accepted(uri):
    assert tracking.check_tracking_uri(uri) == uri
