"""Typed containers used at every boundary: detections in, tracks out.

Boxes carry their format in the field name: ``boxes_xyxy`` is ``(x1, y1, x2, y2)`` in
pixels of the original frame; ``tlwh`` is ``(left, top, width, height)`` as in the
MOTChallenge files. All arrays are numpy; the model converts its tensors at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def xyxy_to_tlwh(boxes_xyxy: npt.ArrayLike) -> FloatArray:
    """Convert (N, 4) corner boxes to (left, top, width, height)."""
    b = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def tlwh_to_xyxy(boxes_tlwh: npt.ArrayLike) -> FloatArray:
    """Convert (N, 4) (left, top, width, height) boxes to corners."""
    b = np.asarray(boxes_tlwh, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def box_iou(boxes_a: npt.ArrayLike, boxes_b: npt.ArrayLike) -> FloatArray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes, shape (N, M).

    Matches mmdet's ``bbox_overlaps`` (mode 'iou', no +1 offset): the union is clamped
    to float32 eps so degenerate boxes give 0 rather than NaN.
    """
    a = np.asarray(boxes_a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float32).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = np.maximum(area_a[:, None] + area_b[None, :] - inter, np.finfo(np.float32).eps)
    return (inter / union).astype(np.float32, copy=False)


def _as_2d(name: str, value: npt.ArrayLike, width: int | None, dtype: type) -> np.ndarray:
    arr: np.ndarray = np.asarray(value, dtype=dtype)
    if arr.size == 0 and width is not None:
        arr = arr.reshape(0, width)
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
        want = f"(N, {width})" if width is not None else "(N, D)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


def _as_1d(name: str, value: npt.ArrayLike, n: int, dtype: type) -> np.ndarray:
    arr: np.ndarray = np.asarray(value, dtype=dtype).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but there are {n} boxes")
    return arr


@dataclass(frozen=True)
class Detections:
    """Detections of one frame.

    Attributes:
        boxes_xyxy: (N, 4) float32 boxes in original-frame pixels.
        scores: (N,) float32 detection scores.
        labels: (N,) int64 class indices (0-based; 0 = pedestrian for MOT).
        embeddings: (N, D) float32 appearance embeddings, or ``None`` when a tracker
            needs none (the IoU baseline).
    """

    boxes_xyxy: FloatArray
    scores: FloatArray
    labels: IntArray
    embeddings: FloatArray | None = None

    def __post_init__(self) -> None:
        boxes = _as_2d("boxes_xyxy", self.boxes_xyxy, 4, np.float32)
        n = boxes.shape[0]
        object.__setattr__(self, "boxes_xyxy", boxes)
        object.__setattr__(self, "scores", _as_1d("scores", self.scores, n, np.float32))
        object.__setattr__(self, "labels", _as_1d("labels", self.labels, n, np.int64))
        if self.embeddings is not None:
            emb = _as_2d("embeddings", self.embeddings, None, np.float32)
            if emb.shape[0] != n:
                raise ValueError(f"embeddings has {emb.shape[0]} rows but there are {n} boxes")
            object.__setattr__(self, "embeddings", emb)
        if not (np.isfinite(boxes).all() and np.isfinite(self.scores).all()):
            raise ValueError("boxes_xyxy and scores must be finite")

    def __len__(self) -> int:
        return int(self.boxes_xyxy.shape[0])

    @classmethod
    def empty(cls, embed_dim: int | None = None) -> Detections:
        """No detections (with an empty (0, D) embedding matrix if ``embed_dim`` is given)."""
        emb = None if embed_dim is None else np.zeros((0, embed_dim), np.float32)
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), emb
        )

    def select(self, index: npt.ArrayLike) -> Detections:
        """Rows picked by an integer index array or a boolean mask."""
        idx = np.asarray(index)
        emb = None if self.embeddings is None else self.embeddings[idx]
        return Detections(self.boxes_xyxy[idx], self.scores[idx], self.labels[idx], emb)


@dataclass(frozen=True)
class Tracks:
    """Tracker output for one frame: the detections that received a track id.

    Attributes:
        boxes_xyxy: (K, 4) float32 boxes.
        scores: (K,) float32 scores (the TAO tracker reports its momentum-blended score).
        labels: (K,) int64 class indices.
        track_ids: (K,) int64 ids; ``>= 0`` for real tracks. Trackers report only those
            unless asked for unconfirmed rows (``-1`` unmatched, ``-2`` suppressed duplicate).
        input_indices: (K,) int64 row of each entry in the ``Detections`` passed in.
    """

    boxes_xyxy: FloatArray
    scores: FloatArray
    labels: IntArray
    track_ids: IntArray
    input_indices: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        boxes = _as_2d("boxes_xyxy", self.boxes_xyxy, 4, np.float32)
        n = boxes.shape[0]
        object.__setattr__(self, "boxes_xyxy", boxes)
        object.__setattr__(self, "scores", _as_1d("scores", self.scores, n, np.float32))
        object.__setattr__(self, "labels", _as_1d("labels", self.labels, n, np.int64))
        object.__setattr__(self, "track_ids", _as_1d("track_ids", self.track_ids, n, np.int64))
        if np.asarray(self.input_indices).size == 0 and n > 0:
            raise ValueError("input_indices is required when there are tracks")
        object.__setattr__(
            self, "input_indices", _as_1d("input_indices", self.input_indices, n, np.int64)
        )

    def __len__(self) -> int:
        return int(self.boxes_xyxy.shape[0])

    @classmethod
    def empty(cls) -> Tracks:
        """No tracks."""
        z = np.zeros(0, np.int64)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), z, z, z)

    def select(self, index: npt.ArrayLike) -> Tracks:
        """Rows picked by an integer index array or a boolean mask."""
        idx = np.asarray(index)
        return Tracks(
            self.boxes_xyxy[idx],
            self.scores[idx],
            self.labels[idx],
            self.track_ids[idx],
            self.input_indices[idx],
        )

    def confirmed(self) -> Tracks:
        """Only rows with a real track id (``>= 0``)."""
        return self.select(self.track_ids >= 0)

    @property
    def boxes_tlwh(self) -> FloatArray:
        """Boxes as (left, top, width, height)."""
        return xyxy_to_tlwh(self.boxes_xyxy)
