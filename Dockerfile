# The project image: every Kubeflow pipeline step runs `qdtrack ...` (or, for multi-node
# training, `python -m components.pytorchjob launch`) in it. No git inside: the data step
# runs DVC with core.no_scm (the image holds no git repository).
#
#   make images                                   # docker, podman or buildah, whichever exists
#   make images WITH_TENSORRT=1                   # for export_format=tensorrt
#
# TENSORRT_VERSION must be the TensorRT of the Triton release the serving pods run: its
# default is versions.env's (a test checks they agree), and `make images` passes it.
#
# Push each tag once (an immutable tag, or use the digest): KFP caches on the image string.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu22.04
FROM ${CUDA_IMAGE}

ARG WITH_TENSORRT=0
ARG TENSORRT_VERSION=11.4.0.106
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="qdtrack-ops" \
      org.opencontainers.image.revision="${GIT_REVISION}"

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app

# python3.11 from Ubuntu 22.04 (the project pins Python 3.11); libGL/glib for OpenCV.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv ca-certificates libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv

WORKDIR /app

# Dependencies first (the slow layer), then the code.
COPY requirements.txt ./
RUN pip install -r requirements.txt "dvc-s3==3.3.0" \
 && if [ "$WITH_TENSORRT" = "1" ]; then pip install "tensorrt-cu13==${TENSORRT_VERSION}"; fi

COPY pyproject.toml README.md ./
COPY qdtrack/ qdtrack/
RUN pip install --no-deps -e .

# What the pipeline steps read: params, DVC metadata (dvc.lock pins the data), configs,
# the .dvc pointers of raw datasets, and the components (the PyTorchJob launcher).
COPY params.yaml dvc.yaml dvc.lock .dvcignore ./
COPY .dvc/config .dvc/config
COPY configs/ configs/
COPY datasets/ datasets/
COPY components/ components/

CMD ["qdtrack", "--help"]
