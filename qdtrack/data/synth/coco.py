"""TAO and LVIS (COCO-style) JSON of the multi-class mode, as plain dicts.

Both formats share the categories and the box rule: a box is the full-object box clipped
to the image (TAO and LVIS boxes lie inside the image), written when at least
``MIN_VISIBLE`` of the object's silhouette is visible inside the image (neither hidden by
nearer objects or the pole nor outside the image) and the clipped box is at least
``MIN_BOX_PX`` pixels wide and high. Ids are unique within a file and start at 1; images,
tracks and annotations are numbered in video, frame and gt-id order, so the output is
deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qdtrack.data.synth.labels import FigureLabel, SequenceLabels, rounded_tlwh
from qdtrack.data.synth.scene import CATEGORY_NAMES

# Fewest visible silhouette pixels (fraction, inside the image) for a TAO / LVIS box.
MIN_VISIBLE = 0.25
# Smallest clipped box side in pixels.
MIN_BOX_PX = 2.0

JsonDict = dict[str, Any]


def categories_json(num_classes: int) -> list[JsonDict]:
    """The first ``num_classes`` categories in LVIS form (all "frequent")."""
    return [
        {"id": k + 1, "name": name, "synset": f"{name}.n.01", "frequency": "f"}
        for k, name in enumerate(CATEGORY_NAMES[:num_classes])
    ]


def clipped_box(
    box_tlwh: Sequence[float], width: int, height: int
) -> tuple[float, float, float, float] | None:
    """``box_tlwh`` clipped to the image as (x, y, w, h); None if under ``MIN_BOX_PX``."""
    left, top, w, h = (float(v) for v in box_tlwh)
    x0, y0 = max(left, 0.0), max(top, 0.0)
    x1, y1 = min(left + w, float(width)), min(top + h, float(height))
    if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class TaoVideo:
    """One written sequence as the TAO export sees it.

    Attributes:
        name: sequence name (the TAO video name), e.g. ``"SYNTH-01"``.
        frame_dir: folder of its frames relative to the dataset root, e.g.
            ``"train/SYNTH-01/img1"``; frame k (1-based) is ``<frame_dir>/<k:06d>.jpg``.
        frames: number of frames.
        width: image width in pixels.
        height: image height in pixels.
        labels: the sequence's gt (class column = category id) and per-row visibility.
    """

    name: str
    frame_dir: str
    frames: int
    width: int
    height: int
    labels: SequenceLabels


def _video_annotations(
    video: TaoVideo, video_id: int, first_image_id: int, first_ann_id: int
) -> list[JsonDict]:
    """Annotations of one video, ordered by frame then gt id; ``track_id`` holds the gt id."""
    gt = video.labels.gt
    annotations: list[JsonDict] = []
    for row in np.lexsort((gt.ids, gt.frames)).tolist():
        if video.labels.visible_in_frame[row] < MIN_VISIBLE:
            continue
        box = clipped_box(gt.boxes_tlwh[row].tolist(), video.width, video.height)
        if box is None:
            continue
        annotations.append(
            {
                "id": first_ann_id + len(annotations),
                "image_id": first_image_id + int(gt.frames[row]) - 1,
                "video_id": video_id,
                "track_id": int(gt.ids[row]),
                "category_id": int(gt.classes[row]),
                "bbox": list(box),
                "area": box[2] * box[3],
                "iscrowd": 0,
            }
        )
    return annotations


def tao_json(videos: Sequence[TaoVideo], num_classes: int) -> JsonDict:
    """A TAO-format annotation file of ``videos`` with every frame annotated.

    Track ids run across videos (unique in the file); a track is listed when at least
    one of its boxes passes the box rule. Annotation keys: ``id, image_id, video_id,
    track_id, category_id, bbox [x, y, w, h], area, iscrowd``.
    """
    out_videos: list[JsonDict] = []
    images: list[JsonDict] = []
    tracks: list[JsonDict] = []
    annotations: list[JsonDict] = []
    for video_id, video in enumerate(videos, start=1):
        out_videos.append(
            {
                "id": video_id,
                "name": video.name,
                "width": video.width,
                "height": video.height,
                "neg_category_ids": [],
                "not_exhaustive_category_ids": [],
                "metadata": {},
            }
        )
        first_image_id = len(images) + 1
        for frame_index in range(video.frames):
            images.append(
                {
                    "id": first_image_id + frame_index,
                    "video_id": video_id,
                    "frame_index": frame_index,
                    "file_name": f"{video.frame_dir}/{frame_index + 1:06d}.jpg",
                    "width": video.width,
                    "height": video.height,
                }
            )
        video_anns = _video_annotations(video, video_id, first_image_id, len(annotations) + 1)
        # Number this video's tracks by gt id, after those of the earlier videos.
        category_of_gt_id = {ann["track_id"]: ann["category_id"] for ann in video_anns}
        track_of_gt_id: dict[int, int] = {}
        for gt_id in sorted(category_of_gt_id):
            track_of_gt_id[gt_id] = len(tracks) + 1
            tracks.append(
                {
                    "id": len(tracks) + 1,
                    "category_id": category_of_gt_id[gt_id],
                    "video_id": video_id,
                }
            )
        annotations.extend(
            {**ann, "track_id": track_of_gt_id[ann["track_id"]]} for ann in video_anns
        )
    return {
        "categories": categories_json(num_classes),
        "videos": out_videos,
        "images": images,
        "tracks": tracks,
        "annotations": annotations,
    }


@dataclass(frozen=True)
class LvisStill:
    """One written still image: its file name under ``lvis/images`` and its labels."""

    image_id: int
    file_name: str
    labels: tuple[FigureLabel, ...]


def still_boxes(
    labels: Sequence[FigureLabel], width: int, height: int
) -> list[tuple[int, tuple[float, float, float, float]]]:
    """(category id, clipped box) of the labels that pass the box rule, in label order."""
    boxes: list[tuple[int, tuple[float, float, float, float]]] = []
    for label in labels:
        if label.visible_in_frame < MIN_VISIBLE:
            continue
        box = clipped_box(rounded_tlwh(label.box_xyxy), width, height)
        if box is not None:
            boxes.append((label.category_id, box))
    return boxes


def lvis_json(stills: Sequence[LvisStill], num_classes: int, width: int, height: int) -> JsonDict:
    """An LVIS-format annotation file of ``stills`` (all images ``width`` x ``height``)."""
    images: list[JsonDict] = []
    annotations: list[JsonDict] = []
    for still in stills:
        images.append(
            {
                "id": still.image_id,
                "file_name": still.file_name,
                "width": width,
                "height": height,
                "neg_category_ids": [],
                "not_exhaustive_category_ids": [],
            }
        )
        for category_id, box in still_boxes(still.labels, width, height):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": still.image_id,
                    "category_id": category_id,
                    "bbox": list(box),
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    return {
        "categories": categories_json(num_classes),
        "images": images,
        "annotations": annotations,
    }


def count_by_category(annotations: Sequence[JsonDict], num_classes: int) -> dict[str, int]:
    """Number of ``annotations`` (or tracks) per category name, every category listed."""
    counts = Counter(int(a["category_id"]) for a in annotations)
    return {name: counts[k + 1] for k, name in enumerate(CATEGORY_NAMES[:num_classes])}


__all__ = [
    "MIN_BOX_PX",
    "MIN_VISIBLE",
    "JsonDict",
    "LvisStill",
    "TaoVideo",
    "categories_json",
    "clipped_box",
    "count_by_category",
    "lvis_json",
    "still_boxes",
    "tao_json",
]
