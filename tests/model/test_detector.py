"""Detector composition: checkpoint names, training outputs, predictions, overfitting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qdtrack.model.detector import build_detector, to_detections
from qdtrack.model.preprocess import batch_images, preprocess_frames
from qdtrack.structures import Detections

KEYS_JSON = (
    Path(__file__).resolve().parents[3] / "shared" / "spec" / "mmtracking_qdtrack_r50_keys.json"
)
LOSS_NAMES = {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"}


def _targets(boxes: list[list[float]]) -> list[dict[str, torch.Tensor]]:
    box = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return [{"boxes": box, "labels": torch.zeros(box.shape[0], dtype=torch.long)}]


def test_state_dict_matches_the_checkpoint_key_map() -> None:
    if not KEYS_JSON.is_file():
        pytest.skip(f"{KEYS_JSON} not found")
    entries = json.loads(KEYS_JSON.read_text())["keys"]
    expected = {
        e["torchvision_key"]: tuple(e["torchvision_shape"])
        for e in entries
        if e.get("torchvision_key") and not e["torchvision_key"].endswith("num_batches_tracked")
    }
    assert len(expected) == 295
    state = build_detector(depth=50, num_classes=1).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_zero_gt_image_gives_finite_losses_and_zero_box_losses() -> None:
    detector = build_detector(depth=18, representation_size=64)
    batch = batch_images([torch.rand(3, 64, 96) * 255])
    output = detector.forward_train(batch, _targets([]))
    assert set(output.losses) == LOSS_NAMES
    assert all(torch.isfinite(v) for v in output.losses.values())
    assert output.losses["loss_rpn_bbox"].item() == 0.0 and output.losses["loss_bbox"].item() == 0.0
    sum(output.losses.values()).backward()  # type: ignore[union-attr]


def test_train_output_carries_features_and_detached_proposals() -> None:
    detector = build_detector(depth=18, representation_size=64)
    batch = batch_images([torch.rand(3, 64, 96) * 255, torch.rand(3, 50, 70) * 255])
    targets = _targets([[10, 10, 40, 50]]) + _targets([[5, 5, 30, 30], [20, 10, 60, 45]])
    output = detector.forward_train(batch, targets)
    assert len(output.features) == 5 and output.features[0].shape == (2, 256, 16, 24)
    assert output.features[0].requires_grad
    assert [p.shape[1] for p in output.proposals] == [5, 5]
    assert all(not p.requires_grad and p.shape[0] <= 1000 for p in output.proposals)
    ref_features, ref_proposals = detector.propose(batch)
    assert ref_features[0].requires_grad and len(ref_proposals) == 2
    with pytest.raises(ValueError, match="targets"):
        detector.forward_train(batch, targets[:1])


def test_predict_shapes_dtypes_and_original_frame_coordinates() -> None:
    detector = build_detector(depth=18, num_classes=2, representation_size=64, img_scale=(64, 64))
    detector.eval()
    frames = [np.zeros((60, 90, 3), np.uint8), np.zeros((45, 30, 3), np.uint8)]
    batch = preprocess_frames(frames, img_scale=detector.img_scale)
    with torch.no_grad():
        prediction = detector.predict(batch)
    assert len(prediction.detections) == 2 and len(prediction.features) == 5
    for result in prediction.detections:
        n = result.boxes_xyxy.shape[0]
        assert result.boxes_xyxy.shape == (n, 4) and result.boxes_xyxy.dtype == torch.float32
        assert result.scores.shape == (n,) and result.labels.dtype == torch.int64
        assert n <= 100 and bool((result.scores > 0.05).all())
        assert set(result.labels.tolist()) <= {0, 1}
    detections = to_detections(prediction.detections[0])
    assert isinstance(detections, Detections) and detections.embeddings is None
    assert detections.boxes_xyxy.dtype == np.float32 and detections.labels.dtype == np.int64
    # Boxes are in original-frame pixels: undoing the scale factor gives network pixels.
    assert batch.scale_factors[0, 0].item() == pytest.approx(64 / 90)


def test_tiny_detector_overfits_one_image() -> None:
    torch.manual_seed(0)
    # Trainable BatchNorm: with random weights, frozen BN would not normalise the 0-255 input.
    detector = build_detector(depth=18, representation_size=64, norm_eval=False, frozen_stages=-1)
    # Fewer sampled RoIs: RoIAlign's CPU backward on the large unclipped early proposals
    # dominates the step time.
    detector.roi_heads.num_samples = 128
    batch = batch_images([torch.rand(3, 64, 96) * 255])
    targets = _targets([[8, 10, 40, 55], [50, 12, 90, 50]])
    params = [p for p in detector.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    history = []
    for _ in range(30):
        losses = detector.forward_train(batch, targets, generator).losses
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()  # type: ignore[union-attr]
        torch.nn.utils.clip_grad_norm_(params, 35.0)
        optimizer.step()
        history.append(float(total.detach()))  # type: ignore[union-attr]
    assert all(np.isfinite(history))
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:3])
