"""Explains predictions of an exported model with LIME: the words that drove each class's probability.

    textzoo explain --model=exports/ngram_linear_bbc_news --text="The striker scored twice"
    textzoo explain --model=runs/minilm_l6_bbc_news-quick --text=... --num_samples=2000 --seed=1

Writes <output_dir>/explanation-<n>.json (probabilities, top words per class with their weights, the highlighted
spans) and explanation-<n>.html (LIME's page), numbered after those already there (a later call never overwrites
one), and prints the label, the top words, the time and the sample count.
"""

import json
import pathlib
import re

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import console  # noqa: E402
from recipes import text_flags  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "An export (version dir or model dir) or a run directory with an export.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1000, "Perturbed variants of each text LIME asks the model about "
                                    "(more: steadier weights, slower).", lower_bound=2)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the perturbations: the same seed gives the same explanation.")
_NUM_FEATURES = flags.DEFINE_integer("num_features", 10, "Words kept per class.", lower_bound=1)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "explanations", "Where the JSON and HTML files are written.")


def main(argv):
    texts = text_flags.texts(argv)
    from zoo import explain
    from zoo import served

    try:
        model = served.ServedModel(served.export_of(_MODEL.value))
    except served.ModelPathError as e:
        raise app.UsageError(f"--model={e}")
    output_dir = pathlib.Path(_OUTPUT_DIR.value)
    output_dir.mkdir(parents=True, exist_ok=True)
    for n, text in enumerate(texts, start=_first_free_number(output_dir)):
        with console.input_errors(more=(explain.ExplainError,)):
            result = explain.explain(model, text, _NUM_SAMPLES.value, _SEED.value, _NUM_FEATURES.value)
        result["model"] = {"name": model.name, "version": model.version, "path": str(model.path)}
        json_file, html_file = output_dir / f"explanation-{n}.json", output_dir / f"explanation-{n}.html"
        json_file.write_text(json.dumps({"text": text, **explain.as_json(result)}, indent=2, ensure_ascii=False),
                             encoding="utf-8")
        explain.write_html(result, html_file)
        top = ", ".join(f"{w['word']} {w['weight']:+.3f}" for w in result["classes"][result["label"]][:5])
        print(f"{result['label']} ({result['probabilities'][result['label']]:.3f}): {top or '-'}  "
              f"[{result['num_samples']} samples, {result['model_calls']} model calls, {result['seconds']:.2f} s] "
              f"-> {json_file}, {html_file}")


def _first_free_number(output_dir):
    """1 after the highest explanation-<n>.json or .html in `output_dir` (1 where there is none)."""
    taken = [int(match.group(1)) for path in output_dir.iterdir()
             if (match := re.fullmatch(r"explanation-(\d+)\.(json|html)", path.name))]
    return max(taken, default=0) + 1


if __name__ == "__main__":
    flags.mark_flag_as_required("model")
    console.run(main)
