"""One recipe, end to end: data, backbone, head, training, evaluation, files in the run directory (`zoo.runs`
names them all).
"""

import dataclasses
import logging
import math
import pathlib
import tempfile
import time
from typing import Optional

from zoo import datasets
from zoo import evaluation
from zoo import export
from zoo import runs
from zoo import text_classifier
from zoo import training


# Test texts saved with the model: an export is verified on them (and replays them to warm TF Serving up).
HELD_OUT_TEXTS = 32


class ExportFailedError(RuntimeError):
    """A run trained and evaluated, and its export failed: the run is kept finished, and the message says how to
    export it."""


@dataclasses.dataclass
class _Run:
    """One recipe's run: `run_recipe`'s arguments, and where this process writes (`run_dir`) and resumes
    from (`shared_run_dir`: the chief's run directory, for another multi-worker task)."""
    recipe: dict
    run_dir: pathlib.Path
    runtime: object
    dataset: object
    export_dir: object
    callbacks: tuple
    model_name: object
    allow_dataset_change: bool
    stages: object
    shared_run_dir: object = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What `run_recipe` gives: the metrics (metrics.json's) and the trained classifier as read back from
    model.keras, the one that was evaluated and exported; both None on a multi-worker task other than the chief."""
    metrics: Optional[dict]
    classifier: object


def train_and_evaluate(*args, **kwargs):
    """`run_recipe`'s metrics (`run_recipe`'s arguments)."""
    return run_recipe(*args, **kwargs).metrics


def run_recipe(recipe, run_dir, runtime, dataset=None, export_dir=None, callbacks=(), model_name=None,
               allow_dataset_change=False, stages=None):
    """Trains and evaluates `recipe` (a resolved catalog recipe) in `run_dir`; returns an `Outcome`.

    `stages`: called as stages(name, **details) when a stage starts (data, caching, training with its epochs and
    steps, evaluation, export), for progress displays (`benchmarks.progress.StageFile`).

    With `export_dir`, exports the model as `model_name` (default: `export.default_model_name`); a name that already
    serves a model of other data is refused before training starts, unless `allow_dataset_change`.
    Under multi-worker training only the chief writes `run_dir` and the export and returns the metrics; the other
    tasks train in step with it (their `Outcome` holds None).
    """
    run = _Run(recipe, pathlib.Path(run_dir), runtime, dataset, export_dir, tuple(callbacks), model_name,
               allow_dataset_change, stages or (lambda name, **details: None))
    if not runtime.is_chief:
        # A multi-worker task other than the chief trains in step with it and writes only to a temporary directory
        # (as the tf.distribute guide prescribes); it resumes from the chief's backup in `run_dir`.
        with tempfile.TemporaryDirectory(prefix=f"textzoo-{runtime.task[0]}-{runtime.task[1]}-") as own_dir:
            # It checks the export name as the chief does (so that both stop, or neither), and never exports.
            return _train_and_evaluate(dataclasses.replace(run, run_dir=pathlib.Path(own_dir),
                                                           shared_run_dir=run.run_dir))
    return _train_and_evaluate(run)


def _train_and_evaluate(run):
    started = time.time()
    recipe, runtime, stages = run.recipe, run.runtime, run.stages
    run.run_dir.mkdir(parents=True, exist_ok=True)
    if run.export_dir is not None:
        runs.check_writable(run.export_dir, "export_dir")  # Before the data is read and the model trained.
    stages("data")
    dataset = run.dataset or datasets.for_recipe(recipe, runtime.seed)
    print(f"Dataset {dataset.name} ({dataset.variant}, from {dataset.source['source']}): "
          + ", ".join(f"{s} {len(dataset.splits[s])}" for s in datasets.SPLITS)
          + f" examples, {dataset.num_classes} classes.")
    capped = dataset.stats.get("capped")
    if capped:  # Said, not silent: a budget's caps sample the data down.
        print(f"The {recipe['budget']} budget uses "
              + " and ".join(f"{c['used']} of {c['available']} {s}" for s, c in capped.items())
              + " examples (stratified samples); max_examples=0 (--max_examples=0) uses all of them.")
    if run.export_dir is not None:
        target = {"recipe": recipe, "dataset": dataset.summary()}
        run = dataclasses.replace(run, model_name=run.model_name or export.default_model_name(target))
        export.check_export_target(run.export_dir, run.model_name, export.data_identity(target, dataset.class_names),
                                   run.allow_dataset_change)

    train, validation, test = (dataset.splits[s] for s in datasets.SPLITS)
    stages("building the model")
    with runtime.strategy.scope():
        classifier = text_classifier.TextClassifier.from_fields(recipe, dataset.class_names)
    classifier.build_parts(train.texts)
    config = _write_config(run, classifier, dataset, started)

    fit_started = time.time()
    fitted = classifier.fit(train.texts, train.labels, validation_data=(validation.texts, validation.labels),
                            class_weight=dataset.class_weight, callbacks=run.callbacks, run_dir=run.run_dir,
                            seed=runtime.seed, jit_compile=runtime.jit_compile, stages=stages,
                            shared_run_dir=run.shared_run_dir)
    # Caching included, and the epochs an interrupted process ran before this one resumed.
    fit_seconds = time.time() - fit_started + fitted.resumed_seconds
    if not runtime.is_chief:
        logging.info("Task %s %s finished training; the chief evaluates, saves and exports.", *runtime.task)
        return Outcome(None, None)
    files = runs.RunDir(run.run_dir)
    files.write_history_json(fitted.rows)

    # The saved model is the one hand-off, read back once: the test metrics are those of that classifier, through
    # the function its export serves, and the export is made of it.
    files.save_classifier(classifier, test.texts[:HELD_OUT_TEXTS])
    model = files.load_classifier()
    metrics = _evaluate(run, model, dataset, fitted, fit_seconds)
    if "warning" in config:
        metrics["warning"] = config["warning"]
    if run.export_dir is not None:
        stages("export")
        try:
            metrics["export"] = str(export.export_run(run.run_dir, run.export_dir, metrics=metrics,
                                                      model_name=run.model_name,
                                                      allow_dataset_change=run.allow_dataset_change, model=model))
        except Exception as e:  # Whatever failed, the trained and evaluated run is kept: finished, not retrained.
            metrics.update(export_error=f"{type(e).__name__}: {e}", wall_seconds=round(time.time() - started, 2))
            files.write_metrics(metrics)
            raise ExportFailedError(
                f"{run.run_dir} finished (test accuracy {metrics['accuracy']:.4f}; metrics.json and model.keras "
                f"written), but its export to {run.export_dir} failed: {type(e).__name__}: {str(e)[:500]}. Once that "
                f"is fixed, `textzoo export --run_dir={run.run_dir} --export_dir={run.export_dir}` exports it.") from e
    metrics["wall_seconds"] = round(time.time() - started, 2)
    # metrics.json last: its presence marks a finished run.
    files.write_metrics(metrics)
    logging.info("Run %s finished: test accuracy %.4f, macro-F1 %.4f", run.run_dir, metrics["accuracy"],
                 metrics["macro_f1"])
    return Outcome(metrics, model)


def _write_config(run, classifier, dataset, started):
    """config.json: the resolved recipe, runtime, input pipeline, where the weights came from, the data, library
    versions and parameter counts."""
    core = classifier.core
    config = {
        "recipe": run.recipe,
        "head_type": classifier.head_type,
        "runtime": run.runtime.record(),
        "input": training.input_settings(classifier, run.runtime.jit_compile),
        "provenance": classifier.provenance,
        "dataset": dataset.summary(),
        "library_versions": training.library_versions(),
        "parameters": {"total": int(core.count_params()),
                       "trainable": int(sum(math.prod(w.shape) for w in core.trainable_weights))},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    }
    if classifier.provenance.get("warning"):  # Random weights where pretrained ones were wanted.
        config["warning"] = classifier.provenance["warning"]
    runs.RunDir(run.run_dir).write_config(config)
    return config


def _evaluate(run, model, dataset, fitted, fit_seconds):
    """The test metrics of `model` (the classifier model.keras holds, read back) through the function its export
    serves, with what the run was."""
    recipe, test, classifier = run.recipe, dataset.splits["test"], model
    run.stages("evaluation", examples=len(test))
    evaluation_started = time.time()
    probabilities = model.predict(test.texts)
    evaluation_seconds = time.time() - evaluation_started
    metrics = evaluation.write_evaluation(run.run_dir, test.labels, probabilities, dataset.class_names, test.texts,
                                          fitted.rows, title=recipe["recipe"])
    metrics.update({
        "recipe": recipe["recipe"], "budget": recipe["budget"], "dataset": dataset.name,
        "dataset_variant": dataset.variant, "dataset_source": dataset.source["source"],
        "backbone": recipe["backbone"], "weights_source": classifier.provenance.get("source"),
        "pretrained": classifier.provenance.get("pretrained"), "head_type": classifier.head_type,
        "best_epoch": fitted.best_epoch, "epochs_run": len(fitted.rows), "fit_seconds": round(fit_seconds, 2),
        "caching_seconds": fitted.caching_seconds and round(fitted.caching_seconds, 2),
        "evaluation_seconds": round(evaluation_seconds, 2),
        "examples": {s: len(dataset.splits[s]) for s in datasets.SPLITS},
    })
    return metrics
