"""An exported SavedModel as a user's serving stack sees it: raw strings in, probabilities and labels out.

What `recipes.predict`, `recipes.explain` and the demo page call; it reads the SavedModel only (no Python objects
of the training side), so what they show is what TF Serving serves.
"""

import json
import pathlib

import numpy as np

from zoo import runs


class ModelPathError(ValueError):
    pass


def resolve(path):
    """('saved_model', version dir) or ('run', run dir) for a user-given path, with a clear error otherwise.

    Accepted: a SavedModel version directory, a model directory of an export dir (its latest version), or a run
    directory (its model.keras)."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").exists():
        return "saved_model", path
    versions = sorted((p for p in path.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)) \
        if path.is_dir() else []
    if versions and (versions[-1] / "saved_model.pb").exists():
        return "saved_model", versions[-1]
    if runs.holds_model(path):
        return "run", path
    raise ModelPathError(f"{path} is neither a SavedModel (saved_model.pb), an export model directory (numbered "
                         "versions), nor a run directory (model.keras).")


def export_of(path):
    """The SavedModel version directory `path` names: itself, the latest version of a model directory, or the
    export a finished run directory made (its metrics.json)."""
    kind, found = resolve(path)
    if kind == "saved_model":
        return found
    exported = (runs.RunDir(found).metrics() or {}).get("export")
    if exported and (pathlib.Path(exported) / "saved_model.pb").exists():
        return pathlib.Path(exported)
    raise ModelPathError(f"{path} is a run directory without an export (its metrics.json names none, or the export "
                         "was moved): export it with `textzoo export --run_dir=...` and pass the export.")


def find_exports(paths):
    """Every SavedModel under `paths` (export dirs holding model dirs, model dirs, versions, run dirs), latest
    version of each model, by name; a path that holds none is an error naming it."""
    found = {}
    for path in paths:
        path = pathlib.Path(path)
        try:
            version = export_of(path)
            found.setdefault(version.parent.name, version)
            continue
        except ModelPathError:
            children = sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
        inside = []
        for child in children:
            try:
                inside.append(export_of(child))
            except ModelPathError:
                continue  # Not a model (a half-written export's temporary directory, say).
        if not inside:
            raise ModelPathError(f"{path} holds no exported model (a SavedModel, an export model directory, a run "
                                 "directory with an export, or a directory of them).")
        for version in inside:
            found.setdefault(version.parent.name, version)
    return found


class ServedModel:
    """A SavedModel's `serving_default`, called in batches."""

    def __init__(self, path, batch_size=256):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  Registers the tf-text ops BERT exports use.

        self.path = pathlib.Path(path)
        self._tf = tf
        self._serve = tf.saved_model.load(str(self.path)).signatures["serving_default"]
        self.class_names = (self.path / "assets" / "labels.txt").read_text(encoding="utf-8").splitlines()
        info_file = self.path / "export_info.json"
        self.info = json.loads(info_file.read_text()) if info_file.exists() else {}
        self.name, self.version = self.path.parent.name, self.path.name
        self.batch_size = batch_size

    def predict_proba(self, texts):
        """[len(texts), num_classes] float32 probabilities."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.class_names)), np.float32)
        parts = [self._serve(text=self._tf.constant(texts[i:i + self.batch_size], dtype=self._tf.string))
                 ["probabilities"].numpy() for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts)

    def describe(self):
        return {"name": self.name, "version": self.version, "class_names": self.class_names,
                "backbone": self.info.get("backbone"), "dataset": (self.info.get("dataset") or {}).get("name"),
                "test_accuracy": (self.info.get("metrics") or {}).get("accuracy")}
