"""COCO / LVIS reader, class-name files and the category -> label mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qdtrack.data.coco import (
    CocoAnnotation,
    CocoCategory,
    CocoImage,
    category_labels,
    read_class_names,
    read_coco,
)


def coco_dict() -> dict[str, Any]:
    """A small valid LVIS-v0.5-like file: 3 categories, 2 images, 3 annotations."""
    return {
        "info": {"description": "tiny"},
        "categories": [
            {"id": 1, "name": "person", "synset": "person.n.01", "frequency": "f"},
            {"id": 3, "name": "car_(automobile)", "synset": "car.n.01", "frequency": "f"},
            {"id": 7, "name": "zebra"},
        ],
        "images": [
            {
                "id": 10,
                "file_name": "a.jpg",
                "height": 64,
                "width": 96,
                "neg_category_ids": [7],
                "not_exhaustive_category_ids": [],
            },
            {"id": 11, "file_name": "b.jpg", "height": 64, "width": 96},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "bbox": [2, 3, 20, 30], "area": 600},
            {
                "id": 2,
                "image_id": 10,
                "category_id": 3,
                "bbox": [40.5, 8, 30, 20.25],
                "area": 500.0,
                "iscrowd": 1,
                "segmentation": [[0, 0, 1, 1]],
            },
            {"id": 5, "image_id": 11, "category_id": 7, "bbox": [0, 0, 10, 10]},
        ],
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def test_read_coco_round_trip(tmp_path):
    dataset = read_coco(write_json(tmp_path / "lvis.json", coco_dict()))
    assert dataset.path == tmp_path / "lvis.json"
    assert dataset.categories == (
        CocoCategory(1, "person", "person.n.01", "f"),
        CocoCategory(3, "car_(automobile)", "car.n.01", "f"),
        CocoCategory(7, "zebra"),
    )
    assert dataset.images[0] == CocoImage(10, "a.jpg", 64, 96, (7,), ())
    assert dataset.images[1] == CocoImage(11, "b.jpg", 64, 96)
    first, crowd = dataset.annotations_of(10)
    assert first == CocoAnnotation(1, 10, 1, (2.0, 3.0, 20.0, 30.0), 600.0, False)
    assert first.bbox_xyxy == (2.0, 3.0, 22.0, 33.0)
    assert crowd.iscrowd and crowd.bbox_xywh == (40.5, 8.0, 30.0, 20.25)
    (no_area,) = dataset.annotations_of(11)
    assert no_area.area == 100.0  # w * h when the file has no area
    assert dataset.annotations_of(12345) == ()
    assert dataset.category(3).name == "car_(automobile)"
    with pytest.raises(KeyError):
        dataset.category(2)


def test_lvis_v1_file_name_comes_from_coco_url(tmp_path):
    data = coco_dict()
    del data["images"][1]["file_name"]
    data["images"][1]["coco_url"] = "http://images.cocodataset.org/train2017/000000391895.jpg"
    dataset = read_coco(write_json(tmp_path / "lvis_v1.json", data))
    assert dataset.images[1].file_name == "000000391895.jpg"


def _set(table: str, index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[table][index][key] = value

    return mutate


def _delete(table: str, index: int, key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[table][index][key]

    return mutate


def _append(table: str, record: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[table].append(record)

    return mutate


def _drop_top(key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[key]

    return mutate


_ANNOTATION = {"id": 9, "image_id": 10, "category_id": 1, "bbox": [0, 0, 5, 5]}

MALFORMED = [
    (_drop_top("annotations"), r"missing top-level key 'annotations'"),
    (_set("categories", 1, "name", ""), r"categories\[1\]: 'name' must be a non-empty string"),
    (_delete("categories", 0, "id"), r"categories\[0\]: missing field 'id'"),
    (_append("categories", {"id": 1, "name": "dup"}), r"categories\[3\]: duplicate id 1"),
    (_delete("images", 1, "file_name"), r"images\[1\]: missing field 'file_name'"),
    (_set("images", 0, "height", "64"), r"images\[0\]: 'height' must be an integer"),
    (_set("images", 0, "width", 0), r"images\[0\]: 'width' must be positive"),
    (_set("images", 0, "neg_category_ids", [1, "x"]), r"images\[0\]: 'neg_category_ids'"),
    (_set("images", 1, "id", 10), r"images\[1\]: duplicate id 10"),
    (_append("annotations", [1, 2]), r"annotations\[3\]: must be a JSON object"),
    (_delete("annotations", 2, "bbox"), r"annotations\[2\]: missing field 'bbox'"),
    (_set("annotations", 1, "bbox", [1, 2, 3]), r"annotations\[1\]: 'bbox' must be 4 finite"),
    (_set("annotations", 1, "bbox", [1, 2, "3", 4]), r"annotations\[1\]: 'bbox' must be 4"),
    (_set("annotations", 0, "bbox", [1, 2, float("nan"), 4]), r"annotations\[0\]: 'bbox'"),
    (_set("annotations", 0, "bbox", [1, 2, 3, -4]), r"annotations\[0\]: .*negative width or h"),
    (_set("annotations", 0, "id", True), r"annotations\[0\]: 'id' must be an integer"),
    (_set("annotations", 2, "area", "big"), r"annotations\[2\]: 'area' must be a finite"),
    (_set("annotations", 2, "iscrowd", 2), r"annotations\[2\]: 'iscrowd' must be 0 or 1"),
    (_set("annotations", 2, "id", 1), r"annotations\[2\]: duplicate id 1"),
    (_set("annotations", 2, "image_id", 99), r"annotations\[2\]: image_id 99 is not an image"),
    (_set("annotations", 0, "category_id", 2), r"annotations\[0\]: category_id 2 is not a cat"),
    (_append("annotations", {**_ANNOTATION, "bbox": None}), r"annotations\[3\]: 'bbox'"),
]


@pytest.mark.parametrize(("mutate", "message"), MALFORMED)
def test_malformed_coco_files_name_the_file_and_element(tmp_path, mutate, message):
    data = coco_dict()
    mutate(data)
    path = write_json(tmp_path / "bad.json", data)
    with pytest.raises(ValueError, match=message) as excinfo:
        read_coco(path)
    assert str(excinfo.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not a JSON file"),
        ("[1, 2]", "expected a JSON object at the top level"),
        ('{"categories": [], "images": {}, "annotations": []}', "'images' must be a list"),
    ],
)
def test_unreadable_coco_files(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_coco(path)


def test_missing_coco_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.json"):
        read_coco(tmp_path / "nowhere.json")


# --------------------------------------------------------------------------------------
# Class names and labels
# --------------------------------------------------------------------------------------


def test_read_class_names_skips_blank_lines(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("person\n\n  car_(automobile)  \nzebra\n\n")
    assert read_class_names(path) == ("person", "car_(automobile)", "zebra")


@pytest.mark.parametrize(
    ("text", "message"),
    [("person\ncar\nperson\n", r"line 3: class 'person' repeats line 1"), ("\n \n", "no class")],
)
def test_bad_class_name_files(tmp_path, text, message):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as excinfo:
        read_class_names(path)
    assert str(path) in str(excinfo.value)
    with pytest.raises(FileNotFoundError):
        read_class_names(tmp_path / "missing.txt")


CATEGORIES = (
    CocoCategory(1, "person"),
    CocoCategory(3, "car"),
    CocoCategory(8, "truck"),
    CocoCategory(9, "kite"),
)


@pytest.mark.parametrize(
    ("class_names", "category_map", "expected"),
    [
        (["person", "car", "truck", "kite"], None, {1: 0, 3: 1, 8: 2, 9: 3}),
        (["kite", "person"], None, {1: 1, 9: 0}),  # the order of class_names decides
        (["person", "car_(automobile)"], None, {1: 0}),  # unmapped names are left out
        (["person", "car_(automobile)"], {"car": "car_(automobile)"}, {1: 0, 3: 1}),
        (["person", "vehicle"], {"car": "vehicle", "truck": "vehicle"}, {1: 0, 3: 1, 8: 1}),
        (["bicycle"], None, {}),
    ],
)
def test_category_labels(class_names, category_map, expected):
    assert category_labels(CATEGORIES, class_names, category_map) == expected


@pytest.mark.parametrize(
    ("class_names", "message"), [([], "at least one class"), (["a", "b", "a"], "repeats 'a'")]
)
def test_category_labels_rejects_bad_class_names(class_names, message):
    with pytest.raises(ValueError, match=message):
        category_labels(CATEGORIES, class_names)
