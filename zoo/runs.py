"""The run directory: every file a run writes, by name, and how each is written and read. No other module spells
these names.

    config.json            resolved recipe, runtime, input pipeline, library versions, dataset summary,
                           provenance (where the weights came from)
    history.jsonl          one line per finished epoch (train and validation loss and accuracy, seconds);
    history.json           the same, written once the run has trained
    metrics.json           test accuracy, macro_f1, per class, confusion matrix, ROC-AUC (binary), timings; written
                           last: its presence marks a finished run
    report.txt             scikit-learn classification report
    confusion_matrix.png, training_curves.png
    test_predictions.jsonl one line per test example
    model.keras            the trained classifier (`zoo.TextClassifier`, computing in float32): the test metrics
                           and every export are computed from it
    held_out_texts.json    a few test texts every export of the run is verified on
    checkpoints/, tensorboard/, backup/ (only while a run is unfinished)

Importing it loads no TensorFlow (the scripts check paths before they import it).
"""

import json
import pathlib
import tempfile

CONFIG = "config.json"
HISTORY = "history.jsonl"
HISTORY_JSON = "history.json"
METRICS = "metrics.json"
REPORT = "report.txt"
CONFUSION_MATRIX = "confusion_matrix.png"
TRAINING_CURVES = "training_curves.png"
PREDICTIONS = "test_predictions.jsonl"
MODEL = "model.keras"
HELD_OUT_TEXTS = "held_out_texts.json"
BACKUP = "backup"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
PROFILE = "profile"
MLFLOW_STATE = "mlflow.json"  # Which MLflow run this run directory logs to (`zoo.tracking`).

# The files of a finished run that tracking logs as artifacts.
ARTIFACTS = (CONFIG, METRICS, HISTORY_JSON, REPORT, CONFUSION_MATRIX, TRAINING_CURVES, PREDICTIONS)
# The Keras name `zoo.TextClassifier` is registered under (model.keras holds it).
CLASSIFIER_CLASS = "textzoo>TextClassifier"
# What versions before model.keras wrote instead: a model/ directory. Its runs are refused with what to do.
_LEGACY_MODEL = "model/classifier.json"


class RunDirError(ValueError):
    """A directory that is not the run directory a command needs (unfinished, another recipe's, no model)."""


class RunDir:
    """One run directory: the paths of its files, and their reading and writing.

        run = RunDir("runs/minilm_l6_bbc_news-quick")
        run.metrics()          # metrics.json, or None before the run has finished
        run.load_classifier()  # model.keras
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __fspath__(self):
        return str(self.path)

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    def file(self, name):
        return self.path / name

    @property
    def backup_dir(self):
        return self.path / BACKUP

    @property
    def best_weights(self):
        return self.path / CHECKPOINTS / "best.weights.h5"

    @property
    def history_file(self):
        return self.path / HISTORY

    @property
    def tensorboard_dir(self):
        return self.path / TENSORBOARD

    @property
    def model_file(self):
        return self.path / MODEL

    def finished(self):
        return (self.path / METRICS).exists()

    # === JSON files ===

    def _read(self, name):
        path = self.path / name
        return json.loads(path.read_text()) if path.exists() else None

    def _write(self, name, value):
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(json.dumps(value, indent=2, default=str))

    def config(self):
        """config.json, or None where the run has not started."""
        return self._read(CONFIG)

    def write_config(self, config):
        self._write(CONFIG, config)

    def metrics(self):
        """metrics.json, or None where the run has not finished."""
        return self._read(METRICS)

    def write_metrics(self, metrics):
        """Writes metrics.json: the run's last file, whose presence marks it finished."""
        self._write(METRICS, metrics)

    def history(self, before_epoch=None):
        """history.jsonl's epochs (those up to `before_epoch` where given), or [] where there are none."""
        path = self.history_file
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if before_epoch is None or r["epoch"] <= before_epoch]

    def write_history_json(self, rows):
        self._write(HISTORY_JSON, rows)

    def held_out_texts(self):
        """The held-out texts the run keeps for verifying its exports ([] where it keeps none)."""
        return self._read(HELD_OUT_TEXTS) or []

    # === The trained classifier ===

    def save_classifier(self, classifier, held_out_texts=()):
        """Writes model.keras (the classifier every later step of the run and every export reads) and
        held_out_texts.json (a few test texts its exports are verified on and warm TF Serving up with)."""
        self.path.mkdir(parents=True, exist_ok=True)
        classifier.save(self.model_file)
        (self.path / HELD_OUT_TEXTS).write_text(json.dumps(list(held_out_texts), ensure_ascii=False))

    def load_classifier(self):
        """The `zoo.TextClassifier` of model.keras, computing in float32 (as `fit` leaves it)."""
        self.require(MODEL)
        import keras  # Here: reading names and JSON files loads no TensorFlow.

        # Keras finds the class by its registered name, which importing zoo.text_classifier registers. Not imported
        # here: the model's training writes into this directory, so this module sits below the model.
        if keras.saving.get_registered_object(CLASSIFIER_CLASS) is None:
            raise RuntimeError(f"Import zoo.text_classifier (or use zoo.TextClassifier) before loading {self.path}: "
                               f"Keras finds {CLASSIFIER_CLASS} by the name it registers.")
        return keras.saving.load_model(self.model_file, compile=False)

    def require(self, *names):
        """Raises `RunDirError` naming what `names` of this directory are missing, and why that may be."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path} does not exist: pass a run directory (runs/<recipe>-<budget>).")
        missing = [name for name in names if not (self.path / name).exists()]
        if not missing:
            return
        if MODEL in missing and (self.path / _LEGACY_MODEL).exists():
            raise RunDirError(f"{self.path} was written by a version before {MODEL} (it holds model/): train the "
                              "recipe again with this version, or export it with the version that trained it.")
        unfinished = "" if self.finished() else " (no metrics.json: the run has not finished; run the same command "
        unfinished += "" if self.finished() else "again to resume it)"
        raise RunDirError(f"{self.path} is not a finished run directory: {missing} missing{unfinished}.")


def holds_model(path):
    """Whether `path` is a run directory with a trained model (or an older version's model/ directory)."""
    path = pathlib.Path(path)
    return (path / MODEL).exists() or (path / _LEGACY_MODEL).exists()


def check_writable(directory, what):
    """Makes `directory` (and its parents) where it is missing and checks that a file can be written in it, before
    any work that would write there: a run's output or export directory found unwritable after training lost the
    training. `what` names the flag that chose it."""
    directory = pathlib.Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".textzoo-write-check-"):
            pass
    except OSError as e:
        raise RunDirError(f"{what}={directory}: cannot write there ({e.strerror or e}). Pass a directory you can "
                          "write to.")
    return directory


def choose(output_dir, recipe):
    """The `RunDir` for `recipe`: resume an unfinished run of the same recipe, never overwrite a finished one.

    A finished run (metrics.json present) is kept, and the new run goes to `<output_dir>-2`, `-3`, ...
    """
    base = pathlib.Path(output_dir)
    candidate, n = RunDir(base), 1
    while True:
        if not candidate.path.exists() or not any(candidate.path.iterdir()):
            return candidate
        if not candidate.finished():
            previous = (candidate.config() or {}).get("recipe")
            if previous is not None and previous != recipe:
                changed = sorted(k for k in set(previous) | set(recipe) if previous.get(k) != recipe.get(k))
                raise RunDirError(
                    f"{candidate.path} holds an unfinished run of a different recipe (fields differing: {changed}). "
                    "Run it again with the same flags to resume it, or pass another --output_dir.")
            return candidate
        n += 1
        candidate = RunDir(base.with_name(f"{base.name}-{n}"))
