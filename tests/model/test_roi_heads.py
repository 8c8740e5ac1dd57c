"""Box head: class order, sampling, losses and reference post-processing (reference a.5)."""

from __future__ import annotations

import torch

from qdtrack.model.roi_heads import RoIHeads, box_head_loss, multiclass_nms


def _features(channels: int = 8) -> list[torch.Tensor]:
    return [torch.randn(1, channels, 128 // s, 128 // s) for s in (4, 8, 16, 32, 64)]


def _constant_head(num_classes: int, foreground_logit: float, **kwargs: object) -> RoIHeads:
    """A head whose outputs ignore the features: zero deltas, fixed class logits."""
    head = RoIHeads(num_classes=num_classes, in_channels=8, representation_size=16, **kwargs)  # type: ignore[arg-type]
    with torch.no_grad():
        head.box_predictor.cls_score.weight.zero_()
        head.box_predictor.bbox_pred.weight.zero_()
        head.box_predictor.cls_score.bias.copy_(
            torch.tensor([0.0] + [foreground_logit + c for c in range(num_classes)])
        )
    return head


def test_nms_runs_in_original_frame_coordinates() -> None:
    # IoU of these two boxes is exactly 0.5 in network pixels; after dividing by the scale
    # factor float rounding pushes it above 0.5, so the reference keeps only one.
    proposals = torch.tensor([[78.0, 99.5, 96.0, 105.5], [84.0, 99.5, 102.0, 105.5]])
    scale = torch.tensor([[1088 / 1920, 612 / 1080, 1088 / 1920, 612 / 1080]])
    reference = _constant_head(1, 5.0).eval()
    torchvision_order = _constant_head(1, 5.0, nms_in_original_frame=False).eval()
    with torch.no_grad():
        ours = reference.predict(_features(), [proposals], [(128, 128)], scale)[0]
        theirs = torchvision_order.predict(_features(), [proposals], [(128, 128)], scale)[0]
    assert len(ours.boxes_xyxy) == 1 and len(theirs.boxes_xyxy) == 2
    torch.testing.assert_close(ours.boxes_xyxy[0], proposals[0] / scale[0])


def test_multiclass_labels_are_zero_based_and_background_dropped() -> None:
    head = _constant_head(3, 2.0).eval()
    proposals = torch.tensor([[10.0, 10.0, 50.0, 60.0]])
    with torch.no_grad():
        result = head.predict(_features(), [proposals], [(128, 128)], torch.ones(1, 4))[0]
    assert result.labels.tolist() == [2, 1, 0]  # sorted by score; class c is logit row c + 1
    logits = torch.tensor([0.0, 2.0, 3.0, 4.0])
    torch.testing.assert_close(result.scores, logits.softmax(0)[1:].flip(0))
    assert result.boxes_xyxy.dtype == torch.float32 and result.labels.dtype == torch.int64


def test_boxes_are_not_clipped_and_scores_thresholded_strictly() -> None:
    head = _constant_head(1, 5.0).eval()
    proposals = torch.tensor([[-20.0, -10.0, 200.0, 90.0]])
    with torch.no_grad():
        result = head.predict(_features(), [proposals], [(128, 128)], torch.ones(1, 4))[0]
    torch.testing.assert_close(result.boxes_xyxy[0], proposals[0])
    clipping = _constant_head(1, 5.0, clip_border=True).eval()
    with torch.no_grad():
        clipped = clipping.predict(_features(), [proposals], [(128, 128)], torch.ones(1, 4))[0]
    torch.testing.assert_close(clipped.boxes_xyxy[0], torch.tensor([0.0, 0.0, 128.0, 90.0]))
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0]], [[20.0, 20.0, 30.0, 30.0]]])
    kept = multiclass_nms(
        boxes, torch.tensor([[0.05], [0.0501]]), score_thr=0.05, iou_thr=0.5, max_per_img=100
    )
    assert len(kept.scores) == 1 and kept.boxes_xyxy[0, 0].item() == 20.0


def test_empty_proposals_give_empty_results() -> None:
    head = _constant_head(1, 5.0).eval()
    with torch.no_grad():
        result = head.predict(_features(), [torch.zeros(0, 5)], [(128, 128)], torch.ones(1, 4))[0]
    assert result.boxes_xyxy.shape == (0, 4) and result.labels.shape == (0,)


def test_sampling_adds_gt_and_uses_torchvision_label_rows() -> None:
    head = RoIHeads(num_classes=2, in_channels=8, representation_size=16)
    gt = torch.tensor([[10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 100.0, 120.0]])
    proposals = torch.tensor([[11.0, 11.0, 50.0, 50.0, 0.9], [0.0, 0.0, 5.0, 5.0, 0.8]])
    targets = head.sample_targets(proposals, gt, torch.tensor([1, 0]))
    assert targets.labels.tolist() == [2, 1, 2, 0]  # gt0, gt1, proposal0 (class 1), negative
    torch.testing.assert_close(targets.rois[:2], gt)
    torch.testing.assert_close(targets.deltas[:2], torch.zeros(2, 4))
    empty = head.sample_targets(proposals, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert empty.labels.tolist() == [0, 0] and empty.deltas.shape == (0, 4)


def test_loss_averages_over_all_sampled_rois() -> None:
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.5, 0.5]])
    deltas = torch.zeros(3, 8)
    deltas[0, 4:] = torch.tensor([1.0, -1.0, 0.5, 0.0])
    labels = torch.tensor([1, 0, 0])
    targets = torch.zeros(1, 4)
    losses = box_head_loss(logits, deltas, labels, targets)
    torch.testing.assert_close(
        losses["loss_cls"], torch.nn.functional.cross_entropy(logits, labels)
    )
    torch.testing.assert_close(losses["loss_bbox"], torch.tensor(2.5 / 3))
    no_pos = box_head_loss(logits, deltas, torch.zeros(3, dtype=torch.long), torch.zeros(0, 4))
    assert no_pos["loss_bbox"].item() == 0.0


def test_loss_without_gt_is_finite() -> None:
    head = RoIHeads(num_classes=1, in_channels=8, representation_size=16)
    proposals = torch.tensor([[10.0, 10.0, 40.0, 60.0, 0.5]])
    losses = head.loss(
        _features(), [proposals], [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)]
    )
    assert torch.isfinite(losses["loss_cls"]) and losses["loss_bbox"].item() == 0.0
