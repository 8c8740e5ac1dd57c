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


TINY_PARAMS = """
model:
  depth: 18
  img_scale: [160, 160]
  norm_eval: false
  frozen_stages: -1
  fpn_channels: 32
  representation_size: 64
  roi_sampling_ratio: 2
  embed_conv_channels: 32
  embed_num_convs: 1
  embed_fc_channels: 64
  embed_channels: 32
tracker:
  init_score_thr: 0.3
  obj_score_thr: 0.2
train:
  epochs: 2
  batch_size: 2
  lr: 0.01
  lr_steps: [10]
  warmup_iters: 2
  warmup_ratio: 0.1
  seed: 0
  amp: false
  num_workers: 0
  max_iters_per_epoch: 3
  sources:
    - {kind: mot, path: DATA/train, subset: full}
    - {kind: crowdhuman, path: DATA/crowdhuman}
"""


@pytest.fixture(scope="session")
def tiny_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset and a tiny-model params file (``params.yaml``) beside it."""
    from qdtrack.cli import main as cli

    root = tmp_path_factory.mktemp("tiny")
    data = root / "data"
    args = ["data", "synth", "--out", str(data), "--seed", "0", "--frames", "16"]
    args += ["--train-seqs", "1", "--val-seqs", "1", "--crowdhuman-images", "4"]
    assert cli(args) == 0
    (root / "params.yaml").write_text(TINY_PARAMS.replace("DATA", str(data)))
    return root
