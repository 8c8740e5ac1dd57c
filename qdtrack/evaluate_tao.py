"""Score TAO tracks (TrackEval ``TAO`` + ``TrackMAP``) and detector boxes (pycocotools box AP).

``evaluate_tao`` checks a TAO ground-truth JSON and a ``tracks.json`` first, so that bad input
fails with a message naming the file and record, stages both in a temporary folder in the
layout TrackEval 1.3.0's ``TAO`` dataset reads, runs ``TrackMAP`` quietly in one process, and
reports Track AP the way the TAO challenge does. ``evaluate_box_ap`` scores a COCO results
file with plain pycocotools. Formats: ``spec/data-formats.md`` §8.

How TrackEval scores TAO (1.3.0; these are its rules, reproduced here, not ours):

* Only classes with at least one gt box in the gt file are evaluated; boxes of any other class
  are never scored.
* A tracker track takes the class of the first of its boxes TrackEval reads (give each track
  one class). In a video, tracks of a class
  count only when the video has gt of that class or lists it in ``neg_category_ids``; anywhere
  else they are dropped, not counted as false positives. When the class is in the video's
  ``not_exhaustive_category_ids``, unmatched tracks are ignored too.
* Track IoU = Σ intersection / Σ union over the frames of either track; a track's score is the
  mean of its box scores; at most 300 boxes per image (highest scores) are kept. The dataset's
  per-frame preprocessing (dropping unmatched boxes on frames without gt of their class) only
  feeds per-frame metrics: TrackMAP reads the whole tracks, so such a box still adds its area
  to the union.
* AP per class over all videos with 101 recall points (COCO style), then the class average
  over the evaluated classes. TrackEval's class average skips classes whose AP is undefined
  (-1, i.e. no gt), which cannot happen for the ``all`` range because only classes with gt are
  evaluated; a class with gt but no matching tracks scores 0 and pulls the average down.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack.io_utils import read_json

TAO_BENCHMARK = "TAO"
COCO_BENCHMARK = "COCO"
TRACKS_FILE = "tracks.json"
DETECTIONS_FILE = "detections.json"

TRACK_METRIC_NAMES = ("TrackAP", "TrackAP50", "TrackAP75", "TrackAR")
"""Keys of a TAO metrics row, percentages (0-100). ``TrackAP``/``TrackAR``: mean over the
IoU thresholds 0.50:0.05:0.75 (TAO challenge); ``TrackAP50``/``TrackAP75``: one threshold."""

BOX_METRIC_NAMES = ("BoxAP", "BoxAP50", "BoxAP75", "BoxAPs", "BoxAPm", "BoxAPl")
"""Keys of a box AP result (pycocotools ``stats[0:6]``), percentages (0-100)."""

TAO_SUMMARY_METRICS = ("TrackAP", "TrackAP50", "TrackAP75")
BOX_SUMMARY_METRICS = ("BoxAP", "BoxAP50", "BoxAP75")

# TAO challenge: Track AP is averaged over IoU 0.50:0.05:0.75, the first 6 of TrackMAP's 10.
_TAO_MAX_IOU = 0.75
_DECIMALS = 9
# Name of the single tracker folder inside the staging area.
_TRACKER_NAME = "results"
# TrackEval's key for the class-averaged combination of all evaluated classes.
_CLASS_AVERAGED = "cls_comb_cls_av"

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- input checks


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _as_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"{key!r} must be an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise _fail(where, f"{key!r} must be an integer, got {value!r}")
    return int(value)


def _as_number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"{key!r} must be a finite number, got {value!r}")
    return float(value)


def _as_bbox(value: Any, where: str) -> list[float]:
    """``[x, y, w, h]`` with finite numbers and ``w, h >= 0``."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise _fail(where, f"'bbox' must be [x, y, w, h], got {value!r}")
    box = [_as_number(v, where, "bbox") for v in value]
    if box[2] < 0 or box[3] < 0:
        raise _fail(where, f"'bbox' has a negative width or height: {value!r}")
    return box


def _record(item: Any, where: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _fail(where, f"expected a JSON object, got {type(item).__name__}")
    missing = [key for key in keys if key not in item]
    if missing:
        raise _fail(where, f"missing field(s) {', '.join(map(repr, missing))}")
    return item


def _section(doc: Any, path: Path, key: str) -> list[Any]:
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object with {key!r}")
    value = doc.get(key)
    if not isinstance(value, list):
        raise ValueError(f"{path}: missing list {key!r}")
    return value


def _read_results(path: Path) -> list[Any]:
    records = read_json(path)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of result records")
    return records


@dataclass(frozen=True)
class _Categories:
    """Category ids of a gt file; ``merged`` maps folded ids to the id they are folded into."""

    names: dict[int, str]
    merged: dict[int, int]

    def resolve(self, category_id: int, where: str) -> int:
        folded = self.merged.get(category_id, category_id)
        if folded not in self.names:
            raise _fail(where, f"category_id {category_id} is not a category of the gt")
        return folded


def _read_categories(doc: Any, path: Path) -> _Categories:
    names: dict[int, str] = {}
    merged: dict[int, int] = {}
    for i, item in enumerate(_section(doc, path, "categories")):
        where = f"{path}: categories[{i}]"
        cat = _record(item, where, ("id", "name"))
        cat_id = _as_int(cat["id"], where, "id")
        if cat_id in names:
            raise _fail(where, f"category id {cat_id} appears twice")
        names[cat_id] = str(cat["name"])
        for j, child in enumerate(cat.get("merged") or []):
            child_where = f"{where}.merged[{j}]"
            merged[_as_int(_record(child, child_where, ("id",))["id"], child_where, "id")] = cat_id
    duplicates = sorted(name for name, n in Counter(names.values()).items() if n > 1)
    if duplicates:
        # TrackEval keys classes by name: two categories with one name would be merged.
        raise ValueError(f"{path}: category names used twice: {', '.join(duplicates[:5])}")
    return _Categories(names, merged)


def resolve_gt_json(path: str | os.PathLike[str]) -> Path:
    """A gt JSON file, or a folder holding exactly one ``.json`` (TrackEval's TAO layout)."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.json"))
        if len(found) != 1:
            raise ValueError(f"{p}: expected exactly one .json gt file, found {len(found)}")
        return found[0]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: gt file not found")
    return p


def resolve_results_file(path: str | os.PathLike[str], name: str) -> Path:
    """``path`` itself when it is a file, else ``path/name``."""
    p = Path(path)
    target = p / name if p.is_dir() else p
    if not target.is_file():
        raise FileNotFoundError(f"{target}: results file not found")
    return target


# --------------------------------------------------------------------------- TAO gt


@dataclass(frozen=True)
class _TaoGt:
    doc: dict[str, Any]  # slimmed, normalised copy that is staged for TrackEval
    image_to_video: dict[int, int]
    categories: _Categories


def _tao_videos(doc: Any, path: Path) -> list[dict[str, Any]]:
    videos: list[dict[str, Any]] = []
    for i, item in enumerate(_section(doc, path, "videos")):
        where = f"{path}: videos[{i}]"
        video = _record(item, where, ("id",))
        lists: dict[str, list[int]] = {}
        for key in ("neg_category_ids", "not_exhaustive_category_ids"):
            # Absent lists mean "none" (TAO files always carry them; hand-made ones may not).
            values = video.get(key) or []
            if not isinstance(values, list):
                raise _fail(where, f"{key!r} must be a list of category ids")
            lists[key] = [_as_int(v, where, key) for v in values]
        video_id = _as_int(video["id"], where, "id")
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
    for i, item in enumerate(_section(doc, path, "images")):
        where = f"{path}: images[{i}]"
        image = _record(item, where, ("id", "video_id", "frame_index"))
        image_id = _as_int(image["id"], where, "id")
        video_id = _as_int(image["video_id"], where, "video_id")
        if image_id in seen:
            raise _fail(where, f"image id {image_id} appears twice")
        if video_id not in video_ids:
            raise _fail(where, f"video_id {video_id} is not in 'videos'")
        seen.add(image_id)
        frame_index = _as_int(image["frame_index"], where, "frame_index")
        images.append({"id": image_id, "video_id": video_id, "frame_index": frame_index})
    return images


def _load_tao_gt(path: Path) -> _TaoGt:
    doc = read_json(path)
    categories = _read_categories(doc, path)
    videos = _tao_videos(doc, path)
    images = _tao_images(doc, path, {v["id"] for v in videos})
    image_to_video = {image["id"]: image["video_id"] for image in images}
    annotations = []
    keys = ("image_id", "track_id", "category_id", "bbox")
    for i, item in enumerate(_section(doc, path, "annotations")):
        where = f"{path}: annotations[{i}]"
        ann = _record(item, where, keys)
        image_id = _as_int(ann["image_id"], where, "image_id")
        if image_id not in image_to_video:
            raise _fail(where, f"image_id {image_id} is not in 'images'")
        video_id = image_to_video[image_id]
        if "video_id" in ann and _as_int(ann["video_id"], where, "video_id") != video_id:
            raise _fail(where, f"video_id {ann['video_id']} but image {image_id} is in {video_id}")
        categories.resolve(_as_int(ann["category_id"], where, "category_id"), where)
        annotations.append(
            {
                "id": ann.get("id", i + 1),
                "image_id": image_id,
                "video_id": video_id,
                "track_id": _as_int(ann["track_id"], where, "track_id"),
                "category_id": int(ann["category_id"]),
                "bbox": _as_bbox(ann["bbox"], where),
            }
        )
    if not annotations:
        raise ValueError(f"{path}: no annotations, nothing to evaluate")
    raw_categories = _section(doc, path, "categories")
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
        rec = _record(item, where, keys)
        image_id = _as_int(rec["image_id"], where, "image_id")
        video_id = gt.image_to_video.get(image_id)
        if video_id is None:
            raise _fail(where, f"image_id {image_id} is not an image of the gt")
        if "video_id" in rec and _as_int(rec["video_id"], where, "video_id") != video_id:
            raise _fail(where, f"video_id {rec['video_id']} but image {image_id} is in {video_id}")
        category_id = _as_int(rec["category_id"], where, "category_id")
        folded = gt.categories.resolve(category_id, where)
        track_key = (video_id, _as_int(rec["track_id"], where, "track_id"))
        track_id = new_ids.setdefault(track_key, len(new_ids) + 1)
        if (image_id, track_id) in seen:
            raise _fail(where, f"track_id {track_key[1]} appears twice in image {image_id}")
        seen.add((image_id, track_id))
        track_classes.setdefault(track_id, set()).add(folded)
        out.append(
            {
                "image_id": image_id,
                "video_id": video_id,
                "category_id": category_id,
                "bbox": _as_bbox(rec["bbox"], where),
                "score": _as_number(rec["score"], where, "score"),
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


# --------------------------------------------------------------------------- TrackEval


def _run_trackmap(
    gt_doc: dict[str, Any], tracks: list[dict[str, Any]]
) -> tuple[dict[str, Any], np.ndarray]:
    """Stage the files, run TrackEval quietly.

    Returns TrackEval's ``res["COMBINED_SEQ"]`` (``{class: {metric: fields}}`` plus the
    combined-class keys) and TrackMAP's IoU thresholds.
    """
    import trackeval  # imported here: slow import, only needed when evaluating

    from qdtrack.evaluate import quiet_eval_config  # evaluate imports this module

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


def _box_stats(coco_eval: Any) -> list[float | None]:
    """AP, AP50, AP75, APs, APm, APl at the largest ``maxDets`` (pycocotools ``stats[0:6]``).

    Read from the accumulated precision rather than ``summarize()``, whose first entries
    are fixed to 100 boxes per image.
    """
    precision = coco_eval.eval["precision"]  # (IoU, recall, class, area, maxDets)
    ious = np.asarray(coco_eval.params.iouThrs)
    areas = list(coco_eval.params.areaRngLbl)

    def ap(iou: float | None = None, area: str = "all") -> float | None:
        p = precision[:, :, :, areas.index(area), -1]
        if iou is not None:
            p = p[np.isclose(ious, iou)]
        kept = p[p > -1]
        return None if kept.size == 0 else _percent(kept)

    return [ap(), ap(0.5), ap(0.75), ap(area="small"), ap(area="medium"), ap(area="large")]


def _percent(values: np.ndarray) -> float | None:
    """Mean x100; None when undefined (-1: no gt).

    Rounded to 1e-9 so that a perfect score reads 100, not the 99.99999999999999 left by the
    ``np.spacing(1)`` that TrackMAP and pycocotools add to precision denominators.
    """
    if values.size == 0 or bool(np.any(values < 0)):
        return None
    return round(float(values.mean()) * 100.0, _DECIMALS)


def _track_row(trackmap: dict[str, Any], thresholds: np.ndarray) -> dict[str, float | None]:
    ap = np.asarray(trackmap["AP_all"], dtype=float)
    ar = np.asarray(trackmap["AR_all"], dtype=float)
    tao_range = thresholds <= _TAO_MAX_IOU + 1e-9
    at_50 = np.isclose(thresholds, 0.5)
    at_75 = np.isclose(thresholds, 0.75)
    return {
        "TrackAP": _percent(ap[tao_range]),
        "TrackAP50": _percent(ap[at_50]),
        "TrackAP75": _percent(ap[at_75]),
        "TrackAR": _percent(ar[tao_range]),
    }


# --------------------------------------------------------------------------- public API


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
    tracks = _check_tracks(_read_results(tracks_path), tracks_path, tao_gt)
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


# --------------------------------------------------------------------------- box AP


def _coco_gt(path: Path) -> tuple[dict[str, Any], _Categories]:
    """A COCO gt dict pycocotools can index: ``area``/``iscrowd``/``id`` filled, merges folded."""
    doc = read_json(path)
    categories = _read_categories(doc, path)
    images = []
    for i, item in enumerate(_section(doc, path, "images")):
        where = f"{path}: images[{i}]"
        images.append({"id": _as_int(_record(item, where, ("id",))["id"], where, "id")})
    image_ids = {image["id"] for image in images}
    annotations = []
    for i, item in enumerate(_section(doc, path, "annotations")):
        where = f"{path}: annotations[{i}]"
        ann = _record(item, where, ("image_id", "category_id", "bbox"))
        image_id = _as_int(ann["image_id"], where, "image_id")
        if image_id not in image_ids:
            raise _fail(where, f"image_id {image_id} is not in 'images'")
        box = _as_bbox(ann["bbox"], where)
        category_id = _as_int(ann["category_id"], where, "category_id")
        annotations.append(
            {
                "id": i + 1,  # unique ids for pycocotools' index, whatever the file holds
                "image_id": image_id,
                "category_id": categories.resolve(category_id, where),
                "bbox": box,
                "area": float(ann.get("area", box[2] * box[3])),
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
        )
    if not annotations:
        raise ValueError(f"{path}: no annotations, nothing to evaluate")
    cats = [{"id": cat_id, "name": name} for cat_id, name in categories.names.items()]
    coco = {"images": images, "annotations": annotations, "categories": cats}
    return coco, categories


def _check_detections(
    records: list[Any], where_file: str, image_ids: set[int], categories: _Categories
) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(records):
        where = f"{where_file}: record {i}"
        rec = _record(item, where, ("image_id", "category_id", "bbox", "score"))
        image_id = _as_int(rec["image_id"], where, "image_id")
        if image_id not in image_ids:
            raise _fail(where, f"image_id {image_id} is not an image of the gt")
        category_id = _as_int(rec["category_id"], where, "category_id")
        out.append(
            {
                "image_id": image_id,
                "category_id": categories.resolve(category_id, where),
                "bbox": _as_bbox(rec["bbox"], where),
                "score": _as_number(rec["score"], where, "score"),
            }
        )
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def evaluate_box_ap(
    gt_json: str | os.PathLike[str],
    detections: str | os.PathLike[str] | list[dict[str, Any]],
    *,
    max_detections: int = 100,
) -> dict[str, Any]:
    """Plain COCO box AP of detections with pycocotools (``COCOeval(iouType="bbox")``).

    This is pycocotools' COCO AP on every gt image and category, as used for COCO. It is not
    LVIS's official federated evaluation (lvis-api), which skips detections of categories that
    an image neither contains nor lists in ``neg_category_ids`` and does not penalise
    unmatched detections of ``not_exhaustive_category_ids``; on LVIS/TAO gt the numbers here
    are therefore lower than lvis-api's and not comparable with published LVIS AP.
    Categories listed under a gt category's ``merged`` are folded into it (TAO), in gt and
    detections alike.

    Args:
        gt_json: COCO gt JSON (``images``, ``annotations`` with ``bbox``, ``categories``);
            TAO gt works too. Missing ``area`` is filled with ``w * h``, ``iscrowd`` with 0.
        detections: ``detections.json`` (COCO results: ``{"image_id", "category_id",
            "bbox": [x, y, w, h], "score"}``), a folder containing it, or the list itself.
        max_detections: boxes per image considered (COCO: 100, LVIS/TAO use 300).

    Returns:
        ``{"benchmark": "COCO", "combined": {name: percent}, "gt", "results"}`` with
        ``BOX_METRIC_NAMES`` (0-100). No detections give 0; an area range without gt boxes
        gives None.

    Raises:
        FileNotFoundError: a gt or detections file is missing.
        ValueError: malformed gt or detections (file and record named).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path = resolve_gt_json(gt_json)
    coco_doc, categories = _coco_gt(gt_path)
    if isinstance(detections, list):
        source, records = "detections", detections
    else:
        det_path = resolve_results_file(detections, DETECTIONS_FILE)
        source, records = str(det_path), _read_results(det_path)
    image_ids = {image["id"] for image in coco_doc["images"]}
    checked = _check_detections(records, source, image_ids, categories)

    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = coco_doc
        coco_gt.createIndex()
        if checked:
            coco_dt = coco_gt.loadRes(checked)
        else:  # loadRes cannot take an empty list; an empty index scores 0 everywhere
            coco_dt = COCO()
            coco_dt.dataset = {**coco_doc, "annotations": []}
            coco_dt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="bbox")
        coco_eval.params.maxDets = [1, 10, max_detections]
        coco_eval.evaluate()
        coco_eval.accumulate()
    combined = dict(zip(BOX_METRIC_NAMES, _box_stats(coco_eval), strict=True))
    return {
        "benchmark": COCO_BENCHMARK,
        "combined": combined,
        "gt": str(gt_path),
        "results": source,
    }
