"""Exports a finished run as a TF Serving SavedModel (<export_dir>/<model_name>/<version>/) and verifies it.

    python -m recipes.export --run_dir=runs/bert_small_bbc_news-quick
    python -m recipes.export --run_dir=runs/bert_small_bbc_news-quick --export_dir=/srv/models --model_name=news
"""

import json
import sys

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import export_flags  # noqa: E402

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A finished run directory (with model.keras and metrics.json).")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "exports", "TF Serving model base path: the export goes to "
                                  "<export_dir>/<model_name>/<next version>/.")
_VERIFY = flags.DEFINE_bool("verify", True, "Load the export in a fresh TensorFlow-only process and check it.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    import pathlib

    run_dir = pathlib.Path(_RUN_DIR.value)
    missing = [name for name in ("config.json", "model.keras") if not (run_dir / name).exists()]
    if missing == ["model.keras"] and (run_dir / "model" / "classifier.json").exists():
        missing = []  # The model/ directory of older versions.
    if missing:
        raise app.UsageError(f"{run_dir} is not a finished run directory: missing {missing}.")
    from zoo import export

    try:
        path = export.export_run(run_dir, _EXPORT_DIR.value, model_name=export_flags.MODEL_NAME.value,
                                 verify=_VERIFY.value, allow_dataset_change=export_flags.ALLOW_DATASET_CHANGE.value)
    except export.ExportNameError as e:
        sys.exit(f"Error: {e}")  # Bad input, not a bug: one line that says what to do.
    info = json.loads((path / "export_info.json").read_text())
    print(json.dumps({"export": str(path), "size_bytes": info["size_bytes"],
                      "verification": info.get("verification", {}).get("ok")}, indent=2))


if __name__ == "__main__":
    flags.mark_flag_as_required("run_dir")
    app.run(main)
