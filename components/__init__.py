"""Kubeflow Pipelines (KFP v2) components: one per step, each running the ``qdtrack`` CLI.

Every container component runs the project image (``Dockerfile``) and calls the same
``qdtrack`` subcommand as the matching ``dvc.yaml`` stage, with the same ``params.yaml``
(baked into the image) and ``--set KEY=VALUE`` overrides. Steps that work on the dataset
run in a scratch folder where the input artifacts are linked at the paths the DVC stages
use (``data/dataset``, ``data/converted``), so relative paths in ``params.yaml`` and in
``val.json`` resolve the same way under ``dvc repro`` and in a pipeline pod.

The image is pinned: KFP's cache key contains the image reference *string*, so a mutable
tag would let a rebuilt image reuse results computed by the old one
(kubeflow/pipelines#13862). Release images are pushed once per version and never
overwritten; to run another build, compile with ``QDTRACK_IMAGE=repo/qdtrack@sha256:...``
(see ``pipelines/qdtrack_pipeline.py``).
"""

from __future__ import annotations

import os

DEFAULT_IMAGE = "ghcr.io/qdtrack-ops/qdtrack:0.1.0-cuda13.0"
"""The release image (an immutable tag; override with ``QDTRACK_IMAGE`` when compiling)."""

IMAGE = os.environ.get("QDTRACK_IMAGE", DEFAULT_IMAGE)
"""The image every component runs (read once, when the components are defined)."""

PROJECT_DIR = "/app"
"""Where the image holds the repository (``WORKDIR`` of the ``Dockerfile``)."""
