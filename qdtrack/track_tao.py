"""Tracking a TAO-format validation set (``qdtrack track-val`` with a TAO manifest).

TAO annotates sparse frames of each video; like mmtracking, the tracker runs on the
annotated frames of a video in ``frame_index`` order. Outputs, per run folder:

* ``results/tracks.json``: TAO track results (``image_id``, ``video_id``, ``category_id``,
  ``bbox`` as ``[x, y, w, h]``, ``score``, ``track_id``) for TrackEval's TAO TrackMAP;
* ``results/detections.json``: every detector box before tracking, in the COCO results
  format, for box AP (``qdtrack evaluate --benchmark TAO`` reads both);
* ``iou_results/tracks.json``: the appearance-free IoU tracker on the same detections;
* ``detections/<video>.json``: the ``qdtrack associate`` input, ``<video>.mp4`` renders.

A label becomes the gt category of the same name (``model.classes``); boxes of a class
the gt does not list cannot be scored and are left out (their count is reported).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qdtrack.data.frames import ImageFrames
from qdtrack.io_utils import write_json
from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import AnyTrackerSettings, build_tracker, iou_baseline_settings

if TYPE_CHECKING:
    from qdtrack.track import Predictor

#: Frame rate written into the rendered videos (TAO annotates about 1 frame per second).
RENDER_FPS = 5.0


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


def track_tao_set(
    model: Predictor,
    settings: AnyTrackerSettings,
    manifest: Mapping[str, Any],
    out_dir: str | Path,
    *,
    class_names: Sequence[str],
    render: bool = True,
    iou_baseline: bool = True,
) -> dict[str, Any]:
    """Track every video of a TAO manifest (``qdtrack data convert``) into ``out_dir``.

    Returns per-video frame counts and speeds (boxes left out because their class is not
    a gt category are counted on stderr).

    Raises:
        ValueError: the manifest lists no videos, or no model class is a gt category.
    """
    from qdtrack.track import detections_record, track_source

    out = Path(out_dir)
    videos = manifest.get("videos")
    if not isinstance(videos, list) or not videos:
        raise ValueError("TAO val manifest lists no videos (run `qdtrack data convert`)")
    label_to_category = label_categories(class_names, manifest.get("categories") or [])
    if not label_to_category:
        raise ValueError(
            f"none of the model's classes {list(class_names)[:5]}... is a category of the "
            "validation ground truth: check model.classes"
        )
    tracks_out: list[dict[str, Any]] = []
    iou_out: list[dict[str, Any]] = []
    dets_out: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    skipped = 0
    offset = 0
    for video in videos:
        name, video_id = str(video["name"]), int(video["id"])
        frames = video["frames"]
        image_ids = [int(f["image_id"]) for f in frames]
        source = ImageFrames(Path(name), [Path(f["path"]) for f in frames], fps=RENDER_FPS)
        results, detections, fps = track_source(
            model,
            build_tracker(settings),
            source,
            render=out / f"{Path(name).name}.mp4" if render else None,
            keep_detections=True,
        )
        records, left_out = track_records(
            video_id, image_ids, [t for _, t in results], label_to_category, offset
        )
        tracks_out += records
        skipped += left_out
        dets_out += detection_records(image_ids, detections, label_to_category)
        records_json = [detections_record(i, det) for i, det in enumerate(detections)]
        write_json(
            out / "detections" / f"{Path(name).name}.json", {"frames": records_json}, indent=None
        )
        if iou_baseline:
            iou = build_tracker(iou_baseline_settings(settings))
            iou_tracks = [
                iou.update(dataclasses.replace(det, embeddings=None), index)
                for index, det in enumerate(detections)
            ]
            iou_out += track_records(video_id, image_ids, iou_tracks, label_to_category, offset)[0]
        ids = [int(t) for _, tr in results for t in tr.track_ids]
        offset += (max(ids) + 1) if ids else 0
        report[name] = {"frames": len(results), "fps": round(fps, 3)}
    write_json(out / "results" / "tracks.json", tracks_out, indent=None)
    write_json(out / "results" / "detections.json", dets_out, indent=None)
    if iou_baseline:
        write_json(out / "iou_results" / "tracks.json", iou_out, indent=None)
    if skipped:
        sys.stderr.write(
            f"track-val: left out {skipped} tracked boxes of classes the gt does not list\n"
        )
    return report
