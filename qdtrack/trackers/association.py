"""Pure association maths shared by the trackers: similarities and duplicate masks.

All functions take and return numpy arrays (float32 for scores) and hold no state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qdtrack.structures import box_iou

MATCH_METRICS = ("bisoftmax", "softmax", "cosine")


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def l2_normalize(x: npt.ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (clamped to ``eps``, as ``F.normalize``)."""
    a = np.asarray(x, dtype=np.float32)
    norm = np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
    return (a / norm).astype(np.float32, copy=False)


def cosine_similarity(embeds: npt.ArrayLike, memo_embeds: npt.ArrayLike) -> np.ndarray:
    """Cosine similarity, shape (N, M)."""
    return l2_normalize(embeds) @ l2_normalize(memo_embeds).T


def softmax_similarity(embeds: npt.ArrayLike, memo_embeds: npt.ArrayLike) -> np.ndarray:
    """Softmax of raw dot products over the memory axis, shape (N, M)."""
    dots = np.asarray(embeds, np.float32) @ np.asarray(memo_embeds, np.float32).T
    return _softmax(dots, axis=1)


def bisoftmax_similarity(embeds: npt.ArrayLike, memo_embeds: npt.ArrayLike) -> np.ndarray:
    """QDTrack's bi-directional softmax: mean of the row and the column softmax of dots."""
    dots = np.asarray(embeds, np.float32) @ np.asarray(memo_embeds, np.float32).T
    return (_softmax(dots, axis=1) + _softmax(dots, axis=0)) / 2


def similarity(metric: str, embeds: npt.ArrayLike, memo_embeds: npt.ArrayLike) -> np.ndarray:
    """Dispatch on ``metric`` (one of :data:`MATCH_METRICS`)."""
    if metric == "bisoftmax":
        return bisoftmax_similarity(embeds, memo_embeds)
    if metric == "softmax":
        return softmax_similarity(embeds, memo_embeds)
    if metric == "cosine":
        return cosine_similarity(embeds, memo_embeds)
    raise ValueError(f"match_metric must be one of {MATCH_METRICS}, got {metric!r}")


def masked_bisoftmax(
    embeds: npt.ArrayLike, memo_embeds: npt.ArrayLike, mask: npt.ArrayLike, eps: float = 1e-6
) -> np.ndarray:
    """The TAO tracker's bi-softmax: ``exp(S)·mask`` normalised per row and per column.

    Reference formula: ``E = exp(S) * mask``, ``(E / (ΣE_row + eps) + E / (ΣE_col + eps)) / 2``.
    Computed with a per-row/column shift in float64, which is the same quantity (the
    ``eps`` is shifted too) but stays finite where a float32 ``exp`` would overflow
    (dot products above ~88), where the reference formula turns into NaN.
    """
    dots = np.asarray(embeds, np.float64) @ np.asarray(memo_embeds, np.float64).T
    m = np.asarray(mask, dtype=bool)
    masked = np.where(m, dots, -np.inf)

    def normalised(axis: int) -> np.ndarray:
        shift = masked.max(axis=axis, keepdims=True)
        shift = np.where(np.isfinite(shift), shift, 0.0)
        e = np.where(m, np.exp(np.where(m, dots - shift, 0.0)), 0.0)
        # exp(-shift) may overflow to inf when every dot is hugely negative; the
        # quotient is then 0, as exp(dots) / (Σexp(dots) + eps) is in the reference.
        with np.errstate(over="ignore"):
            return e / (e.sum(axis=axis, keepdims=True) + eps * np.exp(-shift))

    return ((normalised(1) + normalised(0)) / 2).astype(np.float32)


def earlier_overlap(boxes_xyxy: npt.ArrayLike, iou_thr: npt.ArrayLike) -> np.ndarray:
    """For each box i: does it overlap (IoU > ``iou_thr[i]``) any box j < i?

    ``iou_thr`` is a scalar or one threshold per box. Boxes are compared in the order
    given, whatever became of the earlier ones (the reference compares against dropped
    boxes too, reference d.2 step 3).
    """
    boxes = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    n = boxes.shape[0]
    if n < 2:
        return np.zeros(n, dtype=bool)
    thr = np.broadcast_to(np.asarray(iou_thr, np.float32), (n,))
    ious = box_iou(boxes, boxes)
    earlier = np.tri(n, k=-1, dtype=bool)
    return ((ious > thr[:, None]) & earlier).any(axis=1)
