"""Tracking a whole validation set (``qdtrack track-val``): MOTChallenge sequences or
TAO videos, with the IoU tracker on the same detections as a baseline."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qdtrack.data.frames import ImageFrames
from qdtrack.data.mot import write_mot_results
from qdtrack.inference.detections_file import write_detections_file
from qdtrack.inference.loop import Predictor, track_source
from qdtrack.inference.tao_writer import detection_records, label_categories, track_records
from qdtrack.io_utils import write_json
from qdtrack.trackers import AnyTrackerSettings, build_tracker, iou_baseline_settings

#: Frame rate written into the rendered videos (TAO annotates about 1 frame per second).
RENDER_FPS = 5.0


def track_val_set(
    model: Predictor,
    settings: AnyTrackerSettings,
    manifest: dict[str, Any],
    out_dir: str | Path,
    *,
    render: bool = True,
    iou_baseline: bool = True,
    class_names: Sequence[str] = ("pedestrian",),
) -> dict[str, Any]:
    """Track every sequence of a ``val.json`` (``qdtrack data convert``) into ``out_dir``.

    Writes ``results/<seq>.txt``, ``detections/<seq>.json`` (associate input),
    ``<seq>.mp4`` when ``render``, and with ``iou_baseline`` the appearance-free IoU
    tracker's ``iou_results/<seq>.txt`` on the same detections and frame numbers.
    A TAO manifest (``"format": "tao"``) goes to
    :func:`track_tao_set` instead (JSON results; ``class_names`` name
    the model's labels). ``settings`` picks the tracker and configures it. Returns
    per-sequence frame counts and speeds.
    """
    if manifest.get("format") == "tao":
        return track_tao_set(
            model,
            settings,
            manifest,
            out_dir,
            class_names=class_names,
            render=render,
            iou_baseline=iou_baseline,
        )
    out = Path(out_dir)
    sequences = manifest.get("sequences")
    if not isinstance(sequences, list) or not sequences:
        raise ValueError("val manifest lists no sequences (run `qdtrack data convert`)")
    report: dict[str, Any] = {}
    for entry in sequences:
        seq_name = str(entry["name"])
        results, detections, fps = track_source(
            model,
            build_tracker(settings),
            entry["path"],
            start=int(entry["start"]),
            stop=int(entry["stop"]),
            render=out / f"{seq_name}.mp4" if render else None,
            keep_detections=True,
        )
        write_mot_results(out / "results" / f"{seq_name}.txt", results)
        write_detections_file(out / "detections" / f"{seq_name}.json", detections)
        if iou_baseline:
            iou = build_tracker(iou_baseline_settings(settings))
            iou_results = [
                (frame_number, iou.update(dataclasses.replace(det, embeddings=None), index))
                for index, ((frame_number, _), det) in enumerate(
                    zip(results, detections, strict=True)
                )
            ]
            write_mot_results(out / "iou_results" / f"{seq_name}.txt", iou_results)
        report[seq_name] = {"frames": len(results), "fps": round(fps, 3)}
    return report


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
        write_detections_file(out / "detections" / f"{Path(name).name}.json", detections)
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
