"""The export flags that `recipes.train` (which exports at the end) and `recipes.export` share."""

from absl import flags

MODEL_NAME = flags.DEFINE_string("model_name", None, "Name of the exported model (default: <backbone>_<dataset>, or "
                                 "<backbone>_<file name> for custom data).")
ALLOW_DATASET_CHANGE = flags.DEFINE_bool("allow_dataset_change", False, "Export as the next version of a model name "
                                         "whose latest version was trained on other data (or labels).")
