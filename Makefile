# Two commands on a fresh machine: `make run` (app on the bundled corpus) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test test-fast setup kb bench browser clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

kb: setup
	$(PY) -m ingest

# Serves at once; the knowledge base is built (or brought up to date) in the background.
run: setup
	$(PY) app.py --build

# Browser tests drive Debian's chromium through Playwright; CJK fonts make pages and screenshots legible.
browser:
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -q "Noto Sans CJK" || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null) || \
	  echo "chromium not installed (needs apt-get as root): browser tests will be skipped outside CI"

test: setup browser
	$(PY) -m pytest

# The unit tests only: no e5, no knowledge-base build, no app, no subprocess, no chromium (tests marked slow are left out).
test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) bench/ingest.py
	$(PY) bench/retrieval.py
	$(PY) bench/answers.py
	$(PY) bench/load.py

clean:
	rm -rf $(VENV) .kb
