"""GPU-only checks (``make test-gpu``): AMP training and inference on CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from qdtrack.checkpoint import model_from_checkpoint
from qdtrack.config import load_config
from qdtrack.train import run_training

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_amp_training_and_inference_on_cuda(tiny_workspace: Path, tmp_path: Path) -> None:
    cfg = load_config(tiny_workspace / "params.yaml", ["train.amp=true", "train.epochs=1"])
    checkpoint = run_training(cfg, tmp_path, device="cuda")
    state = torch.load(checkpoint, weights_only=True)
    assert state["scaler"]  # the AMP grad scaler was active and is saved
    model, _ = model_from_checkpoint(checkpoint)
    model.to("cuda").eval()
    frame = np.random.default_rng(0).integers(0, 255, (224, 384, 3), dtype=np.uint8)
    (det,) = model.predict([frame])
    assert det.embeddings is not None and det.embeddings.shape[0] == len(det)
