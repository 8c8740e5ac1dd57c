"""ONNX Runtime vs PyTorch on the exported graph: same detections, boxes within 1e-3."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from qdtrack.config import QDTrackConfig, load_config
from qdtrack.export.contract import INPUT_IMAGE, MAX_DETECTIONS, output_specs
from qdtrack.export.onnx_export import export_onnx, onnx_io
from qdtrack.export.parity import BOX_RTOL, compare_detections
from qdtrack.export.repository import ExportResult
from qdtrack.export.runtime import OnnxDetector, prepare_frame, unpack_detections
from qdtrack.model.qdtrack import QDTrack
from qdtrack.resize import resize_frame
from qdtrack.structures import Detections

from .conftest import detecting_model


def _frames() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "noise 384x224 (synthetic frame size)": rng.integers(0, 256, (224, 384, 3), np.uint8),
        "noise 1920x1080 (downscaled)": rng.integers(0, 256, (1080, 1920, 3), np.uint8),
        "noise portrait 300x500": rng.integers(0, 256, (500, 300, 3), np.uint8),
        "noise 100x100 (upscaled)": rng.integers(0, 256, (100, 100, 3), np.uint8),
    }


def assert_same_detections(exported: Detections, eager: Detections) -> None:
    """Identical count, order and labels; boxes within 1e-3 relative; scores, embeddings close."""
    report = compare_detections(exported, eager)
    assert report.unmatched == 0 and report.max_box_rel_diff <= BOX_RTOL, report
    assert len(exported) == len(eager)
    np.testing.assert_array_equal(exported.labels, eager.labels)
    np.testing.assert_allclose(exported.boxes_xyxy, eager.boxes_xyxy, rtol=BOX_RTOL, atol=1e-3)
    np.testing.assert_allclose(exported.scores, eager.scores, atol=1e-3)
    assert exported.embeddings is not None and eager.embeddings is not None
    np.testing.assert_allclose(exported.embeddings, eager.embeddings, rtol=1e-3, atol=1e-3)


def test_graph_io_is_the_contract(exported: ExportResult) -> None:
    io = onnx_io(exported.model_file)
    width = exported.metadata["embedding_dim"]
    assert io == {spec.name: spec for spec in (INPUT_IMAGE, *output_specs(width))}


@pytest.mark.parametrize("name", list(_frames()))
def test_onnx_runtime_matches_pytorch(
    name: str, torch_model: QDTrack, onnx_detector: OnnxDetector
) -> None:
    frame = _frames()[name]
    (eager,) = torch_model.predict([frame])
    (exported,) = onnx_detector.predict([frame])
    assert len(eager) > 0, "the fixture model must detect something for a meaningful check"
    assert_same_detections(exported, eager)


def test_synthetic_sequence_frames_match(
    tiny_workspace: Path, torch_model: QDTrack, onnx_detector: OnnxDetector
) -> None:
    import cv2

    images = sorted((tiny_workspace / "data" / "val").glob("*/img1/*.jpg"))[:4]
    frames = [cv2.imread(str(p)) for p in images]
    eager = torch_model.predict(frames)
    exported = onnx_detector.predict(frames)
    assert sum(len(d) for d in eager) > 0
    for ours, theirs in zip(exported, eager, strict=True):
        assert_same_detections(ours, theirs)


def test_reference_settings_parity(tiny_config: QDTrackConfig, tmp_path: Path) -> None:
    """FrozenBatchNorm, frozen stem and adaptive RoIAlign sampling (the R-50 settings)."""
    reference = dataclasses.replace(
        tiny_config.model, norm_eval=True, frozen_stages=1, roi_sampling_ratio=0
    )
    model = detecting_model(dataclasses.replace(tiny_config, model=reference))
    path = tmp_path / "reference.onnx"
    export_onnx(model, path, img_scale=model.detector.img_scale)
    detector = OnnxDetector(path, img_scale=model.detector.img_scale)
    for frame in list(_frames().values())[:2]:
        (eager,) = model.predict([frame])
        assert len(eager) > 0
        assert_same_detections(detector.predict([frame])[0], eager)


def test_frame_without_detections(tiny_config: QDTrackConfig, tmp_path: Path) -> None:
    model = detecting_model(tiny_config, fg_bias=-1e4)  # every foreground score is ~0
    path = tmp_path / "none.onnx"
    export_onnx(model, path, img_scale=model.detector.img_scale)
    frame = np.random.default_rng(0).integers(0, 256, (224, 384, 3), np.uint8)
    image, scale_factor = prepare_frame(frame, model.detector.img_scale)
    outputs = OnnxDetector(path, img_scale=model.detector.img_scale).infer(image)
    assert outputs["num_detections"].tolist() == [0]
    assert outputs["boxes"].shape == (MAX_DETECTIONS, 4) and not outputs["boxes"].any()
    detections = unpack_detections(outputs, scale_factor)
    assert len(detections) == 0 and detections.embeddings is not None
    assert detections.embeddings.shape == (0, tiny_config.model.embed_channels)
    assert len(model.predict([frame])[0]) == 0


def test_prepare_frame_is_the_reference_resize() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)
    image, scale_factor = prepare_frame(frame[:, ::-1], (384, 384))  # a non-contiguous view
    expected, expected_factor = resize_frame(np.ascontiguousarray(frame[:, ::-1]), (384, 384))
    assert image.flags["C_CONTIGUOUS"] and image.dtype == np.uint8
    np.testing.assert_array_equal(image, expected)
    np.testing.assert_array_equal(scale_factor, expected_factor)


def test_unpack_detections_slices_and_rescales() -> None:
    outputs = {
        "boxes": np.tile(np.array([[10.0, 20.0, 30.0, 40.0]], np.float32), (MAX_DETECTIONS, 1)),
        "scores": np.linspace(0.9, 0.1, MAX_DETECTIONS, dtype=np.float32),
        "labels": np.zeros(MAX_DETECTIONS, np.int64),
        "embeddings": np.ones((MAX_DETECTIONS, 8), np.float32),
        "num_detections": np.array([3], np.int32),
    }
    factor = np.array([0.5, 0.25, 0.5, 0.25], np.float32)
    detections = unpack_detections(outputs, factor)
    assert len(detections) == 3
    np.testing.assert_allclose(detections.boxes_xyxy[0], [20.0, 80.0, 60.0, 160.0])
    assert detections.embeddings is not None and detections.embeddings.shape == (3, 8)
    batched = {k: v[None] for k, v in outputs.items()}  # Triton-style leading axis of 1
    assert len(unpack_detections(batched, factor)) == 3
    with pytest.raises(ValueError, match="num_detections"):
        unpack_detections({**outputs, "num_detections": np.array([101], np.int32)}, factor)


def test_compare_detections_pairs_by_box_not_by_order() -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 0, 60, 30]], np.float32)
    eager = Detections(boxes, np.array([0.9, 0.8, 0.7]), np.zeros(3, np.int64))
    shuffled = eager.select([2, 0, 1])
    report = compare_detections(shuffled, eager)
    assert report.unmatched == 0 and report.max_box_rel_diff == 0.0
    moved = Detections(
        boxes + [[0, 0, 0, 0.5], [0, 0, 0, 0], [0, 0, 0, 0]], eager.scores, eager.labels
    )
    assert compare_detections(moved, eager).unmatched == 2  # IoU 0.95 < 0.99: no pair
    relabelled = Detections(boxes, eager.scores, np.array([0, 1, 0]))
    assert compare_detections(relabelled, eager).unmatched == 2
    assert compare_detections(eager.select([0, 1]), eager).unmatched == 1


def test_tao_settings_parity(tmp_path: Path) -> None:
    """The TAO detector settings (reference d.3) export too: 300 rows, boxes clipped to the frame
    size of each request (not of the traced sample), RGB ImageNet normalisation."""
    cpu = load_config(Path(__file__).parents[2] / "params.yaml")  # enough boxes survive NMS
    tao = dataclasses.replace(
        cpu.model,
        score_thr=1e-4,
        max_per_img=300,
        clip_border=True,
        normalization="pytorch",
        style="pytorch",
    )
    model = detecting_model(dataclasses.replace(cpu, model=tao))
    path = tmp_path / "tao.onnx"
    export_onnx(model, path, img_scale=model.detector.img_scale)
    width = model.track_head.embed_head.fc_embed.out_features
    assert onnx_io(path)["boxes"].dims == (300, 4)
    assert onnx_io(path) == {spec.name: spec for spec in (INPUT_IMAGE, *output_specs(width, 300))}
    detector = OnnxDetector(path, img_scale=model.detector.img_scale)
    frames = _frames()
    for name in ("noise 384x224 (synthetic frame size)", "noise portrait 300x500"):
        frame = frames[name]
        (eager,) = model.predict([frame])
        assert len(eager) > 100, "300-row outputs need more than the MOT17 100 boxes"
        height, width_px = frame.shape[:2]
        boxes = eager.boxes_xyxy
        assert boxes.min() >= 0 and (boxes[:, 2] <= width_px + 1e-3).all()
        assert (boxes[:, 3] <= height + 1e-3).all()
        assert np.isclose(boxes[:, 2], width_px, atol=1e-2).any(), "no box was clipped"
        assert_same_detections(detector.predict([frame])[0], eager)
