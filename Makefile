# ann2snn developer tasks. `make demo` and `make test` work on a fresh Debian machine with only python3:
# they create .venv, install a CPU build of torch first (never the multi-GB CUDA default), then the package.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for the torch install, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# on a machine without a local CPU wheel.
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed
# Optional test extras: the real torchvision / timm model definitions that tests/unit/test_real_models.py converts.
# torchvision 0.28.0 is the only build made for torch 2.13.0, so they are installed only beside that torch.
EXTRAS_STAMP := $(VENV)/.test-extras
TORCHVISION_VERSION ?= 0.28.0
EXTRAS_TORCH := 2.13.0
FASHION_DIR := /usr/share/datasets/fashion-mnist
PYTEST_WORKERS ?= 2
SRC := src tests benchmarks

.PHONY: help venv data demo test test-fast check-readme lint format clean distclean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv: $(STAMP) $(EXTRAS_STAMP)  ## Create .venv and install ann2snn with its dev tools (+ torchvision/timm)

$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "note: '$(PYTHON) -m venv' failed; trying to install the venv module" >&2; \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    rm -rf $(VENV); \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv && \
	    $(PYTHON) -m venv $(VENV); \
	  else echo "error: install python3-venv (Debian) and retry" >&2; exit 1; fi; }

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(PIP) install -e '.[dev]'
	@touch $@

# torchvision with --no-deps (its wheel pins torch, and a resolver must never fetch the CUDA default); timm next
# to the installed torch given as an exact requirement, so pip keeps it. Any failure is a note: the tests skip.
# Delete $(EXTRAS_STAMP) to try again.
$(EXTRAS_STAMP): $(STAMP)
	@torch_v=$$($(PY) -c 'import torch; print(torch.__version__)'); \
	if [ "$${torch_v%%+*}" != "$(EXTRAS_TORCH)" ]; then \
	  echo "note: torch $$torch_v is not $(EXTRAS_TORCH); not installing torchvision/timm (their tests are skipped)" >&2; \
	elif $(PIP) install --no-deps "torchvision==$(TORCHVISION_VERSION)" && \
	     $(PIP) install "timm>=1.0,<2" "torch==$$torch_v" && \
	     [ "$$($(PY) -c 'import torch; print(torch.__version__)')" = "$$torch_v" ]; then \
	  echo "installed torchvision $(TORCHVISION_VERSION) and timm beside torch $$torch_v"; \
	else \
	  echo "note: could not install torchvision/timm; tests/unit/test_real_models.py will be skipped" >&2; \
	fi
	@touch $@

data:  ## Install the Debian package dataset-fashion-mnist when missing (root + apt only; else a note)
	@if [ -d $(FASHION_DIR) ]; then \
	  true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist; } || \
	    echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped" >&2; \
	else \
	  echo "note: $(FASHION_DIR) is missing (install the Debian package dataset-fashion-mnist as root);" \
	       "Fashion-MNIST tests will be skipped" >&2; \
	fi

demo: venv data  ## Train, convert and evaluate a small SNN end to end
	$(VENV)/bin/ann2snn demo

test: venv data  ## Run the test suite
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/

test-fast: venv  ## Run the tests without the slow ones
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not slow" tests/

check-readme: venv  ## Run every README example (minutes) and compare the numbers it quotes
	ANN2SNN_README_ALL=1 $(PY) -m pytest -q -n $(PYTEST_WORKERS) tests/integration/test_readme.py

lint: venv  ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check $(SRC)
	$(VENV)/bin/ruff format --check $(SRC)
	$(VENV)/bin/mypy

format: venv  ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix $(SRC)
	$(VENV)/bin/ruff format $(SRC)

clean:  ## Remove caches and build output (keeps .venv)
	rm -rf build dist .pytest_cache .ruff_cache .mypy_cache .hypothesis src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean  ## Also remove .venv
	rm -rf $(VENV)
