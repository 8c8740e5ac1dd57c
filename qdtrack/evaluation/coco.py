"""COCO box AP of detector boxes with plain pycocotools (``COCOeval``, ``iouType=\"bbox\"``)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

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
from qdtrack.io_utils import read_json

COCO_BENCHMARK = "COCO"

DETECTIONS_FILE = "detections.json"

BOX_METRIC_NAMES = ("BoxAP", "BoxAP50", "BoxAP75", "BoxAPs", "BoxAPm", "BoxAPl")
"""Keys of a box AP result (pycocotools ``stats[0:6]``), percentages (0-100)."""

BOX_SUMMARY_METRICS = ("BoxAP", "BoxAP50", "BoxAP75")


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
        return None if kept.size == 0 else percent(kept)

    return [ap(), ap(0.5), ap(0.75), ap(area="small"), ap(area="medium"), ap(area="large")]


def _coco_gt(path: Path) -> tuple[dict[str, Any], Categories]:
    """A COCO gt dict pycocotools can index: ``area``/``iscrowd``/``id`` filled, merges folded."""
    doc = read_json(path)
    categories = read_categories(doc, path)
    images = []
    for i, item in enumerate(section(doc, path, "images")):
        where = f"{path}: images[{i}]"
        images.append({"id": as_int(record(item, where, ("id",))["id"], where, "id")})
    image_ids = {image["id"] for image in images}
    annotations = []
    for i, item in enumerate(section(doc, path, "annotations")):
        where = f"{path}: annotations[{i}]"
        ann = record(item, where, ("image_id", "category_id", "bbox"))
        image_id = as_int(ann["image_id"], where, "image_id")
        if image_id not in image_ids:
            raise fail(where, f"image_id {image_id} is not in 'images'")
        box = as_bbox(ann["bbox"], where)
        category_id = as_int(ann["category_id"], where, "category_id")
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
    records: list[Any], where_file: str, image_ids: set[int], categories: Categories
) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(records):
        where = f"{where_file}: record {i}"
        rec = record(item, where, ("image_id", "category_id", "bbox", "score"))
        image_id = as_int(rec["image_id"], where, "image_id")
        if image_id not in image_ids:
            raise fail(where, f"image_id {image_id} is not an image of the gt")
        category_id = as_int(rec["category_id"], where, "category_id")
        out.append(
            {
                "image_id": image_id,
                "category_id": categories.resolve(category_id, where),
                "bbox": as_bbox(rec["bbox"], where),
                "score": as_number(rec["score"], where, "score"),
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
        source, records = str(det_path), read_results(det_path)
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
