"""The per-frame detections file (``frames.json``): written by ``qdtrack track``, read by
``qdtrack associate``.

Format::

    {"frames": [{"frame_id": 0, "bboxes": [[x1, y1, x2, y2], ...], "scores": [...],
                 "labels": [...], "embeds": [[...], ...]}, ...]}

Frame ids are 0-based and increase; a frame with id 0 starts a new sequence (so one file
may hold several sequences back to back). ``labels`` default to 0; ``embeds`` are needed
by the appearance trackers, not by ``iou``. Extra keys are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack.io_utils import read_json, write_json
from qdtrack.structures import Detections


@dataclass(frozen=True)
class Frame:
    """One input frame: its 0-based id and its detections."""

    frame_id: int
    detections: Detections


def _parse_frame(raw: Any, where: str, need_embeds: bool) -> Frame:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    if "frame_id" not in raw or isinstance(raw["frame_id"], bool):
        raise ValueError(f"{where}: missing integer 'frame_id'")
    try:
        frame_id = int(raw["frame_id"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: 'frame_id' must be an integer") from None
    if frame_id < 0 or frame_id != raw["frame_id"]:
        raise ValueError(f"{where}: 'frame_id' must be a non-negative integer")
    where = f"{where} (frame_id {frame_id})"
    bboxes = raw.get("bboxes", [])
    n = len(bboxes) if isinstance(bboxes, list) else -1
    if n < 0:
        raise ValueError(f"{where}: 'bboxes' must be a list of [x1, y1, x2, y2]")
    scores = raw.get("scores")
    if scores is None:
        raise ValueError(f"{where}: missing 'scores'")
    labels = raw.get("labels", [0] * n)
    embeds = raw.get("embeds")
    if need_embeds and embeds is None and n > 0:
        raise ValueError(f"{where}: missing 'embeds' (the appearance trackers need them)")
    try:
        boxes = (
            np.asarray(bboxes, dtype=np.float32).reshape(n, 4)
            if n
            else np.zeros((0, 4), np.float32)
        )
        emb = None
        if embeds is not None:
            emb = np.asarray(embeds, dtype=np.float32)
            if n == 0 and emb.size == 0:
                emb = None  # an empty frame carries no embedding size
        det = Detections(boxes, scores, labels, emb)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if (det.boxes_xyxy[:, 2:] < det.boxes_xyxy[:, :2]).any():
        raise ValueError(f"{where}: a box has x2 < x1 or y2 < y1 (boxes are [x1, y1, x2, y2])")
    return Frame(frame_id, det)


def parse_frames(doc: Any, source: str, *, need_embeds: bool) -> list[Frame]:
    """Validate a ``frames.json`` document; errors name ``source`` and the frame."""
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
        raise ValueError(f"{source}: expected an object with a 'frames' list")
    frames: list[Frame] = []
    for i, raw in enumerate(doc["frames"]):
        frame = _parse_frame(raw, f"{source}: frames[{i}]", need_embeds)
        if frames and frame.frame_id != 0 and frame.frame_id <= frames[-1].frame_id:
            raise ValueError(
                f"{source}: frames[{i}]: frame_id {frame.frame_id} does not follow "
                f"{frames[-1].frame_id} (ids increase; 0 starts a new sequence)"
            )
        frames.append(frame)
    return frames


def detections_record(frame_id: int, det: Detections) -> dict[str, Any]:
    """One frame of the ``qdtrack associate`` input format."""
    emb = det.embeddings if det.embeddings is not None else np.zeros((len(det), 0), np.float32)
    return {
        "frame_id": frame_id,
        "bboxes": det.boxes_xyxy.round(3).tolist(),
        "scores": det.scores.round(5).tolist(),
        "labels": det.labels.tolist(),
        "embeds": emb.round(5).tolist(),
    }


def write_detections_file(path: str | Path, detections: Sequence[Detections]) -> None:
    """Write one sequence's per-frame detections (frame ids 0, 1, ...)."""
    records = [detections_record(i, det) for i, det in enumerate(detections)]
    write_json(path, {"frames": records}, indent=None)


def read_detections_file(path: str | Path, *, need_embeds: bool) -> list[Frame]:
    """Read and check a detections file; errors name the file and the frame."""
    return parse_frames(read_json(path), str(path), need_embeds=need_embeds)
