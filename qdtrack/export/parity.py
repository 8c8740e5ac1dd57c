"""How closely the exported graph's detections follow PyTorch's (export gate and tests).

Detections are paired one to one (same label, IoU >= 0.99, greedy by IoU); the report
gives the unpaired count and the largest differences over the pairs. Float rounding may
flip an NMS or score-threshold decision that sits exactly on its threshold, so the export
gate allows a few unpaired detections; the parity tests demand none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qdtrack.structures import Detections, box_iou

#: Boxes agree within this relative tolerance (``|Δ| <= rtol · max(|x|, 1 px)``).
BOX_RTOL = 1e-3
#: Two detections are the same one above this IoU (and with the same label).
MATCH_IOU = 0.99


@dataclass(frozen=True)
class ParityReport:
    """Exported vs PyTorch detections of one frame.

    Attributes:
        detections_pytorch: detections of the PyTorch model.
        detections_exported: detections of the exported graph.
        unmatched: detections of either side without a partner.
        max_box_rel_diff: over the pairs, ``max |Δ| / max(|x|, 1)`` of the box coordinates.
        max_score_abs_diff: over the pairs.
        max_embedding_abs_diff: over the pairs (0 without embeddings).
    """

    detections_pytorch: int
    detections_exported: int
    unmatched: int
    max_box_rel_diff: float
    max_score_abs_diff: float
    max_embedding_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _pairs(exported: Detections, eager: Detections) -> list[tuple[int, int]]:
    """One-to-one pairs (exported index, eager index), greedy by descending IoU."""
    iou = box_iou(exported.boxes_xyxy, eager.boxes_xyxy)
    iou[exported.labels[:, None] != eager.labels[None, :]] = 0.0
    pairs: list[tuple[int, int]] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        a, b = divmod(int(flat), iou.shape[1])
        if iou[a, b] < MATCH_IOU:
            break
        if a not in used_a and b not in used_b:
            pairs.append((a, b))
            used_a.add(a)
            used_b.add(b)
    return pairs


def compare_detections(exported: Detections, eager: Detections) -> ParityReport:
    """Pair the two sets of one frame and measure their differences."""
    pairs = _pairs(exported, eager)
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    boxes_a, boxes_b = exported.boxes_xyxy[a], eager.boxes_xyxy[b]
    box_diff = np.abs(boxes_a - boxes_b) / np.maximum(np.abs(boxes_b), 1.0)
    score_diff = np.abs(exported.scores[a] - eager.scores[b])
    emb_diff = np.zeros(0, np.float32)
    if exported.embeddings is not None and eager.embeddings is not None:
        emb_diff = np.abs(exported.embeddings[a] - eager.embeddings[b])
    return ParityReport(
        detections_pytorch=len(eager),
        detections_exported=len(exported),
        unmatched=len(eager) + len(exported) - 2 * len(pairs),
        max_box_rel_diff=float(box_diff.max(initial=0.0)),
        max_score_abs_diff=float(score_diff.max(initial=0.0)),
        max_embedding_abs_diff=float(emb_diff.max(initial=0.0)),
    )
