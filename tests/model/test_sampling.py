"""Tests of max-IoU assignment, proposal sampling, instance matching and track targets."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from qdtrack.model.sampling import (
    IGNORED,
    NEGATIVE,
    UNMATCHED,
    assign_max_iou,
    box_iou,
    match_instances,
    sample_instance_balanced_positives,
    sample_proposals,
    track_targets,
)

torch.set_flush_denormal(True)


def test_box_iou_matches_torchvision_on_regular_boxes() -> None:
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=generator) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=generator) * 50], dim=1)
    torch.testing.assert_close(box_iou(boxes[:20], boxes), tv_box_iou(boxes[:20], boxes))
    degenerate = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert box_iou(degenerate, degenerate).item() == 0.0  # eps keeps it finite


def test_assign_thresholds() -> None:
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    proposals = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1.0 -> positive
            [0.0, 0.0, 10.0, 7.0],  # 0.7 -> positive (>=)
            [0.0, 0.0, 10.0, 6.0],  # 0.6 -> ignored
            [0.0, 0.0, 10.0, 5.0],  # 0.5 -> ignored (neg is < 0.5)
            [0.0, 0.0, 10.0, 4.0],  # 0.4 -> negative
            [50.0, 50.0, 60.0, 60.0],  # 0 -> negative
        ]
    )
    result = assign_max_iou(proposals, gts, pos_iou_thr=0.7, neg_iou_thr=0.5, min_pos_iou=0.5)
    assert result.gt_index.tolist() == [0, 0, IGNORED, IGNORED, NEGATIVE, NEGATIVE]
    torch.testing.assert_close(result.max_iou, torch.tensor([1.0, 0.7, 0.6, 0.5, 0.4, 0.0]))


def test_assign_picks_argmax_gt_and_low_quality_matches() -> None:
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 0.0, 110.0, 10.0]])
    proposals = torch.tensor(
        [
            [0.0, 0.0, 10.0, 9.0],  # 0.9 with gt 0
            [100.0, 0.0, 110.0, 6.0],  # 0.6 with gt 1 (its best)
            [100.0, 4.0, 110.0, 10.0],  # 0.6 with gt 1 (tied best)
        ]
    )
    plain = assign_max_iou(proposals, gts, pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3)
    assert plain.gt_index.tolist() == [0, IGNORED, IGNORED]
    low_quality = assign_max_iou(
        proposals, gts, pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True
    )
    assert low_quality.gt_index.tolist() == [0, 1, 1]
    first_only = assign_max_iou(
        proposals,
        gts,
        pos_iou_thr=0.7,
        neg_iou_thr=0.3,
        min_pos_iou=0.3,
        match_low_quality=True,
        gt_max_assign_all=False,
    )
    assert first_only.gt_index.tolist() == [0, 1, IGNORED]
    too_low = assign_max_iou(
        proposals, gts, pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.65, match_low_quality=True
    )
    assert too_low.gt_index.tolist() == [0, IGNORED, IGNORED]


def test_assign_without_gts_or_proposals() -> None:
    proposals = torch.tensor([[0.0, 0.0, 5.0, 5.0, 0.9], [1.0, 1.0, 4.0, 4.0, 0.3]])
    result = assign_max_iou(proposals, torch.zeros(0, 4))
    assert result.gt_index.tolist() == [NEGATIVE, NEGATIVE]
    assert result.max_iou.tolist() == [0.0, 0.0]
    empty = assign_max_iou(torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    assert empty.gt_index.shape == (0,)


def _crowded_scene(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three gts with 300, 20 and 5 jittered positives plus 1000 far-away negatives."""
    gts = torch.tensor([[0.0, 0.0, 100.0, 100.0], [200.0, 0.0, 300.0, 100.0], [400.0, 0, 500, 100]])
    parts = []
    for gt, count in zip(gts, (300, 20, 5), strict=True):
        parts.append(gt + (torch.rand(count, 4, generator=generator) - 0.5) * 4)
    xy = 1000 + torch.rand(1000, 2, generator=generator) * 500
    parts.append(torch.cat([xy, xy + 20], dim=1))
    return torch.cat(parts), gts


def test_sampler_bounds_and_gts_as_own_positives() -> None:
    generator = torch.Generator().manual_seed(0)
    proposals, gts = _crowded_scene(generator)
    assign = assign_max_iou(proposals, gts)
    result = sample_proposals(assign, proposals, gts, generator=generator)
    num_pos, num_neg = len(result.pos_index), len(result.neg_index)
    assert 0 < num_pos <= 128
    assert num_neg == min(256 - num_pos, 3 * num_pos)
    # gts are the first candidates, each positive for itself.
    assert result.gt_index[:3].tolist() == [0, 1, 2]
    torch.testing.assert_close(result.boxes[:3], gts)
    assert (result.gt_index[result.pos_index] >= 0).all()
    assert (result.gt_index[result.neg_index] == NEGATIVE).all()
    assert torch.equal(result.pos_index, result.pos_index.unique())
    assert torch.equal(result.neg_index, result.neg_index.unique())
    # every instance is represented (instance balancing)
    assert set(result.pos_assigned_gt.tolist()) == {0, 1, 2}
    assert result.sampled_boxes.shape == (num_pos + num_neg, 4)
    assert result.sampled_assigned_gt[num_pos:].eq(NEGATIVE).all()


def test_sampler_keeps_all_positives_when_few() -> None:
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]])
    proposals = torch.tensor(
        [[0.0, 0.0, 10.0, 9.5]] + [[100.0 + i, 100.0, 110.0 + i, 110.0] for i in range(20)]
    )
    assign = assign_max_iou(proposals, gts)
    result = sample_proposals(assign, proposals, gts, generator=torch.Generator().manual_seed(0))
    assert result.pos_index.tolist() == [0, 1, 2]  # both gts and the good proposal
    assert result.pos_assigned_gt.tolist() == [0, 1, 0]
    assert len(result.neg_index) == 9  # 3 x 3 positives


def test_sampler_is_deterministic_with_a_seeded_generator() -> None:
    proposals, gts = _crowded_scene(torch.Generator().manual_seed(1))
    assign = assign_max_iou(proposals, gts)

    def run(seed: int) -> tuple[list[int], list[int]]:
        result = sample_proposals(
            assign, proposals, gts, generator=torch.Generator().manual_seed(seed)
        )
        return result.pos_index.tolist(), result.neg_index.tolist()

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_instance_balanced_counts_and_top_up_quirk() -> None:
    # gt 0: 301 candidates, gt 1: 21, gt 2: 6 -> 44 + 21 + 6 = 71 < 128, top up 57.
    gt_index = torch.cat([torch.zeros(301), torch.ones(21), torch.full((6,), 2.0)]).long()
    gt_index = torch.cat([gt_index, torch.full((50,), NEGATIVE)])
    fixed = sample_instance_balanced_positives(
        gt_index, 128, torch.Generator().manual_seed(0), exclude_sampled_from_top_up=True
    )
    assert len(fixed) == 128 and len(fixed.unique()) == 128
    assert (gt_index[fixed] >= 0).all()
    # Reference quirk: the top-up may repeat sampled positives, so unique() can leave fewer.
    unique_counts = {
        len(
            sample_instance_balanced_positives(
                gt_index, 128, torch.Generator().manual_seed(s)
            ).unique()
        )
        for s in range(5)
    }
    assert all(71 <= count <= 128 for count in unique_counts)
    assert min(unique_counts) < 128


def test_match_instances_only_positive_ids_first_occurrence() -> None:
    key_ids = torch.tensor([5, 0, 7, 3])
    ref_ids = torch.tensor([0, 5, 3, 3])
    assert match_instances(key_ids, ref_ids).tolist() == [1, UNMATCHED, UNMATCHED, 2]
    assert match_instances(key_ids, torch.zeros(0, dtype=torch.long)).tolist() == [-1] * 4
    assert match_instances(torch.zeros(0, dtype=torch.long), ref_ids).shape == (0,)


def test_track_targets_hand_built_two_gt_case() -> None:
    # key gt 0 is instance 5, key gt 1 is instance 0 (never matched, even though the
    # reference frame also holds an instance 0).
    key_to_ref_gt = match_instances(torch.tensor([5, 0]), torch.tensor([0, 5]))
    assert key_to_ref_gt.tolist() == [1, UNMATCHED]
    key_assigned = torch.tensor([0, 0, 1])
    ref_assigned = torch.tensor([1, 0, 1, NEGATIVE, NEGATIVE])
    targets, weights = track_targets(key_assigned, ref_assigned, key_to_ref_gt)
    assert targets.dtype == torch.int32 and weights.dtype == torch.float32
    assert targets.tolist() == [[1, 0, 1, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    assert weights.tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("num_key", [0, 2])
def test_track_targets_empty_reference(num_key: int) -> None:
    targets, weights = track_targets(
        torch.zeros(num_key, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
        torch.tensor([0]),
    )
    assert targets.shape == (num_key, 0) and weights.tolist() == [0.0] * num_key
