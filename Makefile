# Two commands on a fresh machine: `make run` (app on the bundled corpus) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test setup kb bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

kb: setup
	$(PY) -m ingest

run: kb
	$(PY) app.py

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/ingest.py
	$(PY) bench/retrieval.py

clean:
	rm -rf $(VENV) .kb
