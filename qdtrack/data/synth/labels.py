"""Annotations of synthetic scenes: boxes, visibility, MOT17 gt and public detections.

Visibility is measured on silhouettes painted without anti-aliasing: the fraction of a
figure's pixels left after painting everything drawn in front of it. The MOT gt class
column is the figure's category id (1 person, 2 car, 3 dog, 4 ball).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from qdtrack.data.mot import MotTable
from qdtrack.data.synth.geometry import (
    FigureParts,
    Item,
    depth_order,
    fill_circle,
    fill_parts,
    fill_silhouette,
    item_box,
    object_parts,
    parts_box,
)
from qdtrack.data.synth.scene import (
    BoxXyxy,
    FigureState,
    SceneState,
    SequenceSim,
    foot_limits,
    perspective_height,
)
from qdtrack.structures import box_iou, tlwh_to_xyxy

# A figure enters the gt once this fraction of its box lies inside the image.
MIN_IN_FRAME = 0.3


@dataclass(frozen=True)
class FigureLabel:
    """Annotation of one figure in one scene.

    Attributes:
        track_id: the simulation's id of the figure.
        box_xyxy: full-body (full-object) box, not clipped to the image.
        head_xyxy: head box of a person; None for the other classes.
        visibility: fraction of the silhouette not hidden by figures or occluders in
            front of it (the image border does not count).
        in_frame: fraction of ``box_xyxy`` inside the image.
        visible_xyxy: box of the visible silhouette pixels inside the image (None if none).
        head_visibility: fraction of the head that is visible inside the image (0 without
            a head).
        category_id: the figure's class (1 person, 2 car, 3 dog, 4 ball).
        visible_in_frame: fraction of the silhouette that is both unhidden and inside the
            image (what the TAO / LVIS export thresholds).
    """

    track_id: int
    box_xyxy: BoxXyxy
    head_xyxy: BoxXyxy | None
    visibility: float
    in_frame: float
    visible_xyxy: BoxXyxy | None
    head_visibility: float
    category_id: int
    visible_in_frame: float


def _overlaps(a: BoxXyxy, b: BoxXyxy) -> bool:
    """True if two boxes share some area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _in_image(xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mask of the pixel coordinates that lie inside the image."""
    return (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)


def _fraction_in_frame(box: BoxXyxy, width: int, height: int) -> float:
    """Fraction of the area of ``box`` inside the image."""
    in_w = max(0.0, min(box[2], width) - max(box[0], 0.0))
    in_h = max(0.0, min(box[3], height) - max(box[1], 0.0))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float(in_w * in_h / max(area, 1e-6))


def _label_figure(fig: FigureState, front: list[Item], width: int, height: int) -> FigureLabel:
    """Box and visibility of ``fig`` given the items drawn in front of it."""
    parts = object_parts(fig)
    box = parts_box(parts)
    ox, oy = math.floor(box[0]) - 1, math.floor(box[1]) - 1
    size = (math.ceil(box[3]) - oy + 2, math.ceil(box[2]) - ox + 2)
    canvas = np.zeros(size, np.uint8)
    fill_parts(canvas, parts, (ox, oy), 1)
    head_mask = np.zeros(size, np.uint8)
    head = parts.head if isinstance(parts, FigureParts) else None
    if head is not None:
        fill_circle(head_mask, head, 1, (ox, oy), cv2.LINE_8)
    total = int(canvas.sum())
    for item in front:
        if _overlaps(box, item_box(item)):
            fill_silhouette(canvas, item, (ox, oy), 0)
    visibility = int(canvas.sum()) / max(total, 1)
    # Visible pixels inside the image (for CrowdHuman's vbox and head occlusion).
    ys, xs = np.nonzero(canvas)
    xs, ys = xs + ox, ys + oy
    inside = _in_image(xs, ys, width, height)
    visible_in_frame = int(inside.sum()) / max(total, 1)
    visible_xyxy: BoxXyxy | None = None
    if inside.any():
        xs, ys = xs[inside], ys[inside]
        visible_xyxy = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    hy, hx = np.nonzero(canvas & head_mask)
    head_inside = _in_image(hx + ox, hy + oy, width, height).sum()
    head_xyxy: BoxXyxy | None = None
    if head is not None:
        cx, cy, r = head
        head_xyxy = (cx - r, cy - r, cx + r, cy + r)
    return FigureLabel(
        track_id=fig.track_id,
        box_xyxy=box,
        head_xyxy=head_xyxy,
        visibility=float(min(max(visibility, 0.0), 1.0)),
        in_frame=_fraction_in_frame(box, width, height),
        visible_xyxy=visible_xyxy,
        head_visibility=float(head_inside) / max(int(head_mask.sum()), 1),
        category_id=fig.category_id,
        visible_in_frame=float(min(max(visible_in_frame, 0.0), 1.0)),
    )


def label_scene(scene: SceneState, width: int, height: int) -> list[FigureLabel]:
    """Full-body box, visibility and visible box of every figure in ``scene``.

    Visibility is the fraction of a figure's silhouette pixels that remain after painting
    every figure and occluder drawn in front of it (depth order = foot row).
    """
    order = depth_order(scene)
    labels = []
    for index, item in enumerate(order):
        if isinstance(item, FigureState):
            labels.append(_label_figure(item, order[index + 1 :], width, height))
    return sorted(labels, key=lambda label: label.track_id)


def rounded_tlwh(box: BoxXyxy) -> tuple[int, int, int, int]:
    """Integer (left, top, width, height), as MOT17 gt boxes are."""
    left, top = round(box[0]), round(box[1])
    return left, top, max(round(box[2]) - left, 1), max(round(box[3]) - top, 1)


@dataclass(frozen=True)
class SequenceLabels:
    """The gt of a simulated sequence and what the TAO export needs besides it.

    Attributes:
        gt: MOT17 gt, rows ordered by frame (flag 1, class = category id, visibility).
        lookalike_pairs: the look-alike pairs in gt ids.
        visible_in_frame: (N,) float64, per gt row: fraction of the silhouette that is
            unhidden and inside the image.
    """

    gt: MotTable
    lookalike_pairs: tuple[tuple[int, int], ...]
    visible_in_frame: np.ndarray


def label_sequence(sim: SequenceSim, width: int, height: int) -> SequenceLabels:
    """MOT17 gt of a simulated sequence, its look-alike pairs and per-row visibility.

    A figure is annotated while at least ``MIN_IN_FRAME`` of its box is inside the
    image; ids are renumbered 1, 2, ... by first appearance, and ids seen in fewer than
    two frames are dropped.
    """
    rows: list[tuple[int, FigureLabel]] = []
    for frame, scene in enumerate(sim.frames, start=1):
        for label in label_scene(scene, width, height):
            if label.in_frame >= MIN_IN_FRAME:
                rows.append((frame, label))
    counts = Counter(label.track_id for _, label in rows)
    new_ids: dict[int, int] = {}
    for _, label in rows:
        if counts[label.track_id] >= 2 and label.track_id not in new_ids:
            new_ids[label.track_id] = len(new_ids) + 1
    kept = [(frame, label) for frame, label in rows if label.track_id in new_ids]
    n = len(kept)
    boxes = [rounded_tlwh(label.box_xyxy) for _, label in kept]
    table = MotTable(
        frames=np.array([frame for frame, _ in kept], np.int64),
        ids=np.array([new_ids[label.track_id] for _, label in kept], np.int64),
        boxes_tlwh=np.array(boxes, np.float32).reshape(n, 4),
        scores=np.ones(n, np.float32),
        classes=np.array([label.category_id for _, label in kept], np.int64).reshape(n),
        visibility=np.array([round(label.visibility, 3) for _, label in kept], np.float32),
    )
    pairs = tuple(
        (new_ids[a], new_ids[b]) for a, b in sim.lookalike_pairs if a in new_ids and b in new_ids
    )
    visible = np.array([label.visible_in_frame for _, label in kept], np.float64).reshape(n)
    return SequenceLabels(table, pairs, visible)


def sequence_gt(
    sim: SequenceSim, width: int, height: int
) -> tuple[MotTable, tuple[tuple[int, int], ...]]:
    """MOT17 gt of a simulated sequence and its look-alike pairs in gt ids.

    See :func:`label_sequence` for the rules.

    Returns:
        (gt table with flag 1, class = category id and visibility, pairs of gt ids).
    """
    labels = label_sequence(sim, width, height)
    return labels.gt, labels.lookalike_pairs


@dataclass(frozen=True)
class DetectionNoise:
    """How :func:`make_detections` degrades the gt into public detections.

    Attributes:
        jitter: std of the box centre offset and log-size change, relative to box size.
        miss_base: miss probability of a fully visible figure.
        miss_occluded: extra miss probability, times ``(1 - visibility) ** 2``.
        false_per_frame: mean number of background false positives per frame.
        partial_per_frame: mean number of upper-body boxes on real figures per frame.
    """

    jitter: float = 0.05
    miss_base: float = 0.03
    miss_occluded: float = 0.7
    false_per_frame: float = 0.25
    partial_per_frame: float = 0.1


def _clip_tlwh(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) float64 xyxy boxes clipped to the image, as tlwh."""
    b = boxes_xyxy.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def _false_positives(
    rng: np.random.Generator,
    gt: MotTable,
    frames: int,
    width: int,
    height: int,
    noise: DetectionNoise,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background boxes of person-like size and upper-body boxes on real figures."""
    n_bg = rng.poisson(noise.false_per_frame, frames)
    frame_bg = np.repeat(np.arange(1, frames + 1), n_bg)
    y_lo, y_hi = foot_limits(height)
    feet = rng.uniform(y_lo, y_hi, frame_bg.size)
    h = np.array([perspective_height(y, height) for y in feet]) * rng.uniform(0.6, 1.1, feet.size)
    w = h * rng.uniform(0.3, 0.5, feet.size)
    x = rng.uniform(0, width, feet.size)
    bg = np.stack([x - w / 2, feet - h, x + w / 2, feet], axis=1).reshape(-1, 4)
    n_part = min(int(rng.poisson(noise.partial_per_frame * frames)), len(gt))
    pick = np.sort(rng.choice(len(gt), n_part, replace=False)) if n_part else np.zeros(0, int)
    src = tlwh_to_xyxy(gt.boxes_tlwh[pick]).astype(np.float64)
    part = src.copy()
    part[:, 3] = src[:, 1] + (src[:, 3] - src[:, 1]) * rng.uniform(0.3, 0.45, n_part)
    boxes = np.concatenate([bg, part])
    frame_ids = np.concatenate([frame_bg, gt.frames[pick]])
    scores = np.concatenate([rng.uniform(0.05, 0.5, frame_bg.size), rng.uniform(0.2, 0.6, n_part)])
    return frame_ids, boxes, scores


def make_detections(
    rng: np.random.Generator,
    gt: MotTable,
    frames: int,
    width: int,
    height: int,
    noise: DetectionNoise | None = None,
) -> MotTable:
    """Noisy public detections derived from ``gt`` (MOT17 det layout, scores in [0, 1]).

    Boxes are jittered in proportion to their size and clipped to the image; figures are
    missed more often the more occluded they are; a few false positives are added.
    """
    noise = noise or DetectionNoise()
    n = len(gt)
    vis = np.clip(gt.visibility.astype(np.float64), 0.0, 1.0)
    keep = rng.random(n) >= noise.miss_base + noise.miss_occluded * (1.0 - vis) ** 2
    boxes = gt.boxes_tlwh.astype(np.float64)
    w = boxes[:, 2] * np.exp(rng.normal(0.0, noise.jitter, n))
    h = boxes[:, 3] * np.exp(rng.normal(0.0, noise.jitter, n))
    cx = boxes[:, 0] + boxes[:, 2] / 2 + rng.normal(0.0, noise.jitter, n) * boxes[:, 2]
    cy = boxes[:, 1] + boxes[:, 3] / 2 + rng.normal(0.0, noise.jitter, n) * boxes[:, 3]
    true_xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    true_scores = np.clip(0.45 + 0.5 * vis + rng.normal(0.0, 0.08, n), 0.02, 0.999)
    fp_frames, fp_xyxy, fp_scores = _false_positives(rng, gt, frames, width, height, noise)
    frame_ids = np.concatenate([gt.frames[keep], fp_frames]).astype(np.int64)
    tlwh = _clip_tlwh(np.concatenate([true_xyxy[keep], fp_xyxy]), width, height)
    scores = np.concatenate([true_scores[keep], fp_scores])
    valid = (tlwh[:, 2] >= 2) & (tlwh[:, 3] >= 2)
    order = np.argsort(frame_ids[valid], kind="stable")
    m = int(valid.sum())
    return MotTable(
        frames=frame_ids[valid][order],
        ids=np.full(m, -1, np.int64),
        boxes_tlwh=np.round(tlwh[valid][order], 2).astype(np.float32),
        scores=np.round(scores[valid][order], 3).astype(np.float32),
        classes=np.ones(m, np.int64),
        visibility=np.full(m, -1.0, np.float32),
    )


def detection_recall(gt: MotTable, det: MotTable, iou_thr: float = 0.5) -> float:
    """Fraction of gt boxes matched one-to-one (greedy by IoU) by a detection."""
    matched = 0
    for frame in np.unique(gt.frames):
        g, d = gt.for_frame(int(frame)), det.for_frame(int(frame))
        if not len(d):
            continue
        iou = box_iou(g.boxes_xyxy, d.boxes_xyxy)
        while iou.size and iou.max() >= iou_thr:
            i, j = np.unravel_index(int(iou.argmax()), iou.shape)
            matched += 1
            iou[i, :] = -1.0
            iou[:, j] = -1.0
    return matched / max(len(gt), 1)


__all__ = [
    "MIN_IN_FRAME",
    "DetectionNoise",
    "FigureLabel",
    "SequenceLabels",
    "detection_recall",
    "label_scene",
    "label_sequence",
    "make_detections",
    "rounded_tlwh",
    "sequence_gt",
]
