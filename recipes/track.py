"""Logs finished run directories into MLflow: those trained without --mlflow, or whose tracking server was down.

    textzoo track --run_dir=runs/minilm_l6_bbc_news-quick
    textzoo track --run_dir=runs/a --run_dir=runs/b --mlflow_tracking_uri=http://127.0.0.1:5000

A run that logged to the same store before (its mlflow.json) is completed in place; otherwise a new MLflow run is
made with the run's params, per-epoch metrics, test metrics, plots, report and export.
"""

import json
import sys

import zoo  # noqa: F401  Sets KERAS_BACKEND before anything imports keras.

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from recipes import console  # noqa: E402
from recipes import tracking_flags  # noqa: E402

_RUN_DIR = flags.DEFINE_multi_string("run_dir", None, "A finished run directory (repeatable).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}. Pass run directories with --run_dir=...")
    from zoo import tracking

    try:
        uri = tracking.check_tracking_uri(tracking_flags.MLFLOW_TRACKING_URI.value or tracking.default_tracking_uri())
    except ValueError as e:
        raise app.UsageError(str(e))
    failed = False
    for run_dir in _RUN_DIR.value:
        try:
            tracker = tracking.log_run_dir(uri, run_dir, tracking_flags.MLFLOW_EXPERIMENT.value)
        except ValueError as e:
            print(f"Error: {e}", file=sys.stderr)
            failed = True
            continue
        failed |= bool(tracker.failure)
        print(json.dumps({"run_dir": run_dir, "tracking_uri": uri, "run_id": tracker.run_id,
                          "logged": not tracker.failure, **({"error": tracker.failure} if tracker.failure else {})}))
    return 1 if failed else 0


if __name__ == "__main__":
    flags.mark_flag_as_required("run_dir")
    console.run(main)
