"""Classifies texts with an exported SavedModel or a run directory: given on the command line (printed as JSON
lines), or a whole file (written as JSON lines or CSV, scored where the file has labels).

    textzoo predict --model=exports/minilm_l6_bbc_news --text="Shares rose after the results"
    textzoo predict --model=runs/ngram_linear_bbc_news-quick --text=one --text=two
    textzoo predict --model=exports/tickets --input=new_tickets.csv --output=scored.csv --top_k=3

--model may be a SavedModel version directory, a model directory under an export dir (its latest version is used),
or a run directory (its model.keras is loaded with the project's code). --input is read as training reads a file
(CSV, TSV, JSON or JSONL with the model's text columns; or .txt, one text per line); where it has the label column,
the accuracy, macro-F1, a classification report and the confusion matrix are printed and written beside --output.
"""

import json
import sys

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import console  # noqa: E402
from recipes import text_flags  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "An export (version dir or model dir) or a run directory.")
_INPUT = flags.DEFINE_string("input", None, "A file of texts to classify: CSV, TSV, JSON, JSONL (the text columns "
                             "as in training) or .txt (one text per line). Needs --output.")
_OUTPUT = flags.DEFINE_string("output", None, "Where --input's predictions go: .jsonl (one object per text) or .csv "
                              "(a column per class probability).")
_TOP_K = flags.DEFINE_integer("top_k", None, "Also write the k most probable labels of each text, with --output.")
_TEXT_COLUMNS = flags.DEFINE_list("text_columns", None, "--input's text columns, joined with a blank line "
                                  "(default: those the model was trained on, else text).")
_LABEL_COLUMN = flags.DEFINE_string("label_column", None, "--input's label column, scored where present (default: "
                                    "the one the model was trained on, else label).")
_ENCODING = flags.DEFINE_string("encoding", "utf-8", "--input's text encoding (a Python codec name, e.g. cp1252); "
                                "bytes it cannot read become U+FFFD, counted and warned about.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Texts per request to the model.", lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --output (and its .metrics.json).")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", ["none", "bfloat16", "auto"],
    "Serving-time precision, as TF Serving's flag of the same name. none (the default) computes in float32 as "
    "exported: the answers TF Serving gives by default. bfloat16 rewrites the model to compute in bfloat16 when it "
    "is loaded (oneDNN, on CPUs with AVX512_BF16 or AMX): faster for transformers, but probabilities change in the "
    "third digit and a close call's label can change. auto is bfloat16 for transformers where the CPU has it.")


def resolve_model(path):
    """('saved_model', version dir) or ('run', run dir) for a user-given path (`zoo.served.resolve`)."""
    from zoo import served

    try:
        return served.resolve(path)
    except served.ModelPathError as e:
        raise app.UsageError(f"--model={e}")


def load(kind, path):
    """The model at `path` (`resolve_model`): the export's serving_default, or a run's `zoo.TextClassifier`; with
    its backbone's name and the recipe it was trained from (None where an export does not say)."""
    if kind == "saved_model":
        from zoo import served

        model = served.ServedModel(path)
        return model, model.info.get("backbone"), model.info.get("recipe")
    from zoo import runs
    from zoo import text_classifier  # noqa: F401  Registers the classifier's Keras class for reading model.keras.

    run = runs.RunDir(path)
    model = run.load_classifier()
    return model, model.backbone_name, run.config().get("recipe")


def _columns(recipe):
    """(text columns, label column) of --input: the flags, else the recipe's dataset options, else a file's
    defaults (`zoo.datasets`' custom reader's)."""
    from zoo import datasets

    options = {**datasets.get_spec("custom").default_options, **((recipe or {}).get("dataset_options") or {})}
    return _TEXT_COLUMNS.value or options["text_columns"], _LABEL_COLUMN.value or options["label_column"]


def _check_flags(argv):
    """The flags that need no model, checked before TensorFlow is imported."""
    if _INPUT.value is None:
        for name, flag in (("output", _OUTPUT), ("top_k", _TOP_K), ("text_columns", _TEXT_COLUMNS),
                           ("label_column", _LABEL_COLUMN)):
            if flag.value is not None:
                raise app.UsageError(f"--{name} goes with --input (a file of texts); received no --input.")
        return text_flags.texts(argv)
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}. Flags take the form --name=value.")
    if text_flags.TEXT.value:
        raise app.UsageError("Pass texts with --text or a file with --input, not both.")
    if not _OUTPUT.value:
        raise app.UsageError(f"--input={_INPUT.value} needs --output=FILE (.jsonl or .csv).")
    import pathlib

    from zoo import predictions

    if not pathlib.Path(_INPUT.value).is_file():
        raise app.UsageError(f"--input={_INPUT.value}: no such file.")
    try:  # Here before the model is loaded; `predict_file` checks again, as the Python API's entry.
        predictions.check_output(_INPUT.value, _OUTPUT.value, _OVERWRITE.value)
    except predictions.PredictionsError as e:
        raise app.UsageError(str(e))
    return None


def _print_texts(model, kind, texts):
    from zoo import predictions

    probabilities = model.predict_proba(texts) if kind == "saved_model" else model.predict(texts, verbose=0)
    for text, record in zip(texts, predictions.records(probabilities, model.class_names)):
        print(json.dumps({"text": text[:200], "label": record["label"], "probabilities": record["probabilities"]},
                         ensure_ascii=False))


def _interrupted():
    if _INPUT.value:
        return f"Interrupted: {_OUTPUT.value} was not written (an earlier file there is kept, no partial one)."
    return "Interrupted."


def _predict_file(model, kind, recipe):
    from zoo import predictions

    text_columns, label_column = _columns(recipe)
    if kind == "saved_model":
        model.batch_size = _BATCH_SIZE.value
        predict_proba = model.predict_proba
    else:
        predict_proba = lambda texts: model.predict(texts, batch_size=_BATCH_SIZE.value, verbose=0)  # noqa: E731
    with console.input_errors("--text_columns and --label_column", more=(predictions.PredictionsError,)):
        summary = predictions.predict_file(predict_proba, model.class_names, _INPUT.value, _OUTPUT.value,
                                           text_columns, label_column, top_k=_TOP_K.value, overwrite=_OVERWRITE.value,
                                           encoding=_ENCODING.value)
    if summary["texts_with_undecodable_bytes"]:
        print(f"Warning: {summary['texts_with_undecodable_bytes']} texts of {_INPUT.value} held bytes that are not "
              f"{_ENCODING.value}, each replaced by U+FFFD; if the file is in another encoding, pass --encoding "
              f"(e.g. --encoding=cp1252).", file=sys.stderr)
    if "report" in summary:
        print(summary.pop("report"))
        print(predictions.confusion_table(summary.pop("confusion_matrix"), model.class_names))
    print(json.dumps(summary, indent=2))


def main(argv):
    texts = _check_flags(argv)
    kind, path = resolve_model(_MODEL.value)
    from zoo import backbones
    from zoo import export

    model, backbone, recipe = load(kind, path)
    # Set before the first prediction: graphs run after it follow it.
    export.serve_mixed_precision(_MIXED_PRECISION.value,
                                 backbones.family(backbone) if backbone in backbones.BACKBONES else None)
    if texts is None:
        _predict_file(model, kind, recipe)
    else:
        _print_texts(model, kind, texts)


if __name__ == "__main__":
    flags.mark_flag_as_required("model")
    console.run(main, interrupted=_interrupted)
