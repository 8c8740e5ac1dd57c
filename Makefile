# qdtrack-ops: the two commands are `make run` and `make test`; both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test test-slow test-gpu test-all lint bench bench-quality clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the pinned dependencies

run: setup  ## the main job: dvc repro on the embedded synthetic data, then its metrics
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: setup  ## the default test suite (no slow, no GPU tests)
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

# pytest exits 5 when no test is selected; that is not a failure for the opt-in targets
test-slow: setup  ## slow tests only
	$(BIN)/python -m pytest -m "slow and not gpu" -q || [ $$? -eq 5 ]

test-gpu: setup  ## GPU tests only (they skip without CUDA)
	$(BIN)/python -m pytest -m gpu -q || [ $$? -eq 5 ]

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check qdtrack tests benchmarks
	$(BIN)/mypy

bench: setup  ## fast benchmarks (minutes): print tables, write benchmarks/results/*.json
	$(BIN)/python benchmarks/bench_tracker.py
	$(BIN)/python benchmarks/bench_evaluate.py
	$(BIN)/python benchmarks/bench_model_speed.py

bench-quality: setup  ## training-quality benchmarks (about 15 + 35 minutes on 2 cores)
	$(BIN)/python benchmarks/bench_synthetic.py
	$(BIN)/python benchmarks/bench_pets09.py

clean:
	rm -rf data runs metrics .pytest_cache .mypy_cache .ruff_cache
