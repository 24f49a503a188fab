"""TensorFlow imported without its start-up lines: what its C++ libraries write to the process's stderr while it is
imported (the absl banner, oneDNN, CUDA stubs and, on a machine without a GPU, an E-level `cuInit` error, CPU
features). They say nothing a user of this library can act on and read as failures. Any other line written during
the import is passed on, and a `TF_CPP_MIN_LOG_LEVEL` set by you (0 shows everything) leaves the import alone.

`import zoo` installs this for the first import of tensorflow, wherever it happens (the commands import it late,
after their flags, paths and columns are checked).
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# The lines TensorFlow's libraries write while it is imported, on a machine with or without a GPU.
_START_UP = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on|"
    r"cudart_stub\.cc|cpu_feature_guard\.cc|^To enable the following instructions|cuda_platform\.cc|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
    r"TF-TRT Warning|rebuild TensorFlow with the appropriate compiler flags")


@contextlib.contextmanager
def _start_up_lines_dropped():
    """Everything written to file descriptor 2 inside goes to a file; afterwards, its lines other than TensorFlow's
    start-up lines are written to stderr (C++ writes there directly, past Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if line.strip() and not _START_UP.search(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _start_up_lines_dropped():
            self._loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports `tensorflow`, wherever it is first imported, with its start-up lines dropped."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def drop_tensorflow_start_up_lines():
    """From here on in this process, the first import of tensorflow drops its start-up lines; nothing where it is
    imported already or `TF_CPP_MIN_LOG_LEVEL` is set. Called more than once, it installs one hook."""
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
