"""The batched export under PyTriton: Triton joins single-frame requests into batches.

The sidecar's Triton client sends one frame per request (it adds the batch axis of 1 the
batched config asks for); concurrent requests of several streams are joined by Triton's
dynamic batcher, run as one ONNX Runtime call, and each caller must get its own frame's
detections: those of the single-frame graph on that frame.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from stack_helpers import detecting_checkpoint, require_triton_venv

from qdtrack.export.parity import compare_detections
from qdtrack.export.repository import export_repository
from qdtrack.export.runtime import OnnxDetector, prepare_frame, unpack_detections
from qdtrack.export.triton_config import parse_config
from serving.launch import Service, start_pytriton
from serving.sidecar.triton_client import TritonDetector

pytestmark = pytest.mark.integration
# A long queue delay, so that concurrent requests surely meet in one batch.
BATCHING = [
    "export.batching=true",
    "export.max_batch_size=8",
    "export.preferred_batch_sizes=[8]",
    "export.max_queue_delay_us=200000",
]
STREAMS = 6


@pytest.fixture(scope="module")
def repositories(
    tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The same tiny checkpoint exported single-frame and batched."""
    folder = tmp_path_factory.mktemp("batched-serving")
    checkpoint = detecting_checkpoint(tiny_workspace, folder / "tiny.pt", seed=0)
    single = export_repository(checkpoint, folder / "single").model_dir.parent
    batched = export_repository(checkpoint, folder / "batched", overrides=BATCHING)
    return single, batched.model_dir.parent


@pytest.fixture(scope="module")
def batched_triton(repositories: tuple[Path, Path], service_logs: Path) -> Iterator[Service]:
    require_triton_venv()
    service = start_pytriton(repositories[1], service_logs)
    yield service
    service.kill()


def _frames(tiny_workspace: Path) -> list[np.ndarray]:
    """Decoded frames of one camera (equal sizes); the detector resizes them itself."""
    seq = next(p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir())
    paths = sorted((seq / "img1").glob("*.jpg"))[:STREAMS]
    return [np.asarray(cv2.imread(str(path)), np.uint8) for path in paths]


def _stats(service: Service) -> dict:
    url = f"http://127.0.0.1:{service.ports['http']}/v2/models/qdtrack/stats"
    with urllib.request.urlopen(url, timeout=5) as response:
        (model,) = json.loads(response.read())["model_stats"]
    return model


def test_concurrent_single_frames_are_batched_and_answered_per_frame(
    batched_triton: Service, repositories: tuple[Path, Path], tiny_workspace: Path
) -> None:
    config = parse_config((repositories[1] / "qdtrack" / "config.pbtxt").read_text())
    assert config.max_batch_size == 8
    frames = _frames(tiny_workspace)
    before = _stats(batched_triton)

    async def detect_all() -> list:
        detector = TritonDetector(f"127.0.0.1:{batched_triton.ports['grpc']}")
        try:
            return await asyncio.gather(*(detector.detect(frame) for frame in frames))
        finally:
            await detector.close()

    answers = asyncio.run(detect_all())
    after = _stats(batched_triton)
    requests = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert requests == STREAMS
    assert executions < requests  # the dynamic batcher joined requests
    reference = OnnxDetector.from_repository(repositories[0], intra_op_threads=1)
    for frame, answer in zip(frames, answers, strict=True):
        image, scale = prepare_frame(frame, answer.contract.img_scale)
        expected = unpack_detections(reference.infer(image), scale)
        report = compare_detections(answer.detections, expected)
        assert len(expected) > 0 and report.unmatched == 0
        assert report.max_box_rel_diff < 1e-4 and report.max_embedding_abs_diff < 1e-4
