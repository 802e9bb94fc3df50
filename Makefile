# Two commands on a fresh machine: `make run` (app on the bundled corpus) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test test-fast setup lock kb seed bench bench-ranker browser clean

# Installs are exact: every package at the version and hash in requirements.lock, never the registry's
# newest (a new release of a dependency once broke a fresh install with no change of ours). `make lock`
# refreshes the lock on purpose (docs/deployment.md, "Upgrading dependencies"). uv installs in parallel,
# about 4x faster than pip; it does not read pip's configuration, so pip's find-links (where this kind
# of machine keeps the CPU build of torch) are passed on. If uv cannot be had or fails, pip installs
# the same lock with --require-hashes.
UV_VERSION := 0.13.9
FIND_LINKS := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
UV := $(VENV)/bin/uv
UV_FIND := $(foreach f,$(FIND_LINKS),--find-links $(f))

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	( $(PY) -m pip install --quiet uv==$(UV_VERSION) && \
	  $(UV) pip sync --quiet --python $(PY) --require-hashes $(UV_FIND) requirements.lock && \
	  $(UV) pip install --quiet --python $(PY) --no-deps -e . ) || \
	  ( $(PY) -m pip install --quiet --require-hashes -r requirements.lock && \
	    $(PY) -m pip install --quiet --no-deps -e . )
	touch $@

# Resolve pyproject.toml's dependencies and extras into the lock, keeping locked versions that still fit;
# `make lock UPGRADE=1` takes the newest releases pyproject.toml allows.
# Then run `make test`, and commit the lock with what it changed.
lock:
	test -x $(UV) || ( test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PY) -m pip install --quiet uv==$(UV_VERSION) )
	$(UV) pip compile --quiet pyproject.toml --all-extras --generate-hashes $(if $(UPGRADE),--upgrade) $(UV_FIND) \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

setup: $(VENV)/.installed

# The bundled corpus's chunk vectors (data/embed-seed.sqlite) spare a fresh machine embedding them
# (2-3 minutes on 2 cores); any other text is embedded as usual. IPKB_EMBED_SEED= switches it off.
SEED := IPKB_EMBED_SEED=$${IPKB_EMBED_SEED-data/embed-seed.sqlite}

kb: setup
	$(SEED) $(PY) -m ingest

# Serves at once; the knowledge base is built (or brought up to date) in the background.
run: setup
	$(SEED) $(PY) app.py --build

# Refresh the seed after the bundled corpus or the chunking changed (tests/test_embeddings.py fails then).
seed: setup
	rm -rf .kb-seed
	IPKB_KB_DIR=.kb-seed $(SEED) $(PY) -m ingest data/corpus
	rm -f data/embed-seed.sqlite.new
	$(PY) -c "import sqlite3; sqlite3.connect('.kb-seed/embed-cache.sqlite').execute(\"VACUUM INTO 'data/embed-seed.sqlite.new'\")"
	mv data/embed-seed.sqlite.new data/embed-seed.sqlite && rm -rf .kb-seed

# Browser tests drive Debian's chromium through Playwright; CJK fonts make pages and screenshots legible.
browser:
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -q "Noto Sans CJK" || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null) || \
	  echo "chromium not installed (needs apt-get as root): browser tests will be skipped outside CI"

test: setup browser
	$(PY) -m pytest

# The unit tests only: no e5, no knowledge-base build, no app, no subprocess, no chromium (tests marked slow are
# left out), on both cores (pytest-xdist).
test-fast: setup
	$(PY) -m pytest -m "not slow" -n 2

bench: setup
	$(PY) bench/ingest.py
	$(PY) bench/retrieval.py
	$(PY) bench/answers.py
	$(PY) bench/load.py

# The learned ranker against issue 20's acceptance (lecoqa CV +0.06 over RRF 1:1; about 15 min; fails when short)
bench-ranker: setup
	$(PY) -m eval train-ranker --no-write --min-gain 0.06 --json .ranker-work/report.json

clean:
	rm -rf $(VENV) .kb
