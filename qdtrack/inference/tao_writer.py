"""Tracks and detections in the TAO and COCO result formats (``tracks.json``,
``detections.json``), with model labels mapped to the ground truth's category ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qdtrack.structures import Detections, Tracks


def label_categories(
    class_names: Sequence[str], categories: Sequence[Mapping[str, Any]]
) -> dict[int, int]:
    """``{label: category id}`` by name; labels whose class the gt does not list are absent."""
    by_name = {str(c["name"]): int(c["id"]) for c in categories}
    return {label: by_name[name] for label, name in enumerate(class_names) if name in by_name}


def _xywh(boxes_xyxy: np.ndarray) -> list[list[float]]:
    xywh = np.concatenate([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]], axis=1)
    return [[round(float(v), 2) for v in row] for row in xywh]


def track_records(
    video_id: int,
    image_ids: Sequence[int],
    per_frame: Sequence[Tracks],
    label_to_category: Mapping[int, int],
    id_offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """TAO track results of one video, and the number of boxes left out (unknown class).

    Track ids are offset by ``id_offset`` so they stay unique across videos.
    """
    records: list[dict[str, Any]] = []
    skipped = 0
    for image_id, tracks in zip(image_ids, per_frame, strict=True):
        for box, score, label, track_id in zip(
            _xywh(tracks.boxes_xyxy),
            tracks.scores.tolist(),
            tracks.labels.tolist(),
            tracks.track_ids.tolist(),
            strict=True,
        ):
            if track_id < 0:
                continue
            if label not in label_to_category:
                skipped += 1
                continue
            records.append(
                {
                    "image_id": int(image_id),
                    "video_id": int(video_id),
                    "category_id": label_to_category[label],
                    "bbox": box,
                    "score": round(float(score), 5),
                    "track_id": int(track_id) + id_offset,
                }
            )
    return records, skipped


def detection_records(
    image_ids: Sequence[int],
    detections: Sequence[Detections],
    label_to_category: Mapping[int, int],
) -> list[dict[str, Any]]:
    """Every detector box in the COCO results format (for box AP)."""
    records: list[dict[str, Any]] = []
    for image_id, det in zip(image_ids, detections, strict=True):
        for box, score, label in zip(
            _xywh(det.boxes_xyxy), det.scores.tolist(), det.labels.tolist(), strict=True
        ):
            if label in label_to_category:
                records.append(
                    {
                        "image_id": int(image_id),
                        "category_id": label_to_category[label],
                        "bbox": box,
                        "score": round(float(score), 5),
                    }
                )
    return records
