import os

# Only the TensorFlow backend takes string inputs; set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh, empty asset cache for tests that count downloads."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TEXTZOO_CACHE", str(cache))
    monkeypatch.delenv("TEXTZOO_OFFLINE", raising=False)
    return cache


@pytest.fixture
def parsed_flags():
    """absl's flags parsed as `benchmarks.run` parses them with no arguments (tests set values on them)."""
    from absl import flags

    from benchmarks import run  # noqa: F401  Defines the flags parsed here.

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["benchmarks.run"])
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()
