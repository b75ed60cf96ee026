# tijdig — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every install (make, CI, the Dockerfile) takes its versions from the lock; pyproject.toml
# keeps only the lower bounds. `make lock` re-resolves it.
LOCK   := requirements/lock.txt
TOOLS  := .venv-lock
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: help setup lock browser run serve train mlflow-ui test fuzz lint bench evidence clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check || { echo "$(LOCK) does not satisfy pyproject.toml: make lock"; exit 1; }
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install tijdig with its dev tools (versions from the lock)

# pip-tools lives in its own venv: the lock must not depend on what the dev venv holds.
lock:  ## re-resolve requirements/lock.txt: newest versions within pyproject.toml's bounds
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip-tools
	$(TOOLS)/bin/pip-compile --quiet --upgrade --extra dev --strip-extras \
		--no-emit-index-url --no-emit-find-links -o $(LOCK) pyproject.toml

# The impact report's browser test renders the page in headless Chromium. Installed only
# where that is safe to do unasked (root with apt-get: CI on Debian); elsewhere the test
# skips and says why.
browser:  ## headless Chromium for the browser test (apt-get, only as root; else nothing)
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
		|| echo "browser: installing chromium failed; the browser tests will skip and say so"; \
	else \
		echo "browser: no chromium and no root apt-get to install it; the browser test will skip"; \
	fi

run: $(STAMP)  ## first run: simulate, ingest, train, promote; then serve on $(HOST):$(PORT)
	$(BIN)/tijdig run --host $(HOST) --port $(PORT)

serve: $(STAMP)  ## serve the current champion (no bootstrap)
	$(BIN)/tijdig serve --host $(HOST) --port $(PORT)

train: $(STAMP)  ## retrain on the event store; the promotion gate decides on the alias
	$(BIN)/tijdig train

mlflow-ui: $(STAMP)  ## MLflow's UI on the tracking store, 127.0.0.1:5000 (needs pip install -e '.[ui]')
	$(BIN)/tijdig models ui

test: $(STAMP) browser  ## the whole test suite (PostgreSQL tests skip with a reason when no server answers)
	$(BIN)/pytest -q -n 2 --dist loadfile

fuzz: $(STAMP)  ## the API contract test with 1,500 generated requests per operation and mode (~7 min)
	TIJDIG_FUZZ_EXAMPLES=1500 $(BIN)/pytest -q tests/api/test_api_fuzz.py

lint: $(STAMP)  ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks; results in benchmarks/results/ and benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks.run

evidence: $(STAMP)  ## re-measure every simulated figure of the README (~1 h); benchmarks/results/
	$(BIN)/python -m benchmarks.evidence

clean:  ## remove local state (event store, MLflow runs, decision log)
	rm -rf .tijdig

distclean: clean  ## also remove the virtualenvs
	rm -rf $(VENV) $(TOOLS)
