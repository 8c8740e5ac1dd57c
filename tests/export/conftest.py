"""Export fixtures: a tiny checkpoint that detects, its ONNX export, both runners.

Random initial weights give near-constant scores around 0.5 (``cls_score`` ~ N(0, 0.01)),
so ties would decide which boxes survive NMS. :func:`detecting_model` widens the classifier
and embedding weights: scores then spread over (0, 1), many boxes pass the 0.05 threshold,
and embeddings differ enough for the tracker to match some of them. The network and the
export code are untouched; only the weights are unusual.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qdtrack import checkpoint
from qdtrack.checkpoint import model_from_checkpoint
from qdtrack.config import QDTrackConfig, load_config
from qdtrack.export.repository import ExportResult, export_repository
from qdtrack.export.runtime import OnnxDetector
from qdtrack.model.qdtrack import QDTrack, build_qdtrack

torch.set_flush_denormal(True)


def detecting_model(config: QDTrackConfig, *, seed: int = 0, fg_bias: float = 0.0) -> QDTrack:
    """A tiny QDTrack whose random weights give spread scores and distinct embeddings."""
    torch.manual_seed(seed)
    model = build_qdtrack(config.model)
    with torch.no_grad():
        model.detector.roi_heads.box_predictor.cls_score.weight.normal_(0.0, 1.0)
        model.detector.roi_heads.box_predictor.cls_score.bias[1:] = fg_bias
        model.track_head.embed_head.fc_embed.weight.normal_(0.0, 0.3)
    return model.eval()


def save_checkpoint(model: QDTrack, config: QDTrackConfig, path: Path) -> Path:
    """Write ``model`` as a project checkpoint (what ``qdtrack train`` writes, minus optimizer)."""
    checkpoint.save_checkpoint(path, checkpoint.checkpoint_state(model, config))
    return path


@pytest.fixture(scope="session")
def tiny_config(tiny_workspace: Path) -> QDTrackConfig:
    """The tiny model and tracker settings of tests/conftest.py."""
    return load_config(tiny_workspace / "params.yaml")


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_config: QDTrackConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project checkpoint of :func:`detecting_model`."""
    folder = tmp_path_factory.mktemp("export_ckpt")
    return save_checkpoint(detecting_model(tiny_config), tiny_config, folder / "tiny.pt")


@pytest.fixture(scope="session")
def exported(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """``tiny_checkpoint`` exported to a fresh model repository (ONNX, version 1)."""
    repo = tmp_path_factory.mktemp("model_repository")
    return export_repository(tiny_checkpoint, repo)


@pytest.fixture(scope="session")
def torch_model(tiny_checkpoint: Path) -> QDTrack:
    """The checkpoint's network in PyTorch (eval mode)."""
    model, _ = model_from_checkpoint(tiny_checkpoint)
    return model.eval()


@pytest.fixture(scope="session")
def onnx_detector(exported: ExportResult) -> OnnxDetector:
    """The exported graph under ONNX Runtime, opened from the repository."""
    return OnnxDetector.from_repository(exported.model_dir.parent)
