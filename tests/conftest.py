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
