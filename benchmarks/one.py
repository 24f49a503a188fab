"""Benchmarks one recipe in its own process (so its peak memory is its own): train, evaluate, export, time.

Run by `benchmarks.run`; by hand: python -m benchmarks.one --recipe=ngram_linear_bbc_news --result_file=row.json
"""

import dataclasses
import json
import pathlib
import resource
import time

import zoo  # Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import tracking_flags  # noqa: E402

_RECIPE = flags.DEFINE_string("recipe", None, "Recipe to benchmark.")
_DATASET_PATH = flags.DEFINE_string("dataset_path", None, "Your data: --recipe is then of catalog.recipes(this path).")
_DATASET_OPTIONS = flags.DEFINE_list("dataset_options", None, "With --dataset_path: its reader options, key=value.")
_BUDGET = flags.DEFINE_enum("budget", "quick", ["tiny", "quick", "full"], "Recipe budget.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "benchmarks/results", "Results directory (runs/ and exports/ "
                                  "go under it).")
_RESULT_FILE = flags.DEFINE_string("result_file", None, "Where to write this recipe's result row (JSON).")
_SEED = flags.DEFINE_integer("seed", zoo.DEFAULT_SEED, "Seed.")
_DATA_SEED = flags.DEFINE_integer("data_seed", None, "Seed of the data's splits and samples (default: --seed): the "
                                  "runner's seed repeats (--seeds) train with other seeds on the same test texts.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 3, "Steps left out of the recipe's training timing.")
# The stock pipeline's steps all have one shape (3.28-3.30 s each at 32x256 on R8): two say what more would.
_FULL_STEPS = flags.DEFINE_integer("full_finetuning_steps", 2, "Timed steps of full fine-tuning, ours and keras-hub's "
                                   "stock pipeline's (transformers).")
_FULL_SECONDS = flags.DEFINE_float("full_finetuning_seconds", 10.0, "Our full fine-tuning is timed over more steps "
                                   "than --full_finetuning_steps until this many seconds (at most 50 steps): a larger "
                                   "sample of the epoch's batch lengths where steps are short.")
_FULL_WARMUP = flags.DEFINE_integer("full_finetuning_warmup", 1, "Untimed steps before those: each step function "
                                    "traces once (the stock's inputs have one shape; ours are traced for any length).")
_INFERENCE_BATCHES = flags.DEFINE_integer("inference_batches", 4, "Timed batches per inference batch size.")
_DTYPE_POLICY = flags.DEFINE_enum("dtype_policy", "auto", ["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                                  "Keras dtype policy; auto: zoo.training.configure_runtime's choice.")
_BACKBONE_OPTIONS = flags.DEFINE_list("backbone_options", None, "Backbone options over the recipe's, as key=value "
                                      "(the runner's comparisons, e.g. trainable_layers=1).")
_STAGE_FILE = flags.DEFINE_string("stage_file", None, "Where to write the running stage (JSON) for the runner's "
                                  "progress display.")
_STOCK_CACHE = flags.DEFINE_string("stock_cache", None, "A JSON file of keras-hub stock pipeline timings shared by "
                                   "the recipes of one run (the runner gives one per run): a recipe whose weights, "
                                   "sequence length, batch size and dtype policy were timed already reuses them.")
_DEEP = flags.DEFINE_bool("deep", False, "Also what depends on the backbone and the sequence length rather than the "
                          "data: served at batch 256 and in memory, the served precisions (bfloat16 at load, oneDNN "
                          "off, the bfloat16 export), keras-hub's stock pipeline with its parity, full fine-tuning "
                          "and its profile, the FLOP rates. Without it: training, evaluation, the verified export, "
                          "served examples/s at batch 32 and latency at batch 1.")
_ACCURACY_ONLY = flags.DEFINE_bool("accuracy_only", False, "Train and evaluate only: no export, no timings (the "
                                   "float32 reference of the bf16 parity check, the runner's seed repeats).")


def chunks(items, size, limit):
    out = [items[i:i + size] for i in range(0, len(items), size)]
    out = [c for c in out if len(c) == size] or out  # Full batches only, where there are any.
    return out[:limit]


def served_batches(texts, size, count):
    """The batches of `size` texts that serving is timed on: up to `count` full ones, the texts repeated to make
    at least two."""
    return chunks(texts * (-(-size * 2 // max(len(texts), 1))), size, count)


def inference_timings(export_path, model, texts, batches, deep=False):
    """Served SavedModel (end to end from raw strings, computing in float32 as exported) at batch 32 and its latency
    at batch 1; with `deep`, also served at batch 256 and in-memory predict at batch 32, on the same batches."""
    import tensorflow as tf

    from benchmarks import timing
    from zoo import export

    export.serve_mixed_precision("none")
    served_fn = timing.served(export_path)
    row = {"inference_examples_per_second": {}}
    if deep:
        in_memory = model.probabilities_fn()
        memory_fn = lambda batch: in_memory(tf.constant(batch, dtype=tf.string)).numpy()  # noqa: E731
        row["in_memory_examples_per_second"] = {}
    # Batch 256 is timed on one batch (8x the work of one of 32; 12 s for BERT at 512 tokens) with no warm-up of
    # its own: the served graph runs any batch as length-sorted chunks of 8, which the batches of 32 have warmed up.
    # In-memory predict is timed at batch 32 only, the size the served-vs-in-memory comparison uses.
    for size, count, warmup in ((32, batches, 2), (256, 1, 0)) if deep else ((32, batches, 2),):
        sized = served_batches(texts, size, count)
        row["inference_examples_per_second"][str(size)] = timing.time_batches(served_fn, sized, warmup=warmup)
        if size == 32 and deep:
            row["in_memory_examples_per_second"][str(size)] = timing.time_batches(memory_fn, sized, warmup=warmup)
    row["latency_batch_1"] = timing.latency_percentiles(served_fn, [[t] for t in texts[:60]])
    return row


def served_precisions(export_path, model, texts, batches, float32_rate, bf16_export):
    """The export served at batch 32 as a serving host may run it: as exported (float32, `float32_rate`), rewritten
    to bfloat16 at load time (TF Serving's `--mixed_precision=bfloat16`; CPUs with AVX512_BF16 or AMX), and without
    oneDNN (`TF_ENABLE_ONEDNN_OPTS=0`, a fresh process: the portable floor). With `bf16_export` (transformer rows),
    on bfloat16 CPUs, also the same weights exported computing in bfloat16 (what a bfloat16 run exported before),
    with and without oneDNN, in a temporary directory: the cliff a float32 export avoids."""
    from zoo import training

    sized = served_batches(texts, 32, batches)
    rates = {"float32": float32_rate, "bfloat16_at_load": None, "onednn_off": serve_rate_without_onednn(
        export_path, sized)}
    if training.cpu_has_bf16():
        rates.update(_bfloat16_rates(export_path, model, sized, bf16_export))
    return {"served_precision_examples_per_second_32": rates, "cpu": training.cpu_info()}


def _bfloat16_rates(export_path, model, sized, bf16_export):
    """`served_precisions`' bfloat16 rates: the export as exported (`float32_beside_bf16`), rewritten at load and
    (with `bf16_export`) the bf16 export, timed in alternating windows (`timing.alternated_rates`) so that their
    ratios come from the same minutes; then the bf16 export without oneDNN."""
    import tempfile

    from benchmarks import timing
    from zoo import classifier
    from zoo import export
    from zoo import text_classifier

    # One loaded export serves both: the rewrite follows the option set before each window (`serve_mixed_precision`).
    served = timing.served(export_path)
    as_exported = lambda: export.serve_mixed_precision("none")  # noqa: E731
    settings = {"float32_beside_bf16": (served, as_exported),
                "bfloat16_at_load": (served, lambda: export.serve_mixed_precision("bfloat16"))}
    with tempfile.TemporaryDirectory() as tmp:
        if bf16_export:
            bf16 = text_classifier.TextClassifier(model.backbone_name, model.class_names, head=model.head_type,
                                                  preprocessor=model.preprocessor,
                                                  core=classifier.computing_in(model.core, "mixed_bfloat16"))
            bf16_dir = pathlib.Path(tmp) / "bf16_export"
            export.write_saved_model(bf16, bf16_dir)
            settings["bfloat16_export"] = (timing.served(bf16_dir), as_exported)
        try:
            rates = timing.alternated_rates(settings, sized)
        finally:
            export.serve_mixed_precision("none")
        if bf16_export:
            # Where bfloat16 kernels are missing a batch takes seconds: one batch says it.
            rates["bfloat16_export_onednn_off"] = serve_rate_without_onednn(bf16_dir, sized[:1], warmup=1,
                                                                            min_seconds=0)
    return rates


def serve_rate_without_onednn(export_path, batches, warmup=2, min_seconds=1.0):
    """Examples/s of the export's serving_default on `batches`, in a fresh process with oneDNN off (it is read at
    TensorFlow's import)."""
    from benchmarks import timing

    request = {"export": str(pathlib.Path(export_path).resolve()), "batches": batches, "warmup": warmup,
               "min_seconds": min_seconds}
    return timing.in_fresh_process("benchmarks.serve_rate", request, f"Timing {export_path} without oneDNN",
                                   env={"TF_ENABLE_ONEDNN_OPTS": "0"})["examples_per_second"]


def stock_keras_hub(recipe, weights_dir, dataset, batch_size, steps, warmup, batches, ours, timed=None):
    """keras-hub's stock pipeline on the same weights, sequence length and batches: BertTextClassifier with its
    default preprocessor (fixed-length padding), `fit` on raw strings, and preprocessor + predict (unless `timed`
    gives those timings: see `timing.shared_stock_timings`); and the parity of our preprocessing with its own on its
    backbone."""
    import keras_hub

    length = recipe["sequence_length"]
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(str(weights_dir),
                                                                              sequence_length=length)
    backbone = keras_hub.models.BertBackbone.from_preset(str(weights_dir))
    if timed is None:
        timed = _time_stock(recipe, preprocessor, backbone, dataset, batch_size, steps, warmup, batches)
    return {**timed, "parity_max_abs_diff": parity(backbone, preprocessor, ours, dataset.splits["test"].texts)}


def _time_stock(recipe, preprocessor, backbone, dataset, batch_size, steps, warmup, batches):
    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    from benchmarks import timing

    model = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=dataset.num_classes,
                                                preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.AdamW(recipe["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = dataset.splits["train"]
    n = min(len(train), batch_size * (steps + warmup))
    ds = tf.data.Dataset.from_tensor_slices((train.texts[:n], train.labels[:n])).batch(batch_size)
    timer = timing.StepTimer(warmup_steps=warmup)
    model.fit(ds, epochs=1, callbacks=[timer], verbose=0)
    steady = timing.steady_state(timer.step_seconds, warmup)
    test_texts = dataset.splits["test"].texts
    sized = served_batches(test_texts, 32, batches)
    # One warm-up batch: every batch has the one padded shape, so predict traces once.
    predict_rate = timing.time_batches(lambda b: model.predict(tf.constant(b), batch_size=32, verbose=0), sized,
                                       warmup=1)
    return {
        # Mean over the timed steps, comparable with our whole-epoch rate (a mean too); the median beside it.
        "train_examples_per_second": float(batch_size * len(steady) / np.sum(steady)) if steady else None,
        "train_examples_per_second_median": float(batch_size / np.median(steady)) if steady else None,
        "train_steps_timed": len(steady),
        "inference_examples_per_second_32": predict_rate,
    }


def parity(backbone, stock_preprocessor, model, texts):
    """Max |difference| of pooled outputs: our preprocessing (`model`'s: waterfall, trimmed to the longest text)
    against the stock preprocessor (padded to sequence_length), on one backbone: padding is masked, so they must
    agree."""
    import numpy as np
    import tensorflow as tf

    from zoo import classifier

    ours = tf.function(
        lambda t: backbone(classifier.trim_padding(classifier.preprocess(model.preprocessor, t),
                                                  model.layout))["pooled_output"])
    theirs = tf.function(lambda t: backbone(stock_preprocessor(t))["pooled_output"])
    # Prefixes of several lengths, so that most texts are shorter than the sequence length and padding matters.
    words = [t.split() for t in texts[:8]]
    batch = tf.constant([" ".join(w[:k]) for w in words for k in (3, 12, 40, 400)], dtype=tf.string)
    return float(np.abs(ours(batch).numpy() - theirs(batch).numpy()).max())


def work_flops(model, config, recipe, metrics, dataset, train_shapes, seed):
    """The network's `flops.TransformerShape`, and the FLOPs of the work a transformer row timed (`benchmarks.flops`):
    the whole training run (caching the frozen features and validation included), one training epoch per example,
    and one served example, on the batch shapes those computed on (length-bucketed training and validation batches;
    length-sorted serving chunks)."""
    import keras_hub
    import numpy as np
    import tensorflow as tf

    from benchmarks import flops
    from benchmarks import timing
    from zoo import classifier
    from zoo import compat
    from zoo import training

    network = next(layer for layer in compat.all_layers(model.core) if isinstance(layer, keras_hub.models.Backbone))
    classes = 1 if metrics["head_type"] == "sigmoid" else dataset.num_classes
    shape = flops.TransformerShape.of(network, config["provenance"].get("pooling"), classes)
    split = dataset.splits["validation"]
    validation = training.input_pipeline(config["input"], split.texts, split.labels, model.preprocessor,
                                         model.layout, metrics["head_type"], seed, shuffle=False)
    trainable = recipe["backbone_options"].get("trainable_layers", "all")
    total = flops.training(shape, train_shapes, timing.batch_shapes(validation), metrics["epochs_run"], trainable)
    epoch = flops.training_epoch(shape, train_shapes, trainable)
    served = [t for batch in served_batches(dataset.splits["test"].texts, 32, _INFERENCE_BATCHES.value)
              for t in batch]
    lengths = [int(n) for start in range(0, len(served), 256)
               for n in np.asarray(model.layout.lengths(
                   classifier.preprocess(model.preprocessor, tf.constant(served[start:start + 256]))))]
    served_shapes = flops.served_batch_shapes(lengths, 32, classifier.SERVING_CHUNK)
    examples = len(dataset.splits["train"])
    architecture = {"layers": shape.num_layers, "hidden": shape.hidden, "intermediate": shape.intermediate}
    return shape, {"architecture": architecture, "train_total": total, "train_epoch_per_example": epoch / examples,
                   "served_per_example": flops.forward(shape, served_shapes) / len(lengths)}


def _keras_hub_bert(model):
    import keras_hub

    from zoo import compat

    return any(isinstance(layer, keras_hub.models.BertBackbone) for layer in compat.all_layers(model.core))


def main(argv):
    del argv
    started = time.time()
    from recipes import catalog
    from zoo import backbones
    from zoo import datasets
    from zoo import runs
    from zoo import tracking
    from zoo import training
    from benchmarks import progress
    from benchmarks import timing

    options = catalog.parse_key_values(_BACKBONE_OPTIONS.value or [], "backbone_options")
    overrides = {"backbone_options": options}
    if _DATASET_PATH.value:
        overrides["dataset_options"] = catalog.parse_key_values(_DATASET_OPTIONS.value or [], "dataset_options")
    recipe = {**catalog.resolve(_RECIPE.value, _BUDGET.value, overrides, _DATASET_PATH.value), "seed": _SEED.value}
    family = backbones.family(recipe["backbone"])
    stages = progress.StageFile(_STAGE_FILE.value)
    stages("starting TensorFlow")
    runtime = training.configure_runtime(seed=_SEED.value, dtype_policy=_DTYPE_POLICY.value, family=family)
    output = pathlib.Path(_OUTPUT_DIR.value)
    suffix = "".join(f"-{k}={v}" for k, v in sorted(options.items()))
    suffix += "" if _DTYPE_POLICY.value == "auto" else f"-{_DTYPE_POLICY.value}"
    data_seed = _SEED.value if _DATA_SEED.value is None else _DATA_SEED.value
    suffix += "" if data_seed == _SEED.value else f"-seed={_SEED.value}"  # A seed repeat: a run directory of its own.
    run_dir = runs.choose(output / "runs" / f"{recipe['recipe']}-{recipe['budget']}{suffix}", recipe).path
    stages("data")
    dataset = datasets.for_recipe(recipe, data_seed)
    timer = timing.StepTimer(warmup_steps=_WARMUP_STEPS.value)

    # One MLflow run per recipe, nested under the benchmark's (--mlflow_parent_run_id); off without a URI.
    with tracking.tracked_run(tracking_flags.tracking_uri(), run_dir,
                              experiment=tracking_flags.MLFLOW_EXPERIMENT.value,
                              parent_run_id=tracking_flags.MLFLOW_PARENT_RUN_ID.value) as tracked:
        _benchmark(tracked, recipe, run_dir, runtime, dataset, timer, stages, output, family, started)


@dataclasses.dataclass
class _Trained:
    """A benchmarked recipe once trained: what the measurements after training read."""
    recipe: dict
    config: dict
    metrics: dict
    dataset: object
    runtime: object
    run_dir: pathlib.Path
    stages: object
    model: object
    matmul_rates: object


def _against_stock(row, trained):
    """keras-hub's stock pipeline, the reference of the BERT transformers (MPNet, which keras-hub lacks, has none):
    parity, its training and serving rates against ours, the token share, the FLOP rates and our full fine-tuning
    steps, into `row`."""
    from benchmarks import timing
    from zoo import runs
    from zoo import training

    recipe, config, metrics, dataset, runtime, run_dir, stages, model, matmul_rates = (
        trained.recipe, trained.config, trained.metrics, trained.dataset, trained.runtime, trained.run_dir,
        trained.stages, trained.model, trained.matmul_rates)
    batch_size = config["input"]["batch_size"]
    weights_dir = config["provenance"]["path"]
    key = json.dumps([str(weights_dir), recipe["sequence_length"], batch_size, runtime.dtype_policy,
                      _FULL_STEPS.value, _FULL_WARMUP.value, _INFERENCE_BATCHES.value])
    timed, record = timing.shared_stock_timings(_STOCK_CACHE.value, key, recipe["recipe"])
    stages("checking parity with keras-hub's stock pipeline" if timed else "timing keras-hub's stock pipeline")
    stock = stock_keras_hub(recipe, weights_dir, dataset, batch_size, _FULL_STEPS.value, _FULL_WARMUP.value,
                            _INFERENCE_BATCHES.value, model, timed=timed)
    row["parity_max_abs_diff"] = stock.pop("parity_max_abs_diff")
    record(stock)
    # The same pipeline the training epochs ran (same seed and buckets), without the model.
    train = dataset.splits["train"]
    batches = training.input_pipeline(config["input"], train.texts, train.labels, model.preprocessor,
                                      model.layout, metrics["head_type"], runtime.seed, shuffle=True)
    shapes = timing.batch_shapes(batches)
    row["train_token_share_of_stock"] = timing.token_share(shapes, len(train), recipe["sequence_length"])
    shape, work = work_flops(model, config, recipe, metrics, dataset, shapes, runtime.seed)
    # Rates of arithmetic of training, over the whole run and over whole epochs (the report derives serving's from
    # `served_per_example` and the served rates); the report gives their shares of the matmul rates measured
    # beside them (`timing.MatmulRates`).
    row["flops"] = {**work,
                    "train_gflops_per_second_run": work["train_total"] / metrics["fit_seconds"] / 1e9,
                    "train_gflops_per_second_epoch": (work["train_epoch_per_example"]
                                                      * (row["train_examples_per_second_epoch"] or 0) / 1e9)}
    row["stock_keras_hub"] = stock
    if stock["train_examples_per_second"] and row["train_examples_per_second_epoch"]:
        row["train_speedup_vs_stock"] = row["train_examples_per_second_epoch"] / stock["train_examples_per_second"]
    row["inference_speedup_vs_stock"] = (row["inference_examples_per_second"]["32"]
                                         / stock["inference_examples_per_second_32"])
    # Last: it trains the loaded model's every layer (the timings above are done with it).
    stages("timing our full fine-tuning")
    matmul_rates.mark()
    row["full_finetuning"] = timing.full_finetuning(model, recipe, metrics["head_type"], batches, shape,
                                                    stock["train_examples_per_second"], _FULL_STEPS.value,
                                                    _FULL_WARMUP.value, runs.RunDir(run_dir).file(runs.PROFILE),
                                                    _FULL_SECONDS.value)
    matmul_rates.mark("full_finetuning")


def _test_record(run_dir, dataset):
    """The row's test texts' identity, labels and predictions (`benchmarks.stats`), from the predictions the
    evaluation wrote (those of the classifier that was exported)."""
    from benchmarks import stats
    from zoo import runs

    ids = {name: i for i, name in enumerate(dataset.class_names)}
    lines = runs.RunDir(run_dir).file(runs.PREDICTIONS).read_text().splitlines()
    test = dataset.splits["test"]
    return stats.test_record(test.texts, test.labels, [ids[json.loads(line)["predicted"]] for line in lines],
                             dataset.num_classes)


def _how_it_trained(recipe, config, metrics):
    """How training went, whole run: caching the frozen prefix's features (if any) and validation included."""
    from zoo import training

    return {
        "backbone_options": recipe["backbone_options"], "pooling": config["provenance"].get("pooling"),
        "sequence_length": recipe["sequence_length"],
        "epochs": recipe["epochs"], "epochs_run": metrics["epochs_run"], "fit_seconds": metrics["fit_seconds"],
        "caching_seconds": metrics["caching_seconds"],
        "train_examples_per_second_run": metrics["examples"]["train"] * metrics["epochs_run"] / metrics["fit_seconds"],
        "cpu": training.cpu_info(),
    }


def _benchmark(tracked, recipe, run_dir, runtime, dataset, timer, stages, output, family, started):
    from recipes import catalog
    from zoo import experiment
    from zoo import runs
    from benchmarks import determinism
    from benchmarks import progress
    from benchmarks import served_memory
    from benchmarks import timing

    # The transformer rows' FLOP rates (--deep) are reported as shares of the matmul rate measured around them.
    matmul_rates = timing.MatmulRates(enabled=family == "transformer" and _DEEP.value and not _ACCURACY_ONLY.value)
    matmul_rates.mark()
    outcome = experiment.run_recipe(recipe, run_dir, runtime, dataset=dataset,
                                    export_dir=None if _ACCURACY_ONLY.value else output / "exports",
                                    callbacks=[timer, progress.EpochProgress(stages), *tracked.callbacks],
                                    stages=stages)
    metrics, model = outcome.metrics, outcome.classifier  # The classifier evaluated and exported.
    config = runs.RunDir(run_dir).config()
    # Rows name files relative to the output directory: results move with it, and hold no clone's absolute paths.
    relative = lambda path: pathlib.Path(path).resolve().relative_to(output.resolve()).as_posix()  # noqa: E731
    trained = _how_it_trained(recipe, config, metrics)
    if _ACCURACY_ONLY.value:
        row = {"recipe": recipe["recipe"], "dataset": catalog.data_label(recipe), "backbone": recipe["backbone"],
               "examples": metrics["examples"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
               "test": _test_record(run_dir, dataset),
               "dtype_policy": runtime.dtype_policy, "run_dir": relative(run_dir), **trained, "seed": runtime.seed,
               "wall_seconds": round(time.time() - started, 1)}
        pathlib.Path(_RESULT_FILE.value).write_text(json.dumps(row, indent=2))
        tracked.finish(metrics)
        return
    batch_size = config["input"]["batch_size"]  # As the experiment decided and recorded.
    export_path = pathlib.Path(metrics["export"])
    export_info = json.loads((export_path / "export_info.json").read_text())
    row = {
        "recipe": recipe["recipe"], "budget": recipe["budget"], "dataset": catalog.data_label(recipe),
        "dataset_variant": dataset.variant, "dataset_source": dataset.source["source"],
        "backbone": recipe["backbone"], "weights_source": config["provenance"].get("source"),
        "pretrained": config["provenance"].get("pretrained"), "head": metrics["head_type"],
        "examples": metrics["examples"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "test": _test_record(run_dir, dataset), **trained,
        "batch_size": batch_size, "bucket_width": config["input"]["bucket_width"],
        **timer.summary(batch_size, len(dataset.splits["train"])),
        "export": relative(export_path), "export_size_bytes": export_info["size_bytes"],
        "parameters": config["parameters"],
        "device": runtime.device, "dtype_policy": runtime.dtype_policy, "seed": runtime.seed,
        "determinism": determinism.record(runtime),
        "run_dir": relative(run_dir), "library_versions": config["library_versions"],
    }
    matmul_rates.mark("training")
    stages("timing served inference")
    row.update(inference_timings(export_path, model, dataset.splits["test"].texts, _INFERENCE_BATCHES.value,
                                 _DEEP.value))
    stages("measuring served memory")
    row["served_memory"] = served_memory.in_fresh_process(export_path,
                                                          served_memory.request(dataset.splits["test"].texts))
    row["deep"] = _DEEP.value
    if _DEEP.value:
        deep_started = time.time()
        _deep(row, _Trained(recipe, config, metrics, dataset, runtime, run_dir, stages, model, matmul_rates),
              export_path, export_info, family)
        row["deep_seconds"] = round(time.time() - deep_started, 1)
    if matmul_rates.stages:
        row["matmul_rate_gflops"] = matmul_rates.stages
    row["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["wall_seconds"] = round(time.time() - started, 1)
    pathlib.Path(_RESULT_FILE.value).write_text(json.dumps(row, indent=2, default=str))
    if tracked.tracker:  # The benchmark's own measurements beside the run's (served rates, training rates, memory).
        tracked.tracker.log_metrics({k: v for k, v in row.items() if k not in ("examples", "parameters", "test")},
                                    "benchmark.")
    tracked.finish(metrics)


def _deep(row, trained, export_path, export_info, family):
    """--deep's measurements into `row`: the served precisions, and for pretrained keras-hub BERTs the comparison
    with keras-hub's stock pipeline (`_against_stock`)."""
    from benchmarks import progress

    model, dataset, stages, matmul_rates = trained.model, trained.dataset, trained.stages, trained.matmul_rates
    stages("timing served precisions")
    precisions = served_precisions(export_path, model, dataset.splits["test"].texts, _INFERENCE_BATCHES.value,
                                   row["inference_examples_per_second"]["32"], bf16_export=family == "transformer")
    row.update(precisions)
    matmul_rates.mark("served")
    # What was measured on which CPU, beside the export it measured.
    progress.write_json(export_path / "export_info.json", {**export_info, "served_rates": precisions}, indent=2)
    # keras-hub's stock pipeline is the reference of the BERT transformers; the others (MPNet, which keras-hub
    # lacks) have none, and their rows no FLOPs or full fine-tuning timings yet.
    if family == "transformer" and trained.config["provenance"].get("pretrained") and _keras_hub_bert(model):
        _against_stock(row, trained)


if __name__ == "__main__":
    flags.mark_flags_as_required(["recipe", "result_file"])
    app.run(main)
