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
# torch is installed first, pinned; TORCH_INDEX picks the wheel index (CPU or a CUDA build)
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=

.PHONY: setup run test lint bench browser frontend

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "graphkit needs Python 3.11 or newer; $(PYTHON) is older (use make PYTHON=python3.11)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { \
	  echo "hint: $(PYTHON) has no venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	@echo "torch $(TORCH_VERSION) first, from $(if $(TORCH_INDEX),$(TORCH_INDEX),pip's configured index):" \
	  "a local CPU wheel where one is provided; from PyPI on Linux, the CUDA build." \
	  "Pick one with TORCH_INDEX=https://download.pytorch.org/whl/cpu (or a CUDA index; see README)"
	$(BIN)/pip install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e ".[editor,dev,ray]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	@echo "$(BIN)/graphkit run $(GRAPH) --models $(MODELS) --out $(OUT)"
	@$(BIN)/graphkit run $(GRAPH) --models $(MODELS) --out $(OUT) || { status=$$?; \
	  if [ "$(MODELS)" != tiny ]; then \
	    echo "hint: without the real weights here, 'make run MODELS=tiny' runs offline on the tiny models;" \
	         "to download them first: $(BIN)/graphkit models pull $(GRAPH)" >&2; \
	  fi; exit $$status; }

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
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_canvas.py
