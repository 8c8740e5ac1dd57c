"""Labels survive tracking: per-class boxes through the TAO tracker, the TAO result file
and TrackEval, on multi-class synthetic ground truth with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qdtrack.data.tao import TaoDataset, read_tao
from qdtrack.evaluation.tao import evaluate_tao
from qdtrack.inference.tao_writer import detection_records, label_categories, track_records
from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import QuasiDenseTAOTracker

CLASSES = ("person", "car", "dog")


def test_label_categories_match_by_name() -> None:
    categories = [{"id": 7, "name": "dog"}, {"id": 3, "name": "person"}]
    assert label_categories(CLASSES, categories) == {0: 3, 2: 7}  # no "car" in this gt
    assert label_categories(("pedestrian",), categories) == {}


def test_records_carry_category_ids_and_offset_ids() -> None:
    tracks = Tracks(
        boxes_xyxy=np.array([[0, 0, 10, 20], [5, 5, 15, 10], [1, 1, 2, 2]], np.float32),
        scores=np.array([0.9, 0.8, 0.7], np.float32),
        labels=np.array([1, 0, 2], np.int64),
        track_ids=np.array([0, 4, 2], np.int64),
        input_indices=np.arange(3),
    )
    records, left_out = track_records(5, [11], [tracks], {0: 1, 1: 2}, id_offset=100)
    assert left_out == 1  # label 2 has no gt category
    assert records == [
        {"image_id": 11, "video_id": 5, "category_id": 2, "bbox": [0.0, 0.0, 10.0, 20.0],
         "score": 0.9, "track_id": 100},
        {"image_id": 11, "video_id": 5, "category_id": 1, "bbox": [5.0, 5.0, 10.0, 5.0],
         "score": 0.8, "track_id": 104},
    ]  # fmt: skip
    det = Detections(tracks.boxes_xyxy, tracks.scores, tracks.labels)
    boxes = detection_records([11], [det], {0: 1, 1: 2})
    assert [b["category_id"] for b in boxes] == [2, 1]


def _gt_detections(dataset: TaoDataset, video_id: int, labels_of: dict[int, int]) -> list:
    """Every gt box of a video as a detection: score 0.99, an embedding naming its track."""
    track_ids = sorted(t.id for t in dataset.tracks)
    frames = []
    for image in dataset.frames_of(video_id):
        anns = dataset.annotations_of(image.id)
        boxes = np.array([[*a.bbox_xywh[:2], a.bbox_xywh[0] + a.bbox_xywh[2],
                           a.bbox_xywh[1] + a.bbox_xywh[3]] for a in anns], np.float32)  # fmt: skip
        embeds = np.zeros((len(anns), len(track_ids)), np.float32)
        for row, a in enumerate(anns):
            embeds[row, track_ids.index(a.track_id)] = 1.0
        frames.append(
            Detections(
                boxes.reshape(-1, 4),
                np.full(len(anns), 0.99, np.float32),
                np.array([labels_of[a.category_id] for a in anns], np.int64),
                embeds,
            )
        )
    return frames


def _track_and_score(dataset: TaoDataset, gt: Path, out: Path, labels_of: dict[int, int]) -> dict:
    label_to_category = label_categories(CLASSES, [{"id": c.id, "name": c.name}
                                                   for c in dataset.categories])  # fmt: skip
    records: list[dict] = []
    offset = 0
    for video in dataset.videos:
        tracker = QuasiDenseTAOTracker()
        images = [image.id for image in dataset.frames_of(video.id)]
        detections = _gt_detections(dataset, video.id, labels_of)
        per_frame = [tracker.update(det, i) for i, det in enumerate(detections)]
        video_records, _ = track_records(video.id, images, per_frame, label_to_category, offset)
        records += video_records
        offset += 10_000
    out.mkdir()
    (out / "tracks.json").write_text(json.dumps(records))
    return evaluate_tao(gt, out)


def test_multiclass_ground_truth_survives_the_tao_tracker(synth_tao: Path, tmp_path: Path) -> None:
    gt = synth_tao / "annotations" / "val.json"
    dataset = read_tao(gt)
    names = {c.id: c.name for c in dataset.categories}
    assert sorted(names.values()) == sorted(CLASSES)
    labels_of = {cid: CLASSES.index(name) for cid, name in names.items()}
    perfect = _track_and_score(dataset, gt, tmp_path / "labels", labels_of)
    assert perfect["combined"]["TrackAP"] == pytest.approx(100.0)
    assert {name: row["TrackAP"] for name, row in perfect["classes"].items()} == {
        name: pytest.approx(100.0) for name in CLASSES
    }
    # The same boxes with every label zeroed (mmdetection#11409): cars and dogs are never
    # found, and as "persons" they are false positives that lower the person AP too.
    zeroed = _track_and_score(dataset, gt, tmp_path / "zeroed", dict.fromkeys(labels_of, 0))
    per_class = {name: row["TrackAP"] for name, row in zeroed["classes"].items()}
    assert per_class["car"] == 0.0 and per_class["dog"] == 0.0
    assert per_class["person"] < 100.0
    assert zeroed["combined"]["TrackAP"] < 100.0 / 3
