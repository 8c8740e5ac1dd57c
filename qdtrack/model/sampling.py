"""Proposal assignment, sampling and key/reference targets (reference b, a.4, a.5, a.7 item 7).

Pure functions reproducing mmdet 2.x ``MaxIoUAssigner``, ``RandomSampler``,
``InstanceBalancedPosSampler`` and ``CombinedSampler`` (with ``add_gt_as_proposals``), and
mmtracking's ``MatchInstances`` / ``QuasiDenseEmbedHead.get_targets``. Randomness comes only
from the ``torch.Generator`` argument, so a seeded generator gives reproducible samples (the
reference draws from the global RNG; its exact draws cannot be reproduced).

Assignment encoding (differs from mmdet's ``0`` = negative, ``-1`` = ignored, ``i+1`` = gt i):
``gt_index >= 0`` is the assigned gt of a positive, :data:`NEGATIVE` (−1) a negative and
:data:`IGNORED` (−2) a box between the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "IGNORED",
    "NEGATIVE",
    "AssignResult",
    "SamplingResult",
    "assign_max_iou",
    "box_iou",
    "match_instances",
    "sample_instance_balanced_positives",
    "sample_proposals",
    "sample_random",
    "track_targets",
]

#: ``gt_index`` of a negative proposal (mmdet: 0).
NEGATIVE = -1
#: ``gt_index`` of a proposal whose max IoU lies between the thresholds (mmdet: -1).
IGNORED = -2
#: Key gt without a reference gt of the same instance (mmtracking ``gt_match_indices``).
UNMATCHED = -1


def box_iou(boxes_a: Tensor, boxes_b: Tensor, eps: float = 1e-6) -> Tensor:
    """IoU matrix as mmdet's ``bbox_overlaps`` (no ``+1``; union clamped below by ``eps``).

    Args:
        boxes_a: Boxes of shape (M, 4), xyxy.
        boxes_b: Boxes of shape (N, 4), xyxy.
        eps: Lower bound of the union (keeps degenerate boxes at IoU 0 instead of NaN).

    Returns:
        Tensor of shape (M, N).
    """
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    top_left = torch.max(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.min(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


class AssignResult(NamedTuple):
    """Assignment of N boxes to G ground-truth boxes.

    Attributes:
        gt_index: Long tensor (N,): gt index (>= 0) of positives, ``NEGATIVE`` or ``IGNORED``.
        max_iou: Tensor (N,): each box's largest IoU with any gt (0 without gts).
    """

    gt_index: Tensor
    max_iou: Tensor


def assign_max_iou(
    proposals: Tensor,
    gts: Tensor,
    *,
    pos_iou_thr: float = 0.7,
    neg_iou_thr: float | tuple[float, float] = 0.5,
    min_pos_iou: float = 0.5,
    match_low_quality: bool = False,
    gt_max_assign_all: bool = True,
) -> AssignResult:
    """Assign proposals to gts by IoU (mmdet ``MaxIoUAssigner``, ``ignore_iof_thr=-1``).

    1. Every box with ``0 <= max IoU < neg_iou_thr`` (or inside ``[lo, hi)`` for a tuple) is
       negative; without gts every box is negative.
    2. Every box with ``max IoU >= pos_iou_thr`` is positive for its argmax gt.
    3. With ``match_low_quality``, for each gt in index order whose best IoU is
       ``>= min_pos_iou``, the boxes reaching that best IoU (all of them if
       ``gt_max_assign_all``, else the first) become positive for it, overriding steps 1–2
       (later gts win ties).
    4. The rest are ignored.

    The track head uses ``pos 0.7, neg 0.5, min_pos 0.5, match_low_quality=False``; the RPN
    ``0.7 / 0.3 / 0.3, True``; the RoI head ``0.5 / 0.5 / 0.5, False`` (reference a.4, a.5, b).

    Args:
        proposals: Boxes of shape (N, 4) or (N, 5) (a score column is ignored), xyxy.
        gts: Ground-truth boxes of shape (G, 4), xyxy.
        pos_iou_thr: Minimum IoU of a positive.
        neg_iou_thr: IoU below which a box is negative, or a ``(lo, hi)`` range.
        min_pos_iou: Minimum IoU of a low-quality match.
        match_low_quality: Give every gt its best-matching boxes.
        gt_max_assign_all: Low-quality matching assigns every box tied at the gt's best IoU.

    Returns:
        The :class:`AssignResult`.
    """
    proposals = proposals[:, :4]
    num_boxes, num_gts = proposals.shape[0], gts.shape[0]
    gt_index = torch.full((num_boxes,), IGNORED, dtype=torch.long, device=proposals.device)
    if num_gts == 0 or num_boxes == 0:
        gt_index.fill_(NEGATIVE)
        return AssignResult(gt_index, proposals.new_zeros((num_boxes,)))

    overlaps = box_iou(gts.to(proposals.dtype), proposals)  # (G, N), as mmdet
    max_iou, argmax_gt = overlaps.max(dim=0)
    if isinstance(neg_iou_thr, tuple):
        low, high = neg_iou_thr
        gt_index[(max_iou >= low) & (max_iou < high)] = NEGATIVE
    else:
        gt_index[(max_iou >= 0) & (max_iou < neg_iou_thr)] = NEGATIVE
    positive = max_iou >= pos_iou_thr
    gt_index[positive] = argmax_gt[positive]
    if match_low_quality:
        gt_best_iou, gt_best_box = overlaps.max(dim=1)
        for gt in range(num_gts):
            if gt_best_iou[gt] >= min_pos_iou:
                if gt_max_assign_all:
                    gt_index[overlaps[gt] == gt_best_iou[gt]] = gt
                else:
                    gt_index[gt_best_box[gt]] = gt
    return AssignResult(gt_index, max_iou)


def sample_random(candidates: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
    """Up to ``num`` entries of ``candidates`` drawn without replacement (mmdet ``random_choice``).

    Args:
        candidates: 1-D tensor of indices.
        num: How many to keep; all are returned (in order) when there are not more.
        generator: Random generator (CPU).

    Returns:
        1-D tensor of at most ``num`` entries.
    """
    if num <= 0:
        return candidates[:0]
    if candidates.numel() <= num:
        return candidates
    permutation = torch.randperm(candidates.numel(), generator=generator)[:num]
    return candidates[permutation.to(candidates.device)]


def sample_instance_balanced_positives(
    gt_index: Tensor,
    num_expected: int,
    generator: torch.Generator | None,
    *,
    exclude_sampled_from_top_up: bool = False,
) -> Tensor:
    """Positives balanced over instances (mmdet ``InstanceBalancedPosSampler._sample_pos``).

    If at most ``num_expected`` positives exist, all are returned. Otherwise each gt gets up
    to ``round(num_expected / #gts) + 1`` random positives (Python's round-half-even); the
    union is then topped up with random positives or trimmed at random to ``num_expected``.

    Reference quirk: mmdet computes the top-up pool as ``set(pos_inds) - set(sampled_inds)``
    over 0-d tensors, which hash by identity, so nothing is removed and the top-up may draw
    positives already sampled; after the caller's ``unique()`` fewer than ``num_expected``
    positives may remain. This is reproduced by default; ``exclude_sampled_from_top_up=True``
    draws the top-up from the not-yet-sampled positives only.

    Args:
        gt_index: Assignment (N,) as in :class:`AssignResult`.
        num_expected: Maximum number of positives.
        generator: Random generator (CPU).
        exclude_sampled_from_top_up: Opt-in fix of the quirk above.

    Returns:
        1-D long tensor of positive indices (may contain duplicates, as the reference).
    """
    positives = torch.nonzero(gt_index >= 0).squeeze(1)
    if positives.numel() <= num_expected:
        return positives
    instances = gt_index[positives].unique()
    num_per_gt = int(round(num_expected / float(len(instances))) + 1)
    sampled = torch.cat(
        [
            sample_random(torch.nonzero(gt_index == gt).squeeze(1), num_per_gt, generator)
            for gt in instances.tolist()
        ]
    )
    if len(sampled) < num_expected:
        num_extra = num_expected - len(sampled)
        pool = positives
        if exclude_sampled_from_top_up:
            pool = positives[~torch.isin(positives, sampled)]
        sampled = torch.cat([sampled, sample_random(pool, num_extra, generator)])
    elif len(sampled) > num_expected:
        sampled = sample_random(sampled, num_expected, generator)
    return sampled


@dataclass(frozen=True)
class SamplingResult:
    """Sampled boxes of one image.

    Attributes:
        boxes: All candidate boxes (C, 4): the gts first when they were added as
            proposals, then the proposals.
        gt_index: Assignment (C,) of every candidate (gts are positive for themselves).
        pos_index: Sorted unique indices (P,) into ``boxes`` of the sampled positives.
        neg_index: Sorted unique indices (Q,) into ``boxes`` of the sampled negatives.
        num_gts: Number of gt boxes of the image.
    """

    boxes: Tensor
    gt_index: Tensor
    pos_index: Tensor
    neg_index: Tensor
    num_gts: int

    @property
    def pos_boxes(self) -> Tensor:
        """Positive boxes (P, 4)."""
        return self.boxes[self.pos_index]

    @property
    def neg_boxes(self) -> Tensor:
        """Negative boxes (Q, 4)."""
        return self.boxes[self.neg_index]

    @property
    def pos_assigned_gt(self) -> Tensor:
        """Assigned gt index (P,) of each positive."""
        return self.gt_index[self.pos_index]

    @property
    def sampled_boxes(self) -> Tensor:
        """Positives then negatives (P + Q, 4) (mmdet ``SamplingResult.bboxes``)."""
        return torch.cat([self.pos_boxes, self.neg_boxes])

    @property
    def sampled_assigned_gt(self) -> Tensor:
        """Assigned gt of ``sampled_boxes`` (P + Q,): gt index, then ``NEGATIVE`` for negatives."""
        return torch.cat([self.pos_assigned_gt, torch.full_like(self.neg_index, NEGATIVE)])


def sample_proposals(
    assign: AssignResult,
    proposals: Tensor,
    gts: Tensor,
    *,
    num: int = 256,
    pos_fraction: float = 0.5,
    neg_pos_ub: float = 3,
    add_gt_as_proposals: bool = True,
    instance_balanced: bool = True,
    generator: torch.Generator | None = None,
    exclude_sampled_from_top_up: bool = False,
) -> SamplingResult:
    """Sample positives and negatives of one image (mmdet ``BaseSampler.sample``).

    The defaults are the track head's ``CombinedSampler(num=256, pos_fraction=0.5,
    neg_pos_ub=3, add_gt_as_proposals=True, InstanceBalancedPosSampler, RandomSampler)``.
    The RoI head uses ``num=512, pos_fraction=0.25, neg_pos_ub=-1, instance_balanced=False``.

    1. With ``add_gt_as_proposals`` the gts are prepended to the proposals, each assigned to
       itself.
    2. At most ``int(num · pos_fraction)`` positives: instance-balanced
       (:func:`sample_instance_balanced_positives`) or plain random; then ``unique()``.
    3. Negatives: ``num − #pos``, capped at ``int(neg_pos_ub · max(1, #pos))`` when
       ``neg_pos_ub >= 0``, drawn at random; then ``unique()``.

    Args:
        assign: Assignment of ``proposals`` (without the gts) to ``gts``.
        proposals: Boxes of shape (N, 4) or (N, 5) (a score column is dropped), xyxy.
        gts: Ground-truth boxes of shape (G, 4), xyxy.
        num: Total number of samples.
        pos_fraction: Maximum fraction of positives.
        neg_pos_ub: Maximum negative/positive ratio; negative for no bound.
        add_gt_as_proposals: Prepend the gts as positive candidates.
        instance_balanced: Balance positives over instances (track head) or draw at random.
        generator: Random generator (CPU) for reproducible draws.
        exclude_sampled_from_top_up: See :func:`sample_instance_balanced_positives`.

    Returns:
        The :class:`SamplingResult`.
    """
    if assign.gt_index.shape[0] != proposals.shape[0]:
        raise ValueError(
            f"assignment covers {assign.gt_index.shape[0]} boxes but there are "
            f"{proposals.shape[0]} proposals."
        )
    boxes = proposals[:, :4]
    gt_index = assign.gt_index
    if add_gt_as_proposals and gts.shape[0] > 0:
        boxes = torch.cat([gts.to(boxes.dtype), boxes])
        own_index = torch.arange(gts.shape[0], dtype=gt_index.dtype, device=gt_index.device)
        gt_index = torch.cat([own_index, gt_index])

    num_expected_pos = int(num * pos_fraction)
    if instance_balanced:
        pos_index = sample_instance_balanced_positives(
            gt_index,
            num_expected_pos,
            generator,
            exclude_sampled_from_top_up=exclude_sampled_from_top_up,
        )
    else:
        pos_index = sample_random(
            torch.nonzero(gt_index >= 0).squeeze(1), num_expected_pos, generator
        )
    pos_index = pos_index.unique()

    num_expected_neg = num - pos_index.numel()
    if neg_pos_ub >= 0:
        num_expected_neg = min(num_expected_neg, int(neg_pos_ub * max(1, pos_index.numel())))
    negatives = torch.nonzero(gt_index == NEGATIVE).squeeze(1)
    neg_index = sample_random(negatives, num_expected_neg, generator).unique()
    return SamplingResult(boxes, gt_index, pos_index, neg_index, num_gts=int(gts.shape[0]))


def match_instances(key_instance_ids: Tensor, ref_instance_ids: Tensor) -> Tensor:
    """Reference gt of the same instance for each key gt (mmtracking ``MatchInstances``).

    Only ids > 0 are matched (reference a.7 item 7, h.2: the instance with id 0 is never matched);
    a repeated reference id matches its first occurrence.

    Args:
        key_instance_ids: Integer ids (G_key,).
        ref_instance_ids: Integer ids (G_ref,).

    Returns:
        Long tensor (G_key,): index into the reference gts, or ``UNMATCHED`` (−1).
    """
    key_ids = key_instance_ids.reshape(-1, 1)
    ref_ids = ref_instance_ids.reshape(1, -1).to(key_ids.device)
    same = (key_ids == ref_ids) & (key_ids > 0)
    has_match = same.any(dim=1)
    # argmax of a bool row returns its first True.
    first = same.to(torch.uint8).argmax(dim=1) if same.shape[1] > 0 else has_match.long()
    return torch.where(has_match, first.long(), torch.full_like(first.long(), UNMATCHED))


def track_targets(
    key_assigned_gt: Tensor, ref_assigned_gt: Tensor, key_to_ref_gt: Tensor
) -> tuple[Tensor, Tensor]:
    """Pair targets and row weights of one image (mmtracking ``get_targets``, reference b).

    ``targets[i, j] = 1`` iff reference sample ``j`` is a positive whose gt is the reference
    gt of key positive ``i``'s instance; ``weights[i] = 1`` iff row ``i`` has a positive.

    Args:
        key_assigned_gt: Key gt index (P,) of each key positive.
        ref_assigned_gt: Reference gt index (R,) of each reference sample, ``NEGATIVE`` (−1)
            for negatives.
        key_to_ref_gt: For each key gt, the reference gt of the same instance or −1 (G_key,),
            from :func:`match_instances`.

    Returns:
        ``targets`` int32 (P, R) and ``weights`` float32 (P,).
    """
    wanted = key_to_ref_gt[key_assigned_gt]
    targets = (wanted[:, None] == ref_assigned_gt[None, :]) & (ref_assigned_gt[None, :] >= 0)
    targets = targets.to(torch.int32)
    weights = (targets.sum(dim=1) > 0).to(torch.float32)
    return targets, weights
