# Two entry points: `make run` (set up, then run an example graph headless) and
# `make test` (set up, then run the whole suite). Both are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GRAPH ?= graphs/sdxl_turbo.json
# tiny: random-weight stand-ins written on first use (no download); hub: the real weights
MODELS ?= tiny
OUT ?= out

.PHONY: setup run test lint bench browser frontend

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[editor,dev]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/graphkit run $(GRAPH) --models $(MODELS) --out $(OUT)

# The editor canvas's JavaScript bundle (committed; users and tests never need node).
FRONTEND := graphkit/editor/frontend
frontend:
	cd $(FRONTEND) && npm ci && npm run build

browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/ruff check graphkit nodes tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check graphkit nodes tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_diffusion.py
