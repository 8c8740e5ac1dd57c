"""Builders for hand-made tracker scenarios."""

from __future__ import annotations

import numpy as np

from qdtrack.structures import Detections

DIM = 8


def embed(k: int, scale: float = 10.0, dim: int = DIM) -> np.ndarray:
    """A scaled one-hot embedding: identity ``k`` is orthogonal to every other."""
    e = np.zeros(dim, np.float32)
    e[k] = scale
    return e


def box(x: float, y: float = 0.0, w: float = 10.0, h: float = 20.0) -> list[float]:
    """An xyxy box with its top-left corner at (x, y)."""
    return [x, y, x + w, y + h]


def dets(
    boxes: list[list[float]],
    scores: list[float],
    identities: list[int] | None = None,
    labels: list[int] | None = None,
    embeddings: np.ndarray | None = None,
) -> Detections:
    """Detections whose embeddings are the one-hot vectors of ``identities``."""
    n = len(boxes)
    if embeddings is None:
        ident = identities if identities is not None else list(range(n))
        embeddings = np.stack([embed(k) for k in ident]) if n else np.zeros((0, DIM), np.float32)
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels if labels is not None else [0] * n, np.int64),
        embeddings,
    )


def ids_by_input(tracks, n: int) -> list[int]:
    """Track id of each input row (``None`` when the row has no id)."""
    out: list[int | None] = [None] * n
    for idx, tid in zip(tracks.input_indices, tracks.track_ids, strict=True):
        out[int(idx)] = int(tid)
    return out
