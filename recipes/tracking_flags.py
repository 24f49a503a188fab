"""MLflow flags shared by the training script, the benchmark and `recipes.track`."""

from absl import app
from absl import flags

MLFLOW = flags.DEFINE_bool("mlflow", False, "Track the run in MLflow (at --mlflow_tracking_uri; default "
                           "$MLFLOW_TRACKING_URI, else the SQLite store mlruns/mlflow.db of this directory).")
MLFLOW_TRACKING_URI = flags.DEFINE_string("mlflow_tracking_uri", None, "An MLflow tracking URI (http://host:5000, "
                                          "sqlite:///path.db, ...); turns --mlflow on.")
MLFLOW_EXPERIMENT = flags.DEFINE_string("mlflow_experiment", "textzoo", "The MLflow experiment runs are logged to.")
MLFLOW_PARENT_RUN_ID = flags.DEFINE_string("mlflow_parent_run_id", None, "Nest this run's MLflow run under this "
                                           "one (the benchmark passes its own to each recipe).")


def tracking_uri():
    """The tracking URI the flags ask for, or None where tracking is off; a store MLflow cannot log to is a usage
    error naming the flag or variable it came from."""
    from zoo import tracking

    if MLFLOW_TRACKING_URI.value:
        uri, origin = MLFLOW_TRACKING_URI.value, "--mlflow_tracking_uri"
    elif MLFLOW.value:
        uri, origin = tracking.default_tracking_uri(), "$MLFLOW_TRACKING_URI"
    else:
        return None
    try:
        return tracking.check_tracking_uri(uri)
    except ValueError as e:
        raise app.UsageError(f"{origin}: {e}")
