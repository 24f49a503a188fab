"""Prints the label and class probabilities for texts, from an exported SavedModel or a run directory.

    python -m recipes.predict --model=exports/minilm_l6_bbc_news --text="Shares rose after the results"
    python -m recipes.predict --model=runs/ngram_linear_bbc_news-quick --text=one --text=two

--model may be a SavedModel version directory, a model directory under an export dir (its latest version is used),
or a run directory (its model.keras is loaded with the project's code).
"""

import json

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import console  # noqa: E402
from recipes import text_flags  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "An export (version dir or model dir) or a run directory.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "auto", ["auto", "bfloat16", "none"],
    "Serving-time precision, as TF Serving's flag of the same name: bfloat16 rewrites the float32 model to compute "
    "in bfloat16 when it is loaded (oneDNN); none computes in float32, as exported; auto is bfloat16 for "
    "transformers on a CPU with AVX512_BF16 or AMX (with oneDNN on), none elsewhere.")


def resolve_model(path):
    """('saved_model', version dir) or ('run', run dir) for a user-given path (`zoo.served.resolve`)."""
    from zoo import served

    try:
        return served.resolve(path)
    except served.ModelPathError as e:
        raise app.UsageError(f"--model={e}")


def load(kind, path):
    """The model at `path` (`resolve_model`): the export's serving_default, or a run's `zoo.TextClassifier`; with
    its backbone's name (None where an export does not say)."""
    if kind == "saved_model":
        from zoo import served

        model = served.ServedModel(path)
        return model, model.info.get("backbone")
    from zoo import runs
    from zoo import text_classifier  # noqa: F401  Registers the classifier's Keras class for reading model.keras.

    model = runs.RunDir(path).load_classifier()
    return model, model.backbone_name


def main(argv):
    texts = text_flags.texts(argv)
    kind, path = resolve_model(_MODEL.value)
    from zoo import backbones
    from zoo import export

    model, backbone = load(kind, path)
    # Set before the first prediction: graphs run after it follow it.
    export.serve_mixed_precision(_MIXED_PRECISION.value,
                                 backbones.family(backbone) if backbone in backbones.BACKBONES else None)
    class_names = model.class_names
    probabilities = model.predict_proba(texts) if kind == "saved_model" else model.predict(texts)
    labels = [class_names[i] for i in probabilities.argmax(axis=1)]
    for text, label, row in zip(texts, labels, probabilities):
        print(json.dumps({"text": text[:200], "label": label,
                          "probabilities": {c: round(float(p), 6) for c, p in zip(class_names, row)}},
                         ensure_ascii=False))


if __name__ == "__main__":
    flags.mark_flag_as_required("model")
    console.run(main)
