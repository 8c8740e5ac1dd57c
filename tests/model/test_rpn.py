"""RPN: box coding clamp, no clipping, proposal limits, loss averaging (reference a.4)."""

from __future__ import annotations

import math

import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops.boxes import clip_boxes_to_image

from qdtrack.model.preprocess import batch_images
from qdtrack.model.rpn import RegionProposalNetwork, clip_boxes, decode_deltas, encode_deltas

BOX = torch.tensor([[10.0, 20.0, 50.0, 100.0]])


def test_dw_dh_clamped_on_the_lower_side_too() -> None:
    deltas = torch.tensor([[0.0, 0.0, -10.0, -10.0]])
    ours = decode_deltas(BOX, deltas)
    clamp = math.exp(-abs(math.log(16 / 1000)))
    torch.testing.assert_close(ours[0, 2] - ours[0, 0], torch.tensor(40.0 * clamp))
    theirs = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(deltas, BOX)
    torch.testing.assert_close(theirs[0, 2] - theirs[0, 0], torch.tensor(40.0 * math.exp(-10)))
    torchvision_like = decode_deltas(BOX, deltas, clamp_dwh_both_sides=False)
    torch.testing.assert_close(torchvision_like, theirs)


def test_upper_clamp_and_rcnn_stds_match_torchvision_weights() -> None:
    deltas = torch.tensor([[0.3, -0.2, 0.5, 10.0], [1.0, 2.0, -0.7, 0.1]])
    boxes = torch.cat([BOX, BOX + 7])
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    ours = decode_deltas(boxes, deltas, (0.1, 0.1, 0.2, 0.2))
    torch.testing.assert_close(ours, coder.decode_single(deltas, boxes), rtol=1e-5, atol=1e-4)
    targets = torch.tensor([[12.0, 25.0, 40.0, 90.0], [0.0, 30.0, 70.0, 99.0]])
    encoded = encode_deltas(boxes, targets, (0.1, 0.1, 0.2, 0.2))
    torch.testing.assert_close(encoded, coder.encode_single(targets, boxes))
    torch.testing.assert_close(decode_deltas(boxes, encoded, (0.1, 0.1, 0.2, 0.2)), targets)


def _rpn_with_big_boxes(**kwargs: object) -> RegionProposalNetwork:
    rpn = RegionProposalNetwork(in_channels=8, **kwargs)  # type: ignore[arg-type]
    with torch.no_grad():
        rpn.head.bbox_pred.bias.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0] * 3))
    return rpn


def _features(batch_size: int = 1, height: int = 64, width: int = 96) -> list[torch.Tensor]:
    return [torch.randn(batch_size, 8, height // s, width // s) for s in (4, 8, 16, 32)] + [
        torch.randn(batch_size, 8, height // 64, -(-width // 64))
    ]


def test_proposals_are_not_clipped_by_default() -> None:
    batch = batch_images([torch.zeros(3, 64, 96)])
    rpn = _rpn_with_big_boxes()
    output = rpn(_features())
    proposals = rpn.proposals(output, batch, training=False)[0]
    boxes = proposals[:, :4]
    assert (boxes[:, :2] < 0).any() and (boxes[:, 2] > 96).any()
    clipped_rpn = _rpn_with_big_boxes(clip_border=True)
    clipped_rpn.load_state_dict(rpn.state_dict())
    clipped = clipped_rpn.proposals(output, batch, training=False)[0][:, :4]
    assert clipped.min() >= 0 and clipped[:, 2].max() <= 96 and clipped[:, 3].max() <= 64
    torch.testing.assert_close(clip_boxes(boxes, (64, 96)), clip_boxes_to_image(boxes, (64, 96)))


def test_proposal_limits_and_order() -> None:
    batch = batch_images([torch.zeros(3, 256, 256)])
    rpn = RegionProposalNetwork(in_channels=8, nms_pre_test=50, nms_pre_train=100, max_per_img=120)
    output = rpn(_features(1, 256, 256))
    test_props = rpn.proposals(output, batch, training=False)[0]
    train_props = rpn.proposals(output, batch, training=True)[0]
    assert test_props.shape[0] <= 5 * 50 and train_props.shape[0] == 120
    assert not test_props.requires_grad
    assert torch.all(test_props[1:, 4] <= test_props[:-1, 4])
    assert torch.all(test_props[:, 2] > test_props[:, 0]) and torch.all(
        test_props[:, 3] > test_props[:, 1]
    )


def test_loss_without_gt_is_finite_with_zero_box_loss() -> None:
    batch = batch_images([torch.zeros(3, 64, 96)])
    rpn = RegionProposalNetwork(in_channels=8)
    output = rpn(_features())
    losses = rpn.loss(output, batch, [torch.zeros(0, 4)])
    assert torch.isfinite(losses["loss_rpn_cls"])
    assert losses["loss_rpn_bbox"].item() == 0.0
    # 256 negatives and no positive: mmdet divides the sum by max(0, 1) + 256.
    logits = torch.cat(output.objectness, dim=1)[0]
    assert logits.numel() > 256
    per_anchor = torch.nn.functional.softplus(logits)
    expected_range = (per_anchor.min() * 256 / 257, per_anchor.max() * 256 / 257)
    assert expected_range[0] <= losses["loss_rpn_cls"] <= expected_range[1]


def test_loss_ignores_anchors_in_another_images_padding() -> None:
    batch = batch_images([torch.zeros(3, 32, 32), torch.zeros(3, 128, 128)])
    rpn = RegionProposalNetwork(in_channels=8, num_samples=100000)
    output = rpn(_features(2, 128, 128))
    gt = torch.tensor([[4.0, 4.0, 30.0, 30.0]])
    valid = rpn._valid_anchors(output, batch.pad_sizes[0])
    assert 0 < int(valid.sum()) < valid.numel()
    pos, neg, _ = rpn._sample_single(torch.cat(output.anchors), valid, gt, None)
    assert valid[pos].all() and valid[neg].all()
    assert pos.numel() + neg.numel() <= int(valid.sum())
    losses = rpn.loss(output, batch, [gt, gt])
    assert all(torch.isfinite(v) for v in losses.values())
