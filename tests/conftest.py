"""Shared fixtures: the real data beside the repository, and numeric settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (override with QDTRACK_SHARED_DATA)."""
    env = os.environ.get("QDTRACK_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; tests using it skip cleanly when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}")
    return path


@pytest.fixture(scope="session")
def mot17_gt_dir(shared_data: Path) -> Path:
    """``MOT17-train-gt`` with the 7 MOT17 train sequences (gt only, no images)."""
    path = shared_data / "MOT17-train-gt"
    if not path.is_dir():
        pytest.skip(f"MOT17 ground truth not found at {path}")
    return path


@pytest.fixture(scope="session")
def pets_dir(shared_data: Path) -> Path:
    """``PETS09-S2L1``: real video, MOT15 gt and ACF detections."""
    path = shared_data / "PETS09-S2L1"
    if not path.is_dir():
        pytest.skip(f"PETS09-S2L1 not found at {path}")
    return path
