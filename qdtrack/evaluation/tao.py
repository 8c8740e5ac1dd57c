"""TAO Track AP with TrackEval (``TAO`` dataset + ``TrackMAP`` metric).

``evaluate_tao`` checks a TAO ground-truth JSON and a ``tracks.json`` first, so that bad
input fails with a message naming the file and record, stages both in a temporary folder
in the layout TrackEval 1.3.0's ``TAO`` dataset reads, runs ``TrackMAP`` quietly in one
process, and reports Track AP the way the TAO challenge does. How TrackEval scores TAO
(its rules, not ours) is written down in ``docs/reference-behaviour.md``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack.evaluation.coco import DETECTIONS_FILE, evaluate_box_ap
from qdtrack.evaluation.inputs import (
    Categories,
    as_bbox,
    as_int,
    as_number,
    fail,
    percent,
    read_categories,
    read_results,
    record,
    resolve_gt_json,
    resolve_results_file,
    section,
)
from qdtrack.evaluation.trackeval_run import quiet_eval_config
from qdtrack.io_utils import read_json

TAO_BENCHMARK = "TAO"

TRACKS_FILE = "tracks.json"

TRACK_METRIC_NAMES = ("TrackAP", "TrackAP50", "TrackAP75", "TrackAR")
"""Keys of a TAO metrics row, percentages (0-100). ``TrackAP``/``TrackAR``: mean over the
IoU thresholds 0.50:0.05:0.75 (TAO challenge); ``TrackAP50``/``TrackAP75``: one threshold."""

TAO_SUMMARY_METRICS = ("TrackAP", "TrackAP50", "TrackAP75")

# TAO challenge: Track AP is averaged over IoU 0.50:0.05:0.75, the first 6 of TrackMAP's 10.
_TAO_MAX_IOU = 0.75

_DECIMALS = 9

# Name of the single tracker folder inside the staging area.
_TRACKER_NAME = "results"

# TrackEval's key for the class-averaged combination of all evaluated classes.
_CLASS_AVERAGED = "cls_comb_cls_av"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TaoGt:
    doc: dict[str, Any]  # slimmed, normalised copy that is staged for TrackEval
    image_to_video: dict[int, int]
    categories: Categories


def _tao_videos(doc: Any, path: Path) -> list[dict[str, Any]]:
    videos: list[dict[str, Any]] = []
    for i, item in enumerate(section(doc, path, "videos")):
        where = f"{path}: videos[{i}]"
        video = record(item, where, ("id",))
        lists: dict[str, list[int]] = {}
        for key in ("neg_category_ids", "not_exhaustive_category_ids"):
            # Absent lists mean "none" (TAO files always carry them; hand-made ones may not).
            values = video.get(key) or []
            if not isinstance(values, list):
                raise fail(where, f"{key!r} must be a list of category ids")
            lists[key] = [as_int(v, where, key) for v in values]
        video_id = as_int(video["id"], where, "id")
        videos.append({"id": video_id, "name": str(video.get("name", video_id)), **lists})
    # TrackEval names sequences name.replace('/', '-'); two equal names would collide.
    seq_names = Counter(v["name"].replace("/", "-") for v in videos)
    clashes = sorted(name for name, n in seq_names.items() if n > 1)
    if clashes:
        raise ValueError(f"{path}: video names used twice: {', '.join(clashes[:5])}")
    return videos


def _tao_images(doc: Any, path: Path, video_ids: set[int]) -> list[dict[str, Any]]:
    images = []
    seen: set[int] = set()
    for i, item in enumerate(section(doc, path, "images")):
        where = f"{path}: images[{i}]"
        image = record(item, where, ("id", "video_id", "frame_index"))
        image_id = as_int(image["id"], where, "id")
        video_id = as_int(image["video_id"], where, "video_id")
        if image_id in seen:
            raise fail(where, f"image id {image_id} appears twice")
        if video_id not in video_ids:
            raise fail(where, f"video_id {video_id} is not in 'videos'")
        seen.add(image_id)
        frame_index = as_int(image["frame_index"], where, "frame_index")
        images.append({"id": image_id, "video_id": video_id, "frame_index": frame_index})
    return images


def _load_tao_gt(path: Path) -> _TaoGt:
    doc = read_json(path)
    categories = read_categories(doc, path)
    videos = _tao_videos(doc, path)
    images = _tao_images(doc, path, {v["id"] for v in videos})
    image_to_video = {image["id"]: image["video_id"] for image in images}
    annotations = []
    keys = ("image_id", "track_id", "category_id", "bbox")
    for i, item in enumerate(section(doc, path, "annotations")):
        where = f"{path}: annotations[{i}]"
        ann = record(item, where, keys)
        image_id = as_int(ann["image_id"], where, "image_id")
        if image_id not in image_to_video:
            raise fail(where, f"image_id {image_id} is not in 'images'")
        video_id = image_to_video[image_id]
        if "video_id" in ann and as_int(ann["video_id"], where, "video_id") != video_id:
            raise fail(where, f"video_id {ann['video_id']} but image {image_id} is in {video_id}")
        categories.resolve(as_int(ann["category_id"], where, "category_id"), where)
        annotations.append(
            {
                "id": ann.get("id", i + 1),
                "image_id": image_id,
                "video_id": video_id,
                "track_id": as_int(ann["track_id"], where, "track_id"),
                "category_id": int(ann["category_id"]),
                "bbox": as_bbox(ann["bbox"], where),
            }
        )
    if not annotations:
        raise ValueError(f"{path}: no annotations, nothing to evaluate")
    raw_categories = section(doc, path, "categories")
    staged = {
        "videos": videos,
        "images": images,
        "annotations": annotations,
        # TrackEval builds gt tracks from the annotations and only folds merged categories
        # inside this list, so the file's own 'tracks' section is not needed.
        "tracks": [],
        "categories": [
            {key: c[key] for key in ("id", "name", "merged") if key in c} for c in raw_categories
        ],
    }
    return _TaoGt(staged, image_to_video, categories)


def _check_tracks(records: list[Any], path: Path, gt: _TaoGt) -> list[dict[str, Any]]:
    """Validated copies of the track records, ``video_id`` filled in, track ids renumbered.

    Track ids are renumbered 1, 2, ... per (video, track_id): TrackMAP treats a tracker track
    with id 0 as "no match" when checking whether a gt track is already taken, so a duplicate
    of track 0 would be counted as a second true positive (seen in TrackEval 1.3.0). Ids from
    1 also make them unique across videos, which TrackEval needs.
    """
    new_ids: dict[tuple[int, int], int] = {}
    seen: set[tuple[int, int]] = set()
    track_classes: dict[int, set[int]] = {}
    out = []
    keys = ("image_id", "category_id", "bbox", "score", "track_id")
    for i, item in enumerate(records):
        where = f"{path}: record {i}"
        rec = record(item, where, keys)
        image_id = as_int(rec["image_id"], where, "image_id")
        video_id = gt.image_to_video.get(image_id)
        if video_id is None:
            raise fail(where, f"image_id {image_id} is not an image of the gt")
        if "video_id" in rec and as_int(rec["video_id"], where, "video_id") != video_id:
            raise fail(where, f"video_id {rec['video_id']} but image {image_id} is in {video_id}")
        category_id = as_int(rec["category_id"], where, "category_id")
        folded = gt.categories.resolve(category_id, where)
        track_key = (video_id, as_int(rec["track_id"], where, "track_id"))
        track_id = new_ids.setdefault(track_key, len(new_ids) + 1)
        if (image_id, track_id) in seen:
            raise fail(where, f"track_id {track_key[1]} appears twice in image {image_id}")
        seen.add((image_id, track_id))
        track_classes.setdefault(track_id, set()).add(folded)
        out.append(
            {
                "image_id": image_id,
                "video_id": video_id,
                "category_id": category_id,
                "bbox": as_bbox(rec["bbox"], where),
                "score": as_number(rec["score"], where, "score"),
                "track_id": track_id,
            }
        )
    mixed = sum(1 for classes in track_classes.values() if len(classes) > 1)
    if mixed:
        logger.warning(
            "%s: %d track(s) change category; TrackEval scores each as the category of the "
            "first of its boxes it reads",
            path,
            mixed,
        )
    return out


def _run_trackmap(
    gt_doc: dict[str, Any], tracks: list[dict[str, Any]]
) -> tuple[dict[str, Any], np.ndarray]:
    """Stage the files, run TrackEval quietly.

    Returns TrackEval's ``res["COMBINED_SEQ"]`` (``{class: {metric: fields}}`` plus the
    combined-class keys) and TrackMAP's IoU thresholds.
    """
    import trackeval  # imported here: slow import, only needed when evaluating

    with tempfile.TemporaryDirectory(prefix="qdtrack-tao-") as tmp:
        staging = Path(tmp)
        gt_folder = staging / "gt"
        data_folder = staging / "trackers" / _TRACKER_NAME / "data"
        gt_folder.mkdir()
        data_folder.mkdir(parents=True)
        (gt_folder / "gt.json").write_text(json.dumps(gt_doc), encoding="utf-8")
        (data_folder / TRACKS_FILE).write_text(json.dumps(tracks), encoding="utf-8")

        eval_config = quiet_eval_config(staging)
        dataset_config = trackeval.datasets.TAO.get_default_dataset_config()
        dataset_config.update(
            {
                "GT_FOLDER": str(gt_folder),
                "TRACKERS_FOLDER": str(staging / "trackers"),
                "OUTPUT_FOLDER": str(staging / "output"),
                "TRACKERS_TO_EVAL": [_TRACKER_NAME],
                "CLASSES_TO_EVAL": None,  # every class with gt
                "PRINT_CONFIG": False,
            }
        )
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                dataset = trackeval.datasets.TAO(dataset_config)
                metric = trackeval.metrics.TrackMAP({"PRINT_CONFIG": False})
                results, messages = trackeval.Evaluator(eval_config).evaluate([dataset], [metric])
        except trackeval.utils.TrackEvalException as exc:
            raise ValueError(f"TrackEval: {exc}") from exc
    res = results[dataset.get_name()].get(_TRACKER_NAME)
    if res is None:
        raise ValueError(f"TrackEval: {messages[dataset.get_name()].get(_TRACKER_NAME)}")
    return res["COMBINED_SEQ"], np.asarray(metric.array_labels, dtype=float)


def _track_row(trackmap: dict[str, Any], thresholds: np.ndarray) -> dict[str, float | None]:
    ap = np.asarray(trackmap["AP_all"], dtype=float)
    ar = np.asarray(trackmap["AR_all"], dtype=float)
    tao_range = thresholds <= _TAO_MAX_IOU + 1e-9
    at_50 = np.isclose(thresholds, 0.5)
    at_75 = np.isclose(thresholds, 0.75)
    return {
        "TrackAP": percent(ap[tao_range]),
        "TrackAP50": percent(ap[at_50]),
        "TrackAP75": percent(ap[at_75]),
        "TrackAR": percent(ar[tao_range]),
    }


def evaluate_tao(gt: str | os.PathLike[str], results: str | os.PathLike[str]) -> dict[str, Any]:
    """Score TAO tracks with TrackEval's ``TAO`` dataset and ``TrackMAP`` metric.

    Args:
        gt: TAO gt JSON (``videos``, ``images``, ``annotations``, ``tracks``, ``categories``)
            or a folder holding exactly one ``.json``.
        results: ``tracks.json`` (a list of ``{"image_id", "video_id", "category_id",
            "bbox": [x, y, w, h], "score", "track_id"}``) or a folder containing it. A
            ``detections.json`` beside it is scored as well (``evaluate_box_ap``) and its
            ``Box*`` metrics join ``combined``.

    Returns:
        ``{"benchmark": "TAO", "combined": row, "classes": {name: row}, "sequences": {},
        "gt", "results"}``. A row maps ``TRACK_METRIC_NAMES`` to percentages (None where
        undefined); class rows also carry ``GT_Tracks``. ``combined`` is TrackEval's class
        average over the evaluated classes (those with gt). ``sequences`` stays empty:
        TrackMAP has no per-video score.

    Raises:
        FileNotFoundError: a gt or results file is missing.
        ValueError: malformed gt or results (file and record named) or a TrackEval error.
    """
    gt_path = resolve_gt_json(gt)
    tracks_path = resolve_results_file(results, TRACKS_FILE)
    tao_gt = _load_tao_gt(gt_path)
    tracks = _check_tracks(read_results(tracks_path), tracks_path, tao_gt)
    combined_seq, thresholds = _run_trackmap(tao_gt.doc, tracks)

    classes: dict[str, dict[str, Any]] = {}
    for name, per_metric in combined_seq.items():
        if name in (_CLASS_AVERAGED, "cls_comb_det_av", "all"):
            continue
        row: dict[str, Any] = dict(_track_row(per_metric["TrackMAP"], thresholds))
        row["GT_Tracks"] = int(per_metric["Count"]["GT_IDs"])
        classes[name] = row
    combined: dict[str, Any] = dict(
        _track_row(combined_seq[_CLASS_AVERAGED]["TrackMAP"], thresholds)
    )

    detections_path = tracks_path.parent / DETECTIONS_FILE
    if detections_path.is_file():
        # LVIS / TAO score up to 300 boxes per image (the detector's max_per_img there).
        boxes = evaluate_box_ap(gt_path, detections_path, max_detections=300)
        combined.update(boxes["combined"])
    return {
        "benchmark": TAO_BENCHMARK,
        "combined": combined,
        "classes": classes,
        "sequences": {},
        "gt": str(gt_path),
        "results": str(tracks_path),
    }
