"""GPU-only (``make test-gpu``): ``--format tensorrt`` builds a loadable FP16 engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qdtrack.cli import main as cli
from qdtrack.export.contract import INPUT_IMAGE, OUTPUTS
from qdtrack.export.triton_config import parse_config

trt = pytest.importorskip("tensorrt", reason="needs the TensorRT Python package")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_tensorrt_plan_export(tiny_checkpoint: Path, tmp_path: Path) -> None:
    rc = cli(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)])
    assert rc == 0
    rc = cli(
        ["export", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "trt")]
        + ["--format", "tensorrt"]
    )
    assert rc == 0
    version_dir = tmp_path / "trt" / "qdtrack" / "1"
    assert sorted(p.name for p in version_dir.iterdir()) == ["export.json", "model.plan"]
    config = parse_config((tmp_path / "trt" / "qdtrack" / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 0
    assert json.loads((version_dir / "export.json").read_text())["model_format"] == "tensorrt"
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(
        (version_dir / "model.plan").read_bytes()
    )
    names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
    assert names == {INPUT_IMAGE.name, *(spec.name for spec in OUTPUTS)}
