"""textzoo: interchangeable text-classification backbones, recipes, a benchmark and TF Serving exports."""

import os

# Only the TensorFlow backend takes string inputs. Set here, on the package's import, before anything imports keras:
# every entry point imports the package first.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The seed of splits, initialisation and shuffling wherever none is given.
from zoo.seeds import DEFAULT_SEED  # noqa: E402,F401  (after KERAS_BACKEND is set)
from zoo import startup  # noqa: E402

startup.drop_tensorflow_start_up_lines()


def __getattr__(name):
    # `zoo.TextClassifier`, imported on first use: `import zoo` alone loads no TensorFlow.
    if name == "TextClassifier":
        from zoo.text_classifier import TextClassifier

        return TextClassifier
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
