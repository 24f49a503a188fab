"""Exports a finished run as a TF Serving SavedModel (<export_dir>/<model_name>/<version>/) and verifies it.

    textzoo export --run_dir=runs/minilm_l6_bbc_news-quick
    textzoo export --run_dir=runs/minilm_l6_bbc_news-quick --export_dir=/srv/models --model_name=news
"""

import json
import sys

import zoo  # noqa: F401  Sets KERAS_BACKEND before keras is imported.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import console  # noqa: E402
from recipes import export_flags  # noqa: E402

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A finished run directory (with model.keras and metrics.json).")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "exports", "TF Serving model base path: the export goes to "
                                  "<export_dir>/<model_name>/<next version>/.")
_VERIFY = flags.DEFINE_bool("verify", True, "Load the export in a fresh TensorFlow-only process and check it.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    from zoo import runs

    run_dir = runs.RunDir(_RUN_DIR.value)
    try:
        run_dir.require(runs.CONFIG, runs.MODEL)
    except runs.RunDirError as e:
        raise app.UsageError(str(e))
    from zoo import export
    from zoo import text_classifier  # noqa: F401  Registers the classifier's Keras class for reading model.keras.

    try:
        path = export.export_run(run_dir.path, _EXPORT_DIR.value, model_name=export_flags.MODEL_NAME.value,
                                 verify=_VERIFY.value, allow_dataset_change=export_flags.ALLOW_DATASET_CHANGE.value)
    except export.ExportNameError as e:
        sys.exit(f"Error: {e}")  # Bad input, not a bug: one line that says what to do.
    info = json.loads((path / "export_info.json").read_text())
    print(json.dumps({"export": str(path), "size_bytes": info["size_bytes"],
                      "verification": info.get("verification", {}).get("ok")}, indent=2))


if __name__ == "__main__":
    flags.mark_flag_as_required("run_dir")
    console.run(main)
