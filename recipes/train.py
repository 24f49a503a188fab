"""Trains, evaluates and exports one recipe.

    textzoo train --list
    textzoo train --recipe=minilm_l6_bbc_news --budget=quick
    textzoo train --backbone=glove_bilstm --dataset_path=tickets.csv \
        --dataset_options=text_columns=title+body,label_column=queue

A backbone and your own file (--backbone, --dataset_path) make a recipe named after the data (glove_bilstm_tickets),
as its run directory (runs/glove_bilstm_tickets-quick), export and MLflow run are.

Every recipe field can be overridden by the flag of the same name. Running the same command again after an
interruption resumes the run where it stopped.
"""

import json
import os
import pathlib
import sys

import zoo  # Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from recipes import console  # noqa: E402
from recipes import catalog  # noqa: E402
from recipes import export_flags  # noqa: E402
from recipes import tracking_flags  # noqa: E402

# === Required (or --list) ===
_RECIPE = flags.DEFINE_string("recipe", None, "The recipe to run (`--list` prints them all); or none, with "
                              "--backbone and --dataset_path: that backbone on your own file.")
_LIST = flags.DEFINE_bool("list", False, "Print the recipes (with their settings at --budget) and exit.")

# === Run ===
_BUDGET = flags.DEFINE_enum("budget", "quick", list(catalog.BUDGETS),
                            "tiny: seconds (tests); quick: minutes on a CPU; full: the published setting (GPU).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "The run directory (default: runs/<recipe>-<budget>). A "
                                  "finished run there is never overwritten; an unfinished one is resumed.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "exports", "Where the SavedModel is exported "
                                  "(<export_dir>/<model_name>/<version>/); empty to skip the export.")
_SEED = flags.DEFINE_integer("seed", zoo.DEFAULT_SEED, "Seed of the splits, the initialisation and the shuffling.")
_OFFLINE = flags.DEFINE_bool("offline", None, "Skip network sources of data and weights (default: $TEXTZOO_OFFLINE).")

# === Runtime ===
_DTYPE_POLICY = flags.DEFINE_enum(
    "dtype_policy", "auto", ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
    "Keras dtype policy. auto: mixed_float16 on a GPU, mixed_bfloat16 for transformers on CPUs with native "
    "bfloat16 (AVX512_BF16/AMX), float32 otherwise. The export computes in float32 whatever trained.")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", None, "Compile with XLA (default: transformers on a GPU, where it "
                                 "pays; it was slower on CPUs). Runs with XLA are not deterministic (Keras compiles "
                                 "nothing with XLA under op determinism).")
_DETERMINISTIC = flags.DEFINE_bool("deterministic", None, "Deterministic ops (tf.config.experimental."
                                   "enable_op_determinism); default: wherever XLA is off. On a GPU machine the n-gram "
                                   "model then trains on the CPU (its sparse product has no deterministic GPU "
                                   "kernel); --nodeterministic lets it use the GPU.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                              "tf.distribute strategy. multi_worker reads TF_CONFIG; tpu reads --tpu.")
_TPU = flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu.")
_LOGICAL_CPU_DEVICES = flags.DEFINE_integer("logical_cpu_devices", None, "Split the CPU into this many logical "
                                            "devices (to try --strategy=mirrored without GPUs).")

def _hidden_units(values):
    try:
        return [] if values == ["none"] else [int(u) for u in values]
    except ValueError:
        raise app.UsageError(f"--head_hidden_units takes integers, received {values}.")


_NONE = lambda empty: lambda value: empty if value in ("none", ["none"]) else value  # noqa: E731

# === Recipe field overrides: each flag given replaces the recipe field of its name ===
# field: (flag definer, help, its enum values or None, what turns the flag's value into the field's, or None).
_OVERRIDES = {
    "backbone": (flags.DEFINE_string, "Backbone name.", None, None),
    "dataset": (flags.DEFINE_string, "Dataset name.", None, None),
    "dataset_path": (flags.DEFINE_string, "A local file or directory holding the dataset.", None, None),
    "dataset_options": (flags.DEFINE_list, "Dataset reader options as key=value (lists with +), e.g. "
                        "text_columns=title+body,label_column=y.", None,
                        lambda items: catalog.parse_key_values(items, "dataset_options")),
    "head": (flags.DEFINE_enum, "Head type; auto: by number of classes.", ["auto", "sigmoid", "softmax"], None),
    "head_hidden_units": (flags.DEFINE_list, "Hidden Dense+ReLU layers of the head, e.g. 64,32; 'none' for no "
                          "hidden layer.", None, _hidden_units),
    "head_dropout": (flags.DEFINE_float, "Dropout after each hidden layer of the head.", None, None),
    "sequence_length": (flags.DEFINE_integer, "Tokens per text (BERT, RNN).", None, None),
    "batch_size": (flags.DEFINE_integer, "Batch size per replica.", None, None),
    "bucket_width": (flags.DEFINE_integer, "Batch by token length in buckets this wide, each batch padded to its "
                     "longest text (BERT); 0 pads every batch to sequence_length.", None, lambda width: width or None),
    "learning_rate": (flags.DEFINE_float, "Peak learning rate.", None, None),
    "epochs": (flags.DEFINE_integer, "Maximum number of epochs.", None, None),
    "warmup_fraction": (flags.DEFINE_float, "Share of steps of linear warm-up (BERT).", None, None),
    "weight_decay": (flags.DEFINE_float, "Decoupled weight decay (AdamW).", None, None),
    "patience": (flags.DEFINE_integer, "Early stopping: epochs without a better validation loss.", None, None),
    "max_examples": (flags.DEFINE_integer, "Stratified cap on every split's size; 0 for none (every example: "
                     "the quick budget samples large training and validation splits down, and says so).", None,
                     lambda n: n or None),
    "balance": (flags.DEFINE_enum, "Class balancing of train.", ["none", "downsample", "class_weight"],
                _NONE(None)),
    "clean": (flags.DEFINE_list, "Text cleaning steps: html, lower, punctuation; 'none' for none.", None, _NONE([])),
    "backbone_options": (flags.DEFINE_list, "Backbone options as key=value, e.g. cell=gru,layers=2,"
                         "bidirectional=false.", None,
                         lambda items: catalog.parse_key_values(items, "backbone_options")),
}
_OVERRIDE_FLAGS = {field: define(field, None, help=help_text, **({"enum_values": values} if values else {}))
                   for field, (define, help_text, values, _) in _OVERRIDES.items()}


def overrides_from_flags():
    """The recipe fields the command line sets, as the recipe holds them."""
    overrides = {}
    for field, flag in _OVERRIDE_FLAGS.items():
        if flag.value is not None:
            convert = _OVERRIDES[field][3]
            overrides[field] = convert(flag.value) if convert else flag.value
    return overrides


def print_recipes(budget):
    print(f"{'recipe':32s} {'backbone':13s} {'dataset':14s} {'seq':>4s} {'batch':>5s} {'lr':>8s} {'epochs':>6s}")
    for name in catalog.names():
        r = catalog.resolve(name, budget)
        print(f"{name:32s} {r['backbone']:13s} {r['dataset']:14s} {str(r['sequence_length']):>4s} "
              f"{r['batch_size']:>5d} {r['learning_rate']:>8.0e} {r['epochs']:>6d}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}. Flags take the form --name=value.")
    if _LIST.value:
        print_recipes(_BUDGET.value)
        return 0
    try:
        overrides = overrides_from_flags()
    except ValueError as e:
        raise app.UsageError(str(e))
    backbone, dataset_path = overrides.get("backbone"), overrides.get("dataset_path")
    if not _RECIPE.value and not (backbone and dataset_path):
        raise app.UsageError("--recipe is required, or --backbone with --dataset_path to train on your own file "
                             "(--list shows the recipes).")
    if overrides.get("dataset") == "custom" and not dataset_path:
        raise app.UsageError("--dataset=custom reads your own file: pass --dataset_path=FILE (CSV, TSV, JSON or "
                             "JSONL; a directory of train/validation/test files, or of several files read as one).")
    if dataset_path and not pathlib.Path(dataset_path).expanduser().exists():
        raise app.UsageError(f"--dataset_path={dataset_path}: no such file or directory.")
    if dataset_path and (not _RECIPE.value or overrides.get("dataset") == "custom"):
        # Your file is read and checked before TensorFlow is imported (resolving a recipe imports its backbone's
        # code): a mistyped column or label costs seconds, not the import. Training reuses this read.
        from zoo import datasets
        with console.input_errors():
            datasets.read("custom", dataset_path, **overrides.get("dataset_options", {}))
    try:
        recipe = (catalog.resolve(_RECIPE.value, _BUDGET.value, overrides) if _RECIPE.value
                  else catalog.for_data(backbone, dataset_path, _BUDGET.value, overrides))
    except ValueError as e:
        raise app.UsageError(str(e))
    tracking_uri = tracking_flags.tracking_uri()  # Checked before anything is imported or written.
    if _OFFLINE.value is not None:
        os.environ["TEXTZOO_OFFLINE"] = "1" if _OFFLINE.value else "0"

    from zoo import backbones
    from zoo import experiment
    from zoo import runs
    from zoo import training

    try:
        runtime = training.configure_runtime(
            seed=_SEED.value, dtype_policy=_DTYPE_POLICY.value, jit_compile=_JIT_COMPILE.value,
            strategy=_STRATEGY.value, family=backbones.family(recipe["backbone"]),
            logical_cpu_devices=_LOGICAL_CPU_DEVICES.value, tpu_address=_TPU.value,
            deterministic=_DETERMINISTIC.value)
    except ValueError as e:
        raise app.UsageError(str(e))
    try:
        run_dir = runs.choose(_OUTPUT_DIR.value or f"runs/{recipe['recipe']}-{recipe['budget']}",
                              {**recipe, "seed": _SEED.value}).path
        # Both written to after training: checked before it.
        runs.check_writable(run_dir, "--output_dir")
        if _EXPORT_DIR.value:
            runs.check_writable(_EXPORT_DIR.value, "--export_dir")
    except runs.RunDirError as e:
        raise app.UsageError(str(e))
    logging.info("Run directory: %s", run_dir)
    from zoo import export
    from zoo import tracking

    # Only the chief tracks: the other tasks of a multi-worker run train in step with it and write nothing.
    uri = tracking_uri if runtime.is_chief else None
    try:
        tracked_run = tracking.tracked_run(uri, run_dir, experiment=tracking_flags.MLFLOW_EXPERIMENT.value)
        with console.input_errors(more=(export.ExportNameError, experiment.ExportFailedError)), \
                tracked_run as tracked:
            metrics = experiment.train_and_evaluate({**recipe, "seed": _SEED.value}, run_dir, runtime,
                                                    export_dir=_EXPORT_DIR.value or None,
                                                    model_name=export_flags.MODEL_NAME.value,
                                                    allow_dataset_change=export_flags.ALLOW_DATASET_CHANGE.value,
                                                    callbacks=tracked.callbacks)
            tracked.finish(metrics)
    except KeyboardInterrupt as e:
        # Not a failure to debug: every finished epoch is backed up in the run directory (`zoo.training.resumable`).
        print(f"\nInterrupted. Run the same command again to resume {run_dir} after its last finished epoch.",
              file=sys.stderr)
        sys.exit(143 if isinstance(e, console.Terminated) else 130)
    if metrics is None:  # A multi-worker task other than the chief.
        print(json.dumps({"task": list(runtime.task), "trained": True,
                          "results": f"written by the chief to {run_dir}"}))
        return 0
    print(json.dumps({k: metrics[k] for k in ("recipe", "accuracy", "macro_f1", "weights_source", "export")
                      if k in metrics} | {"run_dir": str(run_dir)}, indent=2))
    return 0


if __name__ == "__main__":
    console.run(main)
