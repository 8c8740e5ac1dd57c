"""Kubeflow Pipelines (KFP v2) components: one per step, each running the ``qdtrack`` CLI.

Every container component's command is ``qdtrack`` (the multi-node launcher's is
``python -m components.pytorchjob launch``) with KFP placeholders as arguments: no shell
script. Each calls the same subcommand as the matching ``dvc.yaml`` stage with
``--config CONFIG`` (a file in the image, or on the workspace volume) and ``--set
OVERRIDES``, where OVERRIDES is the run's list parameter, passed as one JSON list (the
CLI's ``--set`` takes that form too). The data steps write onto the workspace volume and
pass folder paths on (``components/data.py``); steps that read the data run with
``qdtrack --link data/dataset=<folder> ...``, so the data appears at the paths the DVC
stages use (``data/dataset``, ``data/converted``) and relative paths in the config and in
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

CLI = ["qdtrack"]
"""The command of every step but the multi-node launcher."""

WORKSPACE_MOUNT = "/workspace"
"""Where the pipeline mounts the workspace volume (data folders, training runs)."""
