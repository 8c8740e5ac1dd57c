"""The batched graph: same detections, embeddings and track ids as the single-frame graph."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from qdtrack.cli import main as cli
from qdtrack.config import ExportConfig, QDTrackConfig
from qdtrack.data.frames import open_frames
from qdtrack.export.batched import export_batched_onnx
from qdtrack.export.contract import INPUT_IMAGE
from qdtrack.export.onnx_export import onnx_io
from qdtrack.export.parity import compare_detections
from qdtrack.export.quantize import calibration_images, quantize_int8
from qdtrack.export.repository import (
    ExportError,
    ExportResult,
    check_variant,
    export_repository,
)
from qdtrack.export.runtime import OnnxDetector, prepare_frame, unpack_detections
from qdtrack.export.triton_config import check_config, parse_config
from qdtrack.model.qdtrack import QDTrack
from qdtrack.structures import Tracks, box_iou
from qdtrack.trackers import build_tracker

BATCHING = [
    "export.batching=true",
    "export.max_batch_size=16",
    "export.preferred_batch_sizes=[4, 16]",
    "export.max_queue_delay_us=500",
]


@pytest.fixture(scope="module")
def batched(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """``tiny_checkpoint`` exported as the batched graph (settings from ``--set``)."""
    repo = tmp_path_factory.mktemp("batched_repository")
    return export_repository(tiny_checkpoint, repo, overrides=BATCHING)


@pytest.fixture(scope="module")
def batched_detector(batched: ExportResult) -> OnnxDetector:
    return OnnxDetector.from_repository(batched.model_dir.parent)


@pytest.fixture(scope="module")
def sequence_frames(tiny_workspace: Path) -> list[np.ndarray]:
    """The 16 frames of the synthetic validation sequence."""
    sequence = next(p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir())
    with open_frames(sequence) as frames:
        return [image for _, image in frames]


def test_config_declares_the_batch_axis_and_the_dynamic_batcher(batched: ExportResult) -> None:
    config = parse_config(batched.config_path.read_text())
    assert config.max_batch_size == 16
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    graph_io = onnx_io(batched.model_file)
    assert graph_io[INPUT_IMAGE.name].dims == (-1, -1, -1, 3)
    assert graph_io["boxes"].dims == (-1, 100, 4)
    check_config(config, graph_io)  # per-frame dims in the config, batch axis in the graph
    assert batched.metadata["max_batch_size"] == 16
    assert batched.metadata["parity"]["unmatched"] <= 1


def test_check_config_refuses_a_batch_size_the_graph_lacks(
    batched: ExportResult, exported: ExportResult
) -> None:
    with pytest.raises(ValueError, match="positive max_batch_size"):
        check_config(parse_config(exported.config_path.read_text()), onnx_io(batched.model_file))
    with pytest.raises(ValueError, match="max_batch_size 0"):
        check_config(parse_config(batched.config_path.read_text()), onnx_io(exported.model_file))


@pytest.mark.parametrize("count", [1, 5])
def test_each_frame_of_a_batch_gets_its_single_frame_result(
    count: int,
    sequence_frames: list[np.ndarray],
    onnx_detector: OnnxDetector,
    batched_detector: OnnxDetector,
) -> None:
    frames = sequence_frames[3 : 3 + count]
    requests = [prepare_frame(frame, onnx_detector.img_scale) for frame in frames]
    outputs = batched_detector.infer_batch(np.stack([image for image, _ in requests]))
    assert len(outputs) == count
    for (image, scale), output in zip(requests, outputs, strict=True):
        ours = unpack_detections(output, scale)
        single = unpack_detections(onnx_detector.infer(image), scale)
        report = compare_detections(ours, single)
        assert len(single) > 0 and report.unmatched == 0
        assert report.max_box_rel_diff < 1e-5
        assert report.max_score_abs_diff < 1e-5
        assert report.max_embedding_abs_diff < 1e-4


def _track(frames: list[np.ndarray], detector: OnnxDetector, config: QDTrackConfig) -> list:
    """Tracks per frame; the batched graph gets the frames four at a time."""
    detections = []
    for start in range(0, len(frames), 4):
        detections.extend(detector.predict(frames[start : start + 4]))
    tracker = build_tracker(config.tracker)
    return [tracker.update(det, index) for index, det in enumerate(detections)]


def test_batched_graph_tracks_with_the_same_ids(
    sequence_frames: list[np.ndarray],
    tiny_config: QDTrackConfig,
    onnx_detector: OnnxDetector,
    batched_detector: OnnxDetector,
) -> None:
    assert batched_detector.batched and not onnx_detector.batched
    single: list[Tracks] = _track(sequence_frames, onnx_detector, tiny_config)
    together: list[Tracks] = _track(sequence_frames, batched_detector, tiny_config)
    for frame, (ours, theirs) in enumerate(zip(together, single, strict=True)):
        np.testing.assert_array_equal(ours.track_ids, theirs.track_ids, err_msg=f"frame {frame}")
        np.testing.assert_allclose(ours.boxes_xyxy, theirs.boxes_xyxy, rtol=1e-5, atol=1e-4)
    frames_per_id = Counter(int(i) for t in single for i in t.track_ids)
    assert max(frames_per_id.values()) >= 3  # ids carried over frames: the check bites


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--set", "export.int8=true"], "needs --val-manifest and --val-gt"),
        (["--set", "export.int8=true", "--instance-kind", "gpu"], "for CPU serving"),
        (["--set", "export.int8=true", "--format", "onnx-trt-fp16"], "for CPU serving"),
        (["--set", "export.preferred_batch_sizes=[64]"], "outside 1..max_batch_size"),
    ],
)
def test_export_option_errors(
    options: list[str],
    message: str,
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["export", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "r")]
    assert cli([*args, *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_a_batched_tensorrt_plan_is_refused() -> None:
    # Checked before TensorRT is needed; a plan has no ONNX Loop for the per-image part.
    with pytest.raises(ExportError, match=r"export\.batching applies to --format onnx"):
        check_variant(ExportConfig(batching=True), "tensorrt", "KIND_GPU", False, None, None)


def test_batched_graph_quantises_and_runs(
    torch_model: QDTrack,
    batched_detector: OnnxDetector,
    sequence_frames: list[np.ndarray],
    tiny_config: QDTrackConfig,
    tmp_path: Path,
) -> None:
    # Trunk and per-image head are quantised one by one and joined again; ONNX Runtime
    # must load and run the result (its QDQ clean-up used to abort on quantised tensors
    # entering the loop).
    float_path, parts = tmp_path / "model.onnx", tmp_path / "parts"
    parts.mkdir()
    export_batched_onnx(torch_model, float_path, img_scale=(160, 160), parts=parts)
    frames = calibration_images(tiny_config.train.sources, ("pedestrian",), 32)
    int8_path = tmp_path / "model.int8.onnx"
    quantize_int8(float_path, int8_path, frames, img_scale=(160, 160), batched=True, parts=parts)
    loop = next(n for n in onnx.load(str(int8_path)).graph.node if n.op_type == "Loop")
    head_ops = {node.op_type for node in loop.attribute[0].g.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Gemm"} <= head_ops  # the head too
    int8 = OnnxDetector(int8_path, img_scale=(160, 160))
    ours = int8.predict(sequence_frames[:3])
    theirs = batched_detector.predict(sequence_frames[:3])
    for quantised, exact in zip(ours, theirs, strict=True):
        best = exact.boxes_xyxy[np.argmax(exact.scores)]
        assert float(box_iou(best[None], quantised.boxes_xyxy).max()) > 0.7
