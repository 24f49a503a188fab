# The two commands of the README: `make benchmark` (the main job) and `make test`. Both set everything up first.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export KERAS_BACKEND := tensorflow

.PHONY: setup browser benchmark test test-large clean

setup: $(VENV)/.synced

# uv installs the exact versions of uv.lock; uv itself comes from PyPI into .tools/ when it is not installed.
# --compile-bytecode: every process starts from compiled bytecode, also where PYTHONDONTWRITEBYTECODE keeps Python
# from caching it (importing TensorFlow took 13.5 s from source on the 2-core CPU, 7.6 s compiled; the tests and the
# benchmark start a process per recipe and per export check).
.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

# The demo page's browser test drives Debian's Chromium (Playwright with executable_path; Playwright's own browser
# downloads are not reachable everywhere). Installed with apt where it is missing; as root, or with sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$$TEXTZOO_CHROMIUM" ] || { \
	  echo "Installing Debian's chromium for the browser test ..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

benchmark: setup
	$(VENV)/bin/textzoo benchmark

# One worker per core: most of a test's time is single-threaded (TensorFlow's import, tracing, the export checks'
# fresh processes), so two workers on 2 cores take about half of one's time (15:31-16:50 with setup on an AVX2-only
# 2-core EPYC, where TensorFlow runs no oneDNN; 12:46 on one with AVX512_BF16). Each module stays on one worker,
# as its fixtures train models once per module.
test: setup browser
	$(PY) -m pytest -n auto --dist loadscope

test-large: setup browser
	$(PY) -m pytest -m large

clean:
	rm -rf $(VENV) .tools runs tests/output
