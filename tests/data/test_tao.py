"""TAO reader (docs/reference-behaviour.md, data formats): round trip, checks, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qdtrack.data.coco import CocoCategory
from qdtrack.data.tao import TaoAnnotation, TaoImage, TaoTrack, TaoVideo, read_tao


def tao_dict() -> dict[str, Any]:
    """Two videos; the images of video 1 are listed out of frame order."""
    return {
        "videos": [
            {
                "id": 1,
                "name": "train/YFCC100M/v_1",
                "width": 96,
                "height": 64,
                "neg_category_ids": [7],
                "not_exhaustive_category_ids": [3],
            },
            {"id": 2, "name": "train/LaSOT/v_2"},
        ],
        "images": [
            {"id": 11, "video_id": 1, "frame_index": 30, "file_name": "v1/b.jpg"},
            {"id": 10, "video_id": 1, "frame_index": 0, "file_name": "v1/a.jpg"},
            {"id": 20, "video_id": 2, "frame_index": 5, "file_name": "v2/a.jpg"},
        ],
        "tracks": [
            {"id": 100, "category_id": 1, "video_id": 1},
            {"id": 101, "category_id": 3, "video_id": 1},
            {"id": 200, "category_id": 7, "video_id": 2},
        ],
        "annotations": [
            _annotation(1, 10, 1, 100, 1, [2, 3, 20, 30]),
            _annotation(2, 10, 1, 101, 3, [40, 8, 30, 20]),
            _annotation(3, 11, 1, 100, 1, [4, 3, 20, 30]),
            _annotation(4, 20, 2, 200, 7, [0, 0, 10, 10]),
        ],
        "categories": [
            {"id": 1, "name": "person", "synset": "person.n.01", "merged": []},
            {"id": 3, "name": "car_(automobile)", "frequency": "f"},
            {"id": 7, "name": "zebra"},
        ],
    }


def _annotation(
    ann_id: int, image_id: int, video_id: int, track_id: int, category_id: int, bbox: list[float]
) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": image_id,
        "video_id": video_id,
        "track_id": track_id,
        "category_id": category_id,
        "bbox": bbox,
        "area": bbox[2] * bbox[3],
        "iscrowd": 0,
    }


def write_tao(path: Path, data: dict[str, Any]) -> Path:
    for image in data["images"]:  # TAO images carry their size
        image.setdefault("width", 96)
        image.setdefault("height", 64)
    path.write_text(json.dumps(data))
    return path


def test_read_tao_round_trip(tmp_path):
    dataset = read_tao(write_tao(tmp_path / "train.json", tao_dict()))
    assert dataset.videos == (
        TaoVideo(1, "train/YFCC100M/v_1", 96, 64, (7,), (3,)),
        TaoVideo(2, "train/LaSOT/v_2"),
    )
    assert [image.id for image in dataset.images] == [11, 10, 20]  # file order
    assert dataset.frames_of(1) == (
        TaoImage(10, 1, 0, "v1/a.jpg", 96, 64),
        TaoImage(11, 1, 30, "v1/b.jpg", 96, 64),
    )
    assert dataset.frames_of(99) == ()
    assert dataset.tracks[2] == TaoTrack(200, 7, 2)
    assert dataset.annotations_of(10) == (
        TaoAnnotation(1, 10, 1, 100, 1, (2.0, 3.0, 20.0, 30.0), 600.0),
        TaoAnnotation(2, 10, 1, 101, 3, (40.0, 8.0, 30.0, 20.0), 600.0),
    )
    assert dataset.annotations_of(10)[0].bbox_xyxy == (2.0, 3.0, 22.0, 33.0)
    assert dataset.categories[1] == CocoCategory(3, "car_(automobile)", None, "f")


def _set(table: str, index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[table][index][key] = value

    return mutate


def _delete(table: str, index: int, key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[table][index][key]

    return mutate


def _drop_top(key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[key]

    return mutate


MALFORMED = [
    (_drop_top("tracks"), r"missing top-level key 'tracks'"),
    (_delete("videos", 1, "name"), r"videos\[1\]: missing field 'name'"),
    (_set("videos", 0, "width", -5), r"videos\[0\]: 'width' must be positive"),
    (_set("videos", 1, "id", 1), r"videos\[1\]: duplicate id 1"),
    (_delete("images", 2, "frame_index"), r"images\[2\]: missing field 'frame_index'"),
    (_set("images", 0, "frame_index", -1), r"images\[0\]: 'frame_index' must be >= 0"),
    (_set("images", 2, "video_id", 9), r"images\[2\]: video_id 9 is not a video"),
    (_set("images", 0, "frame_index", 0), r"images\[1\]: frame_index 0 of video 1 is already"),
    (_set("tracks", 0, "video_id", 9), r"tracks\[0\]: video_id 9 is not a video"),
    (_set("tracks", 2, "category_id", 2), r"tracks\[2\]: category_id 2 is not a category"),
    (_set("tracks", 1, "id", 100), r"tracks\[1\]: duplicate id 100"),
    (_delete("annotations", 0, "track_id"), r"annotations\[0\]: missing field 'track_id'"),
    (_set("annotations", 3, "bbox", [0, 0, 1]), r"annotations\[3\]: 'bbox' must be 4 finite"),
    (_set("annotations", 3, "bbox", [0, 0, -1, 1]), r"annotations\[3\]: 'bbox' has a negative"),
    (_set("annotations", 3, "image_id", 99), r"annotations\[3\]: image_id 99 is not an image"),
    (_set("annotations", 3, "track_id", 999), r"annotations\[3\]: track_id 999 is not a track"),
    (_set("annotations", 3, "category_id", 5), r"annotations\[3\]: category_id 5 is not a cat"),
    (_set("annotations", 3, "video_id", 1), r"annotations\[3\]: video_id 1 differs from the vi"),
    (_set("annotations", 2, "track_id", 200), r"annotations\[2\]: video_id 1 differs .* track"),
    (_set("annotations", 1, "category_id", 1), r"annotations\[1\]: category_id 1 differs .*101"),
    (_set("annotations", 1, "id", 1), r"annotations\[1\]: duplicate id 1"),
    (_set("categories", 0, "synset", 3), r"categories\[0\]: 'synset' must be a string"),
]


@pytest.mark.parametrize(("mutate", "message"), MALFORMED)
def test_malformed_tao_files_name_the_file_and_element(tmp_path, mutate, message):
    data = tao_dict()
    mutate(data)
    path = write_tao(tmp_path / "bad.json", data)
    with pytest.raises(ValueError, match=message) as excinfo:
        read_tao(path)
    assert str(excinfo.value).startswith(f"{path}: ")


def test_tao_file_that_is_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"videos": [')
    with pytest.raises(ValueError, match=r"bad\.json: not a JSON file"):
        read_tao(path)
