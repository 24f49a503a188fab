"""MLflow tracking of runs: parameters, per-epoch metrics, test metrics, plots, report and the exported SavedModel.

Off unless a tracking URI is given: `tracked_run(None, ...)` changes nothing. Everything goes through MLflow's own
client (`mlflow.MlflowClient`), and every call is guarded: a tracking server that is down or goes away mid-run costs
one warning, never the run. The run directory stays the record (MLflow gets copies of its files), and its
`mlflow.json` says what was logged where, so a run whose tracking failed is logged afterwards from its files
(`textzoo track --run_dir=...`), and a resumed run goes on logging into the same MLflow run.

Store layout by default (`default_tracking_uri`): `mlruns/mlflow.db` (SQLite, MLflow's recommended local store) and
`mlruns/artifacts/`; `mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db` shows it.
"""

import json
import logging
import math
import os
import pathlib
import time
import urllib.parse

from zoo import runs

STATE_FILE = runs.MLFLOW_STATE
DEFAULT_EXPERIMENT = "textzoo"
# Files of the run directory logged as artifacts (when present).
RUN_ARTIFACTS = runs.ARTIFACTS
# MLflow's limits (mlflow.utils.validation): values of params are cut to this, batches to these sizes.
MAX_PARAM_LENGTH = 6000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000


def default_tracking_uri(root="."):
    """$MLFLOW_TRACKING_URI, else a SQLite store under `root`/mlruns."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = pathlib.Path(root).resolve() / "mlruns"
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def check_tracking_uri(uri):
    """`uri` where MLflow can log new runs to it; a file store (`file:///.../mlruns` or a plain path, what MLflow 2
    made by default) is refused with what to use instead, as MLflow 3 refuses it only when the first run starts."""
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme not in ("", "file") or (scheme == "" and uri in ("databricks",)):
        return uri
    path = pathlib.Path(urllib.parse.urlparse(uri).path if scheme == "file" else uri).expanduser()
    raise ValueError(f"MLflow tracking URI {uri!r} is a file store, which MLflow 3 no longer opens for new runs. Use "
                     f"a database store (sqlite:///{path.resolve() / 'mlflow.db'}) or a tracking server "
                     f"(http://host:5000); `mlflow migrate-filestore` moves the runs already in {path}.")


def _quick_failures():
    # MLflow retries a failed HTTP request 7 times with exponential backoff (minutes against a server that is down);
    # tracking must not hold training up that long. The user's own settings win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def flatten(values, prefix=""):
    """Nested dicts as {"a.b": value}; lists and other values as JSON text (MLflow params are strings)."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return flat


def numeric_metrics(values, prefix=""):
    """The finite numbers of a (nested) metrics dict, flattened; booleans, lists and text are left out."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(numeric_metrics(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = float(value)
    return flat


def params_of(config):
    """The params of a run: its resolved recipe, runtime, input pipeline and size, from config.json."""
    params = flatten(config.get("recipe", {}))
    params["head_type"] = config.get("head_type", "")
    for section in ("runtime", "input", "parameters"):
        params.update(flatten(config.get(section, {}), f"{section}."))
    return {k: v if len(v) <= MAX_PARAM_LENGTH else v[:MAX_PARAM_LENGTH - 1] + "…" for k, v in params.items()}


def tags_of(config):
    """Where the data and weights came from, as tags (searchable in the MLflow UI)."""
    dataset, provenance = config.get("dataset", {}), config.get("provenance", {})
    source = dataset.get("source") or {}
    tags = {"recipe": config.get("recipe", {}).get("recipe"), "backbone": config.get("recipe", {}).get("backbone"),
            "budget": config.get("recipe", {}).get("budget"), "dataset": dataset.get("dataset"),
            "dataset.variant": dataset.get("variant"),
            "dataset.source": source.get("source") if isinstance(source, dict) else source,
            "weights.source": provenance.get("source"), "weights.pretrained": provenance.get("pretrained"),
            "weights.warning": provenance.get("warning")}
    return {k: str(v) for k, v in tags.items() if v is not None}


class Tracker:
    """One MLflow run for one run directory. Every method is safe to call whatever the server does."""

    def __init__(self, tracking_uri, run_dir, experiment=DEFAULT_EXPERIMENT, parent_run_id=None, run_name=None,
                 tags=None):
        self.tracking_uri = tracking_uri
        self.run_dir = pathlib.Path(run_dir)
        self.experiment = experiment
        self.parent_run_id = parent_run_id
        self.run_name = run_name or self.run_dir.name
        self.extra_tags = dict(tags or {})
        self.failure = None
        self.run_id = None
        self._client = None
        self._logged_epochs = 0
        self._params_logged = False

    # --- state kept beside the run's files --------------------------------------------------------------------
    def _state(self):
        path = self.run_dir / STATE_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_state(self, status):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {"tracking_uri": self.tracking_uri, "experiment": self.experiment, "run_id": self.run_id,
                 "parent_run_id": self.parent_run_id, "status": status, "logged_epochs": self._logged_epochs,
                 "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.failure:
            state["error"] = self.failure
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    def _guard(self, what, call, *args, **kwargs):
        """Runs an MLflow call; the first failure is one warning, after which this tracker logs nothing more."""
        if self.failure:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as e:  # Any failure of the tracking server or store: the run goes on.
            self.failure = f"{what}: {type(e).__name__}: {str(e)[:500]}"
            logging.warning(
                "MLflow tracking at %s failed (%s). Training goes on and everything is in %s; log it there later "
                "with: textzoo track --run_dir=%s --mlflow_tracking_uri=%s", self.tracking_uri,
                self.failure, self.run_dir, self.run_dir, self.tracking_uri)
            self._save_state("failed")
            return None

    # --- the run ---------------------------------------------------------------------------------------------
    def start(self):
        """Creates the MLflow run, or reopens the one this run directory logged to before (a resumed run)."""
        _quick_failures()
        import mlflow

        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        state = self._state()
        if state.get("run_id") and state.get("tracking_uri") == self.tracking_uri:
            run = self._guard("reopening the run", self._find_run, state["run_id"])
            if self.failure:
                return self
            if run is not None:
                self.run_id = run.info.run_id
                self._logged_epochs = state.get("logged_epochs", 0)
                self._guard("reopening the run", self._client.update_run, self.run_id, status="RUNNING")
                self._save_state("running")
                return self
        experiment_id = self._guard("opening the experiment", self._experiment_id)
        if experiment_id is None:
            return self
        tags = {**self.extra_tags, "textzoo.run_dir": str(self.run_dir.resolve())}
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        run = self._guard("creating the run", self._client.create_run, experiment_id, tags=tags,
                          run_name=self.run_name)
        if run is not None:
            self.run_id = run.info.run_id
            self._save_state("running")
        return self

    def _find_run(self, run_id):
        """The run, or None where this store has no such run (deleted, or logged to another store)."""
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_run(run_id)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _experiment_id(self):
        found = self._client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        artifact_location = None
        if self.tracking_uri.startswith("sqlite:///"):
            # Beside the database, not MLflow's default of ./mlruns under whatever directory the process runs in.
            store = pathlib.Path(self.tracking_uri[len("sqlite:///"):]).parent
            artifact_location = (store / "artifacts").resolve().as_uri()
        return self._client.create_experiment(self.experiment, artifact_location=artifact_location)

    @property
    def active(self):
        return self.run_id is not None and not self.failure

    def log_params_and_tags(self):
        """The resolved recipe, runtime and input pipeline (config.json) as params; data and weights as tags."""
        config = runs.RunDir(self.run_dir).config()
        if not self.active or self._params_logged or config is None:
            return
        from mlflow.entities import Param, RunTag

        params = [Param(k, v) for k, v in sorted(params_of(config).items())]
        tags = [RunTag(k, v) for k, v in tags_of(config).items()]
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self._guard("logging params", self._client.log_batch, self.run_id,
                        params=params[i:i + MAX_PARAMS_PER_BATCH], tags=tags if i == 0 else [])
        self._params_logged = True

    def log_history(self):
        """The epochs of history.jsonl not logged yet, one MLflow step per epoch (the run directory's own record,
        so a resumed run logs each epoch once, and a late `recipes.track` logs them all)."""
        rows = runs.RunDir(self.run_dir).history()
        if not self.active or not rows:
            return
        from mlflow.entities import Metric

        new = [r for r in rows if r.get("epoch", 0) > self._logged_epochs]
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, int(row["epoch"]))
                   for row in new for key, value in numeric_metrics(row).items() if key != "epoch"]
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self._guard("logging epochs", self._client.log_batch, self.run_id,
                        metrics=metrics[i:i + MAX_METRICS_PER_BATCH])
            if self.failure:
                return
        if new:
            self._logged_epochs = max(int(r["epoch"]) for r in new)
            self._save_state("running")

    def log_metrics(self, values, prefix=""):
        """Finite numbers of `values` (nested dicts flattened), at step 0."""
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in numeric_metrics(values, prefix).items()]
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self._guard("logging metrics", self._client.log_batch, self.run_id,
                        metrics=metrics[i:i + MAX_METRICS_PER_BATCH])

    def log_artifact(self, path, artifact_path=None):
        if self.active and pathlib.Path(path).exists():
            log = self._client.log_artifacts if pathlib.Path(path).is_dir() else self._client.log_artifact
            self._guard(f"logging {path}", log, self.run_id, str(path), artifact_path)

    def finish(self, metrics=None):
        """Logs a finished run's files: test metrics, history, plots, report, predictions, the export; ends the
        MLflow run as FINISHED."""
        if not self.active:
            return
        metrics = metrics if metrics is not None else (runs.RunDir(self.run_dir).metrics() or {})
        self.log_params_and_tags()
        self.log_history()
        test = {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "examples", "per_class")}
        self.log_metrics(test, "test.")
        self.log_metrics(metrics.get("per_class", {}), "test.per_class.")
        for name in RUN_ARTIFACTS:
            self.log_artifact(self.run_dir / name)
        if metrics.get("export"):
            export_path = pathlib.Path(metrics["export"])
            # The SavedModel as TF Serving loads it: <model name>/<version>/.
            self.log_artifact(export_path, f"saved_model/{export_path.parent.name}/{export_path.name}")
            self._guard("tagging the export", self._client.set_tag, self.run_id, "export", str(export_path))
        self.end("FINISHED")

    def end(self, status):
        if self.active:
            self._guard("ending the run", self._client.set_terminated, self.run_id, status=status)
        if self.run_id is not None:
            self._save_state("logged" if status == "FINISHED" and not self.failure
                             else "failed" if self.failure else status.lower())


def epoch_callback(tracker):
    """A Keras callback that logs each finished epoch from history.jsonl (the run's own record: `zoo.training.fit`
    writes it after the whole-model validation, which later callbacks than this one compute)."""
    import keras

    class MlflowEpochs(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            tracker.log_params_and_tags()
            tracker.log_history()  # Epochs of an interrupted run, if it is resumed.

        def on_epoch_begin(self, epoch, logs=None):
            tracker.log_history()

        def on_train_end(self, logs=None):
            tracker.log_history()

    return MlflowEpochs()


class tracked_run:
    """`with tracked_run(uri, run_dir) as tracker:` ... `tracker.finish(metrics)`; with uri None, nothing is
    tracked (`tracker` is None, `callbacks` empty). An exception ends the MLflow run as FAILED (KILLED for Ctrl-C)
    and goes on."""

    def __init__(self, tracking_uri, run_dir, **options):
        self.tracker = Tracker(tracking_uri, run_dir, **options) if tracking_uri else None

    @property
    def callbacks(self):
        return [epoch_callback(self.tracker)] if self.tracker else []

    def __enter__(self):
        if self.tracker:
            self.tracker.start()
        return self

    def finish(self, metrics=None):
        if self.tracker:
            self.tracker.finish(metrics)

    def __exit__(self, kind, error, traceback):
        if self.tracker and self.tracker.active and kind is not None:
            self.tracker.log_history()
            self.tracker.end("KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")
        return False


def log_run_dir(tracking_uri, run_dir, experiment=DEFAULT_EXPERIMENT):
    """Logs a finished run directory into MLflow (into the run its `mlflow.json` names, if that store has it).
    Returns the tracker; `tracker.failure` says what went wrong, if anything."""
    run_dir = pathlib.Path(run_dir)
    if not runs.RunDir(run_dir).finished():
        raise ValueError(f"{run_dir} is not a finished run directory (no metrics.json); finish it first by running "
                         "its training command again (it resumes).")
    state = json.loads((run_dir / STATE_FILE).read_text()) if (run_dir / STATE_FILE).exists() else {}
    tracker = Tracker(tracking_uri, run_dir, experiment=state.get("experiment", experiment),
                      parent_run_id=state.get("parent_run_id"))
    tracker.start()
    tracker.finish()
    return tracker
