"""Recipes end to end on a small dataset made by the test: files, real metrics, resume, distribution, bad flags."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from recipes import catalog
from zoo import datasets
from zoo import evaluation
from zoo import experiment
from zoo import runs
from zoo import training
from zoo.training import callbacks as training_callbacks
from tests import commands

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN_FILES = ("config.json", "history.json", "history.jsonl", "metrics.json", "report.txt", "confusion_matrix.png",
             "training_curves.png", "test_predictions.jsonl", "model.keras", "held_out_texts.json")

TOPICS = {
    "sport": ["goal", "match", "league", "coach", "striker", "tournament", "referee", "season"],
    "money": ["shares", "profit", "market", "bank", "investors", "revenue", "stocks", "dividend"],
    "tech": ["software", "chip", "phone", "laptop", "internet", "startup", "processor", "app"],
}


@pytest.fixture(scope="module")
def topic_csv(tmp_path_factory):
    """120 short texts in 3 separable topics, written as a custom CSV dataset."""
    rng = np.random.default_rng(0)
    filler = ["the", "a", "today", "new", "said", "after", "with", "big"]
    rows = []
    for i in range(120):
        topic = list(TOPICS)[i % 3]
        words = list(rng.choice(TOPICS[topic], 5)) + list(rng.choice(filler, 4)) + [f"id{i}"]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{topic}")
    path = tmp_path_factory.mktemp("data") / "topics.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def runtime():
    return training.configure_runtime(seed=7, dtype_policy="float32", family="bag_of_words")


def tiny_recipe(path, **overrides):
    return {**catalog.resolve("ngram_linear_bbc_news", "tiny", {
        "dataset": "custom", "dataset_path": str(path), "max_examples": None, "epochs": 8, "learning_rate": 0.05,
        "patience": 8, **overrides}), "seed": 7}


def test_recipe_end_to_end_writes_every_file_with_real_metrics(topic_csv, runtime, tmp_path):
    recipe = tiny_recipe(topic_csv)
    experiment.train_and_evaluate(recipe, tmp_path / "run", runtime)
    run = tmp_path / "run"
    for name in RUN_FILES:
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["backbone"] == "ngram_linear" and config["library_versions"]["tensorflow"]
    assert config["dataset"]["source"]["kind"] == "local"
    saved = json.loads((run / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "per_class"} <= set(saved)
    assert saved["accuracy"] > 0.8  # Three separable topics.

    # The metrics are those of the predictions file ...
    rows = [json.loads(line) for line in (run / "test_predictions.jsonl").read_text().splitlines()]
    names = saved["per_class"].keys()
    labels = np.array([list(names).index(r["label"]) for r in rows])
    probabilities = np.array([r["probabilities"] for r in rows])
    recomputed = evaluation.compute_metrics(labels, probabilities, list(names))
    assert recomputed["accuracy"] == pytest.approx(saved["accuracy"])
    assert recomputed["macro_f1"] == pytest.approx(saved["macro_f1"])
    assert sum(c["support"] for c in saved["per_class"].values()) == len(rows) == saved["num_examples"]
    # ... and the predictions are those of the saved model on the test texts.
    dataset = datasets.for_recipe(recipe, seed=7)
    model = runs.RunDir(run).load_classifier()
    np.testing.assert_allclose(model.predict(dataset.splits["test"].texts), probabilities, atol=1e-5)
    assert np.array_equal(dataset.splits["test"].labels, labels)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])


def test_binary_recipe_uses_sigmoid_head_and_reports_roc_auc(tmp_path, runtime):
    rows = [f"{'great lovely superb' if i % 2 else 'awful boring bad'} film number {i},{'pos' if i % 2 else 'neg'}"
            for i in range(60)]
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    metrics = experiment.train_and_evaluate(tiny_recipe(path), tmp_path / "run", runtime)
    assert metrics["head_type"] == "sigmoid"
    assert metrics["roc_auc"] is not None and metrics["roc_auc"] > 0.9
    assert len(json.loads((tmp_path / "run" / "test_predictions.jsonl").read_text().splitlines()[0])
               ["probabilities"]) == 2


class Interrupt(keras.callbacks.Callback):
    """Simulates a kill right after epoch `at` has been backed up."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.at:
            raise KeyboardInterrupt("simulated interruption")


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)


def test_interrupted_run_resumes_where_it_stopped(topic_csv, runtime, tmp_path):
    recipe = tiny_recipe(topic_csv, epochs=5, patience=5)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        # The interrupt callback runs before BackupAndRestore in the list: epoch 3 is not backed up.
        experiment.train_and_evaluate(recipe, run, runtime, callbacks=[Interrupt(at=3)])
    assert training.resumed_epoch(run / "backup") == 2
    assert not (run / "metrics.json").exists()
    assert runs.choose(run, recipe).path == run  # Same recipe: resume in place.

    recorder = EpochRecorder()
    metrics = experiment.train_and_evaluate(recipe, run, runtime, callbacks=[recorder])
    assert recorder.epochs == [3, 4, 5]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert metrics["epochs_run"] == 5
    # Training time counts the epochs of both processes, as the history does.
    assert metrics["fit_seconds"] >= history[-1]["seconds"] > history[1]["seconds"] > 0
    assert not (run / "backup").exists()  # Deleted once training finished.
    # A finished run is never overwritten: the next run gets a new directory.
    assert runs.choose(run, recipe).path == tmp_path / "run-2"


def test_unfinished_run_of_another_recipe_is_not_resumed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"recipe": {"epochs": 3, "batch_size": 8}}))
    with pytest.raises(runs.RunDirError, match=r"unfinished run of a different recipe .*\['epochs'\]"):
        runs.choose(run, {"epochs": 4, "batch_size": 8}).path


def test_linear_warmup_then_linear_decay():
    schedule = training.LinearWarmupLinearDecay(1.0, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


def run_cli(*args, cwd, timeout=600):
    """The installed `textzoo train`, run in `cwd` (a directory outside the clone)."""
    return commands.run("train", *args, cwd=cwd, timeout=timeout)


def test_ctrl_c_says_how_to_resume_instead_of_a_traceback(topic_csv, tmp_path):
    """SIGINT (Ctrl-C) during training: one line saying the same command resumes, exit status 130, the backed-up
    epochs kept (resuming from them: test_interrupted_run_resumes_where_it_stopped)."""
    args = ["--recipe=ngram_linear_bbc_news", "--budget=tiny", "--dataset=custom", f"--dataset_path={topic_csv}",
            f"--output_dir={tmp_path / 'run'}", "--export_dir=", "--epochs=100000", "--patience=100000"]
    process = commands.start("train", *args, cwd=tmp_path)
    history = tmp_path / "run" / "history.jsonl"
    deadline = time.time() + 300
    while not (history.exists() and len(history.read_text().splitlines()) >= 2) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (f"Interrupted. Run the same command again to resume {tmp_path / 'run'}"
                                               " after its last finished epoch.")
    finished = training.resumed_epoch(tmp_path / "run" / "backup")
    assert finished >= 1 and not (tmp_path / "run" / "metrics.json").exists()


def test_mirrored_strategy_over_two_logical_cpus(topic_csv, tmp_path):
    result = run_cli("--recipe=ngram_linear_bbc_news", "--budget=tiny", "--dataset=custom",
                     f"--dataset_path={topic_csv}", "--strategy=mirrored", "--logical_cpu_devices=2",
                     f"--output_dir={tmp_path / 'run'}", "--export_dir=", "--epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["runtime"]["strategy"] == "MirroredStrategy"
    assert config["runtime"]["replicas"] == 2
    assert (tmp_path / "run" / "metrics.json").exists()


# Each CLI run costs ~12 s of imports once the catalog is reached; the catalog's own messages (epochs=0, unknown
# backbone options, ...) are tested in-process in test_catalog.py, the CLI's turning them into usage errors here.
@pytest.mark.parametrize("args,message", [
    (["--recipe=nope"], "Unknown recipe 'nope'. Allowed: ['bert_base_bbc_news'"),
    (["--recipe=ngram_linear_bbc_news", "--dataset=nope"], "Unknown dataset 'nope'. Allowed:"),
    (["--recipe=ngram_linear_bbc_news", "--backbone=gpt"], "Unknown backbone 'gpt'. Allowed:"),
    (["--recipe=ngram_linear_bbc_news", "--budget=huge"], "value should be one of <tiny|quick|full>"),
    (["--recipe=glove_bilstm_bbc_news", "--backbone_options=cell"], "--backbone_options takes key=value items"),
    ([], "--recipe is required, or --backbone with --dataset_path"),
    (["--backbone=ngram_linear"], "--recipe is required, or --backbone with --dataset_path"),
    (["--recipe=ngram_linear_bbc_news", "--dataset=custom"], "--dataset=custom reads your own file: pass "
                                                               "--dataset_path=FILE"),
    (["--backbone=ngram_linear", "--dataset_path=missing.csv"], "--dataset_path=missing.csv: no such file"),
    (["--recipe=ngram_linear_bbc_news", "--mlflow_tracking_uri=file:///tmp/mlruns"],
     "--mlflow_tracking_uri: MLflow tracking URI 'file:///tmp/mlruns' is a file store"),
])
def test_bad_flags_give_clear_errors(args, message, tmp_path):
    result = run_cli(*args, "--export_dir=", timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_your_file_through_the_installed_commands_train_then_predict(topic_csv, tmp_path):
    """`textzoo train --backbone --dataset_path`: a recipe named after the file, its run directory and export
    under the working directory; then `textzoo predict --input --output` on the export scores the file."""
    result = run_cli("--backbone=ngram_linear", f"--dataset_path={topic_csv}", "--budget=tiny", "--epochs=3",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout[result.stdout.index("{"):])["recipe"] == "ngram_linear_topics"
    assert (tmp_path / "runs" / "ngram_linear_topics-tiny" / "metrics.json").exists()
    export = tmp_path / "exports" / "ngram_linear_topics"
    assert (export / "1" / "saved_model.pb").exists()

    result = commands.run("predict", f"--model={export}", f"--input={topic_csv}", "--output=scored.csv",
                          "--top_k=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (tmp_path / "scored.csv").read_text().splitlines()
    assert len(rows) == 121 and rows[0].startswith("line,label,probability:")
    summary = json.loads(result.stdout[result.stdout.rindex("{\n"):])
    assert summary["texts"] == 120 and 0 <= summary["accuracy"] <= 1
    assert "true \\ predicted" in result.stdout  # The confusion matrix.
    assert json.loads((tmp_path / "scored.metrics.json").read_text())["accuracy"] == summary["accuracy"]


def test_list_prints_every_recipe_with_its_settings_at_the_budget(tmp_path):
    budget = "quick"  # test_catalog.py lists the tiny budget.
    result = run_cli("--list", f"--budget={budget}", timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]
    assert [r[0] for r in rows] == catalog.names()
    for name, backbone, dataset, length, batch, rate, epochs in rows:
        recipe = catalog.resolve(name, budget)
        assert [backbone, dataset, length, int(batch), float(rate), int(epochs)] == [
            recipe["backbone"], recipe["dataset"], str(recipe["sequence_length"]), recipe["batch_size"],
            pytest.approx(recipe["learning_rate"]), recipe["epochs"]]


def test_early_stopping_carries_on_after_a_resume():
    """Best val_loss at epoch 2 of 4 run before the interruption, patience 3: one more bad epoch stops training."""
    previous = [{"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.5}, {"epoch": 3, "val_loss": 0.6},
                {"epoch": 4, "val_loss": 0.7}]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stopping = training_callbacks.ResumableEarlyStopping(previous, patience=3)
    stopping.set_model(model)
    stopping.on_train_begin()
    assert stopping.best == 0.5 and stopping.wait == 2
    stopping.on_epoch_end(4, {"val_loss": 0.8})
    assert model.stop_training

    fresh = training_callbacks.ResumableEarlyStopping([], patience=3)
    fresh.set_model(model)
    model.stop_training = False
    fresh.on_train_begin()
    for epoch, loss in enumerate([0.5, 0.6, 0.7]):
        fresh.on_epoch_end(epoch, {"val_loss": loss})
    assert not model.stop_training  # Waited 2 epochs of 3.


def write_topic_csv(path, topics, n=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = [f"{' '.join(rng.choice(TOPICS[t], 6))} row{i},{t}" for i, t in ((i, topics[i % len(topics)])
                                                                           for i in range(n))]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def test_custom_data_exports_under_its_own_name_and_a_clash_is_refused(runtime, tmp_path, monkeypatch):
    """Three CSVs trained with one catalog recipe: three models named after their data, none after the recipe's
    dataset; a fourth export under a name that serves other data is refused unless asked for."""
    from zoo import export

    # Naming is under test, not serving: test_export.py verifies exports (a fresh process, ~13 s each).
    monkeypatch.setattr(export, "verify_export", lambda *args, **kwargs: {"ok": True, "skipped": "by the test"})
    exports = tmp_path / "exports"
    data = {"tickets": ["sport", "money"], "reviews": ["sport", "tech"], "products": ["money", "tech", "sport"]}
    paths = {name: write_topic_csv(tmp_path / f"{name}.csv", topics) for name, topics in data.items()}
    for name, path in paths.items():
        metrics = experiment.train_and_evaluate(tiny_recipe(path, epochs=1), tmp_path / f"run-{name}", runtime,
                                                export_dir=exports)
        assert pathlib.Path(metrics["export"]) == exports / f"ngram_linear_{name}" / "1"
    assert sorted(p.name for p in exports.iterdir() if p.is_dir()) == [
        "ngram_linear_products", "ngram_linear_reviews", "ngram_linear_tickets"]
    assert "ngram_linear_bbc_news" not in (exports / "models.config").read_text()

    # The reviews model under the tickets name: refused (other data, other labels), before any training too.
    with pytest.raises(export.ExportNameError, match=r"'ngram_linear_tickets' already serves a model trained on "
                                                     r"other data: version 1 has variant='file:tickets.csv'"):
        export.export_run(tmp_path / "run-reviews", exports, model_name="ngram_linear_tickets", verify=False)
    with pytest.raises(export.ExportNameError, match="already serves a model trained on other data"):
        experiment.train_and_evaluate(tiny_recipe(paths["reviews"], epochs=1), tmp_path / "run-early", runtime,
                                      export_dir=exports, model_name="ngram_linear_tickets")
    assert not (tmp_path / "run-early" / "config.json").exists()
    path = export.export_run(tmp_path / "run-reviews", exports, model_name="ngram_linear_tickets", verify=False,
                             allow_dataset_change=True)
    assert path == exports / "ngram_linear_tickets" / "2"
    # The same data again is simply the next version.
    again = export.export_run(tmp_path / "run-products", exports, verify=False)
    assert again == exports / "ngram_linear_products" / "2"


def test_an_export_that_fails_after_training_keeps_the_finished_run(topic_csv, runtime, tmp_path, monkeypatch):
    """The export fails after training: the run is kept finished (metrics.json says why the export is missing, the
    same command does not train again) and the error says how to export it."""
    from zoo import export

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "verify_export", broken)
    run = tmp_path / "run"
    with pytest.raises(experiment.ExportFailedError, match=r"run finished \(test accuracy .*but its export to .* "
                                                           r"failed: OSError: .*No space left on device.*textzoo "
                                                           r"export --run_dir="):
        experiment.train_and_evaluate(tiny_recipe(topic_csv, epochs=1), run, runtime, export_dir=tmp_path / "exports")
    metrics = json.loads((run / "metrics.json").read_text())
    assert "No space left on device" in metrics["export_error"] and "export" not in metrics
    assert runs.RunDir(run).finished()
    monkeypatch.undo()
    path = export.export_run(run, tmp_path / "exports", verify=False)
    assert (path / "saved_model.pb").exists()


def test_a_budget_cap_on_your_file_is_said(topic_csv, runtime, tmp_path, capsys):
    recipe = tiny_recipe(topic_csv, epochs=1, max_examples={"train": 40, "validation": 10})
    experiment.train_and_evaluate(recipe, tmp_path / "run", runtime)
    assert ("The tiny budget uses 40 of 84 train and 10 of 12 validation examples (stratified samples); "
            "max_examples=0 (--max_examples=0) uses all of them.") in capsys.readouterr().out


def test_an_unwritable_export_dir_or_a_misspelt_option_stops_before_training(topic_csv, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_cli("--backbone=ngram_linear", f"--dataset_path={topic_csv}", "--budget=tiny",
                     f"--export_dir={blocker / 'exports'}", f"--output_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--export_dir={blocker / 'exports'}: cannot write there" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "config.json").exists()
    result = run_cli("--backbone=ngram_linear", f"--dataset_path={topic_csv}", "--dataset_options=label_col=label",
                     cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: Unknown options ['label_col'] for dataset 'custom'. Allowed: ['class_names', 'encoding', "
        "'label_column', 'test_path', 'text_columns', 'validation_path', 'variant']."]


def config_of(backbone, dataset, path=None):
    return {"recipe": {"backbone": backbone}, "dataset": {"dataset": dataset, "source": {"path": path}}}


@pytest.mark.parametrize("config,name", [
    (config_of("minilm_l6", "reuters_r8"), "minilm_l6_reuters_r8"),
    (config_of("glove_bilstm", "custom", "/d/My Tickets.csv"), "glove_bilstm_my_tickets"),
    (config_of("glove_bilstm", "custom", "/d/support/"), "glove_bilstm_support"),
    (config_of("glove_bilstm", "custom", "/q/crm/train.csv"), "glove_bilstm_crm"),
])
def test_default_model_name_says_what_the_model_is(config, name):
    from zoo import export

    assert export.default_model_name(config) == name


def test_bad_model_name_is_refused():
    from zoo import export

    for bad in ("", "../x", "a b", "-x", "x" * 129):
        with pytest.raises(export.ExportNameError, match="Invalid model name"):
            export.check_model_name(bad)


def test_bad_csv_is_one_clear_line_without_traceback(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text('text,label\nfine,sport\n"never closed,money\nok,sport\n')
    result = run_cli("--recipe=ngram_linear_bbc_news", "--budget=tiny", "--dataset=custom", f"--dataset_path={path}",
                     f"--output_dir={tmp_path / 'run'}", "--export_dir=", timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "tickets.csv:3: a quoted field" in errors[0]


def test_your_file_is_checked_before_tensorflow_is_imported(tmp_path):
    """A mistyped column is one line within the import time of the data code: a `tensorflow` that fails to import
    stands first on the path, so the command would fail differently had it been imported first."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("tensorflow was imported")\n')
    path = tmp_path / "tickets.csv"
    path.write_text("title,body,queue\nprinter,jammed again,hardware\nlogin,password expired,accounts\n")
    result = commands.run("train", "--backbone=ngram_linear", f"--dataset_path={path}",
                          "--dataset_options=text_columns=title+bodyy,label_column=queue", timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": str(fake.parent)})
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "tickets.csv:2: missing column 'bodyy'" in errors[0] and "--dataset_options=text_columns=" in errors[0]
    assert "tensorflow was imported" not in result.stderr and not (tmp_path / "runs").exists()


def free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args, logs_dir, count=2):
    """`recipes.train` as `count` MultiWorkerMirroredStrategy tasks on 127.0.0.1 (TF_CONFIG), worker 0 the chief."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    processes = []
    for index in range(count):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": tf_config}
        log = open(logs_dir / f"worker{index}.log", "a")
        processes.append(subprocess.Popen([sys.executable, "-m", "recipes.train", *args, "--strategy=multi_worker"],
                                          cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def wait_all(processes, logs_dir, timeout=300):
    for index, process in enumerate(processes):
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            code = "timeout"
        log = (logs_dir / f"worker{index}.log").read_text()[-3000:]
        assert code == 0, f"worker {index} exit {code}: {log}"


def multi_worker_args(topic_csv, out, **flags):
    flags = {"recipe": "ngram_linear_bbc_news", "budget": "tiny", "dataset": "custom", "dataset_path": topic_csv,
             "output_dir": out / "run", "export_dir": out / "exports", "epochs": 6, "patience": 6, "batch_size": 8,
             **flags}
    return [f"--{k}={v}" for k, v in flags.items()]


# Two worker processes each (1.5 and 0.9 min here): `make test-large`.
@pytest.mark.large
def test_multi_worker_training_only_the_chief_writes_and_matches_one_worker(topic_csv, tmp_path):
    workers = tmp_path / "workers"
    workers.mkdir()
    wait_all(start_workers(multi_worker_args(topic_csv, workers), workers), workers)
    run = workers / "run"
    config = json.loads((run / "config.json").read_text())
    # MultiWorkerMirroredStrategy is the public name of CollectiveAllReduceStrategy.
    assert config["runtime"]["strategy"] == "CollectiveAllReduceStrategy" and config["runtime"]["replicas"] == 2
    assert config["runtime"]["task"] == ["worker", 0]
    # One writer: one export version, no file of the other worker's anywhere in the run or export directories.
    assert [p.name for p in (workers / "exports" / "ngram_linear_topics").iterdir()] == ["1"]
    assert "written by the chief" in (workers / "worker1.log").read_text()
    assert not any("worker-1" in str(p) or "textzoo-worker" in str(p) for p in workers.rglob("*"))
    assert not (run / "backup").exists()

    # One worker with the same global batch (2 replicas x 8): the same training, step by step.
    single = tmp_path / "single"
    result = run_cli(*multi_worker_args(topic_csv, single, batch_size=16, export_dir=""), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ours, reference = (json.loads((d / "run" / "history.json").read_text()) for d in (workers, single))
    assert len(ours) == len(reference) == 6
    for a, b in zip(ours, reference):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), (a, b)
    metrics, expected = (json.loads((d / "run" / "metrics.json").read_text()) for d in (workers, single))
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-6)


# Two worker processes each (1.5 and 0.9 min here): `make test-large`.
@pytest.mark.large
def test_multi_worker_training_resumes_after_a_worker_is_killed(topic_csv, tmp_path):
    args = multi_worker_args(topic_csv, tmp_path, epochs=40, patience=40, export_dir="")
    processes = start_workers(args, tmp_path)
    metadata = tmp_path / "run" / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while time.time() < deadline and all(p.poll() is None for p in processes):
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 3:
            break
        time.sleep(0.05)
    assert all(p.poll() is None for p in processes), "training ended before the kill"
    processes[1].kill()  # Mid-epoch: the chief now waits for it in every collective.
    time.sleep(2)
    processes[0].kill()
    for p in processes:
        p.wait(timeout=60)
    backed_up = json.loads(metadata.read_text())["epoch"]
    assert 3 <= backed_up < 40
    assert not (tmp_path / "run" / "metrics.json").exists()

    wait_all(start_workers(args, tmp_path), tmp_path)  # Both restarted, with the same command.
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 41))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 40
    for index in (0, 1):  # Both resumed from the chief's backup, at the same epoch (else their steps would not pair).
        assert f"after epoch {backed_up} (BackupAndRestore)" in (tmp_path / f"worker{index}.log").read_text()


def test_cpu_info_reads_the_model_and_the_flags_that_decide_bert_speed(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n\n"
                       "processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    info = training.cpu_info(cpuinfo)
    assert info["model"] == "Test CPU" and info["cores"] == os.cpu_count()
    assert info["flags"] == {"avx2": True, "avx512f": True, "avx512_bf16": False, "amx_bf16": True}
    assert training.cpu_info(tmp_path / "missing") == {"model": "unknown", "cores": os.cpu_count(),
                                                       "flags": dict.fromkeys(training.CPU_FLAGS, False)}


def adam_in_float64(start, steps, lr, epsilon, weight_decay, decayed, clipnorm, b1=0.9, b2=0.999):
    """Keras' Adam / AdamW (decoupled decay first, global-norm clipping) in NumPy float64."""
    weights = {k: w.copy() for k, w in start.items()}
    m = {k: np.zeros_like(w) for k, w in start.items()}
    v = {k: np.zeros_like(w) for k, w in start.items()}
    for t, gradients in enumerate(steps, 1):
        norm = np.sqrt(sum((g * g).sum() for g in gradients.values()))
        for k, g in gradients.items():
            g = g * min(1.0, clipnorm / norm)
            if k in decayed:
                weights[k] -= weights[k] * weight_decay * lr
            m[k] += (g - m[k]) * (1 - b1)
            v[k] += (g * g - v[k]) * (1 - b2)
            weights[k] -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[k] / (np.sqrt(v[k]) + epsilon)
    return weights


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_fused_adam_updates_as_keras_adam_does(name):
    """Five steps of the same gradients (a sparse one, as an embedding table gets, and a dense one), with BERT's
    decay exclusions and clipping: the fused kernel gives Adam's weights computed in float64 within float32
    rounding (Keras' own update rounds more: 2e-6), and is what runs."""
    import tensorflow as tf

    kwargs = {"learning_rate": 0.05, "epsilon": 1e-6, "global_clipnorm": 1.0}
    if name == "AdamW":
        kwargs["weight_decay"] = 0.1
    rng = np.random.default_rng(0)
    start = {"table": rng.normal(size=(50, 8)), "bias": rng.normal(size=(8,))}
    steps = [(rng.choice(50, 6, replace=False), rng.normal(size=(6, 8)), rng.normal(size=(8,))) for _ in range(5)]
    dense_steps = []
    for rows, row_gradients, bias_gradient in steps:
        table_gradient = np.zeros((50, 8))
        table_gradient[rows] = row_gradients
        dense_steps.append({"table": table_gradient, "bias": bias_gradient})
    expected = adam_in_float64(start, dense_steps, 0.05, 1e-6, kwargs.get("weight_decay", 0.0), {"table"}, 1.0)
    for optimizer, tolerance in ((getattr(training, name)(**kwargs), 1e-6),
                                 (getattr(keras.optimizers, name)(**kwargs), 5e-6)):
        table, bias = (keras.Variable(start[k], dtype="float32", name=k) for k in ("table", "bias"))
        if name == "AdamW":
            optimizer.exclude_from_weight_decay(var_names=["bias"])

        @tf.function
        def step(rows, row_gradients, bias_gradient):
            sparse = tf.IndexedSlices(tf.cast(row_gradients, "float32"), rows, dense_shape=(50, 8))
            optimizer.apply_gradients([(sparse, table), (tf.cast(bias_gradient, "float32"), bias)])

        for rows, row_gradients, bias_gradient in steps:
            step(rows, row_gradients, bias_gradient)
        ops = {op.type for op in step.get_concrete_function(*steps[0]).graph.get_operations()}
        assert ("ResourceApplyAdam" in ops) == (type(optimizer) is getattr(training, name))
        np.testing.assert_allclose(table.numpy(), expected["table"], atol=tolerance, rtol=0)
        np.testing.assert_allclose(bias.numpy(), expected["bias"], atol=tolerance, rtol=0)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(getattr(training, name)(**kwargs)))
    assert type(restored) is getattr(training, name)
