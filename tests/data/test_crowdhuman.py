"""CrowdHuman .odgt reading, writing and mmtracking's training boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qdtrack.data.crowdhuman import (
    CrowdHumanBox,
    CrowdHumanImage,
    read_odgt,
    to_training_boxes,
    write_odgt,
)

PERSON = {
    "fbox": [72, 202, 163, 503],
    "tag": "person",
    "hbox": [171, 208, 62, 83],
    "extra": {"box_id": 0, "occ": 0},
    "vbox": [72, 202, 163, 398],
    "head_attr": {"ignore": 0, "occ": 0, "unsure": 0},
}
IGNORED_PERSON = {
    "fbox": [-10, 5.5, 40, 90],
    "tag": "person",
    "hbox": [0, 5.5, 12, 14],
    "extra": {"box_id": 1, "occ": 1, "ignore": 1},
    "vbox": [0, 5.5, 30, 60],
    "head_attr": {"ignore": 1, "occ": 1, "unsure": 0},
}
MASK = {
    "fbox": [0, 308, 164, 416],
    "tag": "mask",
    "hbox": [0, 308, 164, 416],
    "extra": {"ignore": 1},
    "vbox": [0, 308, 164, 416],
    "head_attr": {},
}
PERSON_2 = {**PERSON, "fbox": [300, 10, 50, 120], "extra": {"box_id": 3, "occ": 1}}
SAMPLE = [
    {"ID": "273271,c9db000d5146c15", "gtboxes": [PERSON, MASK, IGNORED_PERSON, PERSON_2]},
    {"ID": "273271,1017c000ac1360b7", "gtboxes": []},
]


@pytest.fixture
def sample_odgt(tmp_path: Path) -> Path:
    path = tmp_path / "annotation_val.odgt"
    path.write_text("\n".join(json.dumps(record) for record in SAMPLE) + "\n\n")
    return path


def test_read_odgt(sample_odgt: Path) -> None:
    images = read_odgt(sample_odgt)
    assert [im.image_id for im in images] == ["273271,c9db000d5146c15", "273271,1017c000ac1360b7"]
    person, mask, ignored, _ = images[0].boxes
    assert person.fbox_xyxy == (72, 202, 235, 705)
    assert person.vbox_xyxy == (72, 202, 235, 600)
    assert person.hbox_xyxy == (171, 208, 233, 291)
    assert (person.box_id, person.ignore, person.tag) == (0, False, "person")
    assert mask.tag == "mask" and mask.ignore and mask.box_id is None
    assert ignored.ignore and ignored.fbox_xyxy == (-10, 5.5, 30, 95.5)
    assert images[1].boxes == ()


def test_odgt_round_trip(sample_odgt: Path, tmp_path: Path) -> None:
    images = read_odgt(sample_odgt)
    out = tmp_path / "copy.odgt"
    write_odgt(out, images)
    assert read_odgt(out) == images
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2
    first = records[0]["gtboxes"]
    assert first[0]["fbox"] == [72, 202, 163, 503]
    assert first[0]["extra"] == {"box_id": 0, "ignore": 0, "occ": 0}
    assert first[1]["extra"] == {"ignore": 1} and first[1]["head_attr"] == {}
    assert first[2]["fbox"] == [-10, 5.5, 40, 90]


def test_to_training_boxes_follows_mmtracking(sample_odgt: Path) -> None:
    boxes, instance_ids, ignore_boxes = to_training_boxes(read_odgt(sample_odgt)[0])
    np.testing.assert_array_equal(boxes, [[72, 202, 235, 705], [300, 10, 350, 130]])
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(instance_ids, [0, 1])
    # The mask and the ignored person both become ignore boxes.
    np.testing.assert_array_equal(ignore_boxes, [[0, 308, 164, 724], [-10, 5.5, 30, 95.5]])


def test_to_training_boxes_empty() -> None:
    boxes, ids, ignore_boxes = to_training_boxes(CrowdHumanImage("x", ()))
    assert boxes.shape == (0, 4) and ids.shape == (0,) and ignore_boxes.shape == (0, 4)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"ID": "a", "gtboxes": [', ":2: invalid JSON"),
        ('{"gtboxes": []}', ":2: missing key 'ID'"),
        ('{"ID": "a"}', ":2: missing key 'gtboxes'"),
        ('{"ID": "a", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3]}]}', ":2: gtbox 0: 'fbox'"),
        ('{"ID": "a", "gtboxes": [{"fbox": [1, 2, 3, 4], "vbox": [1]}]}', ":2: gtbox 0: 'vbox'"),
        ('{"ID": "a", "gtboxes": [{"fbox": [1, "2", 3, 4]}]}', ":2: gtbox 0: 'fbox' must hold"),
    ],
)
def test_read_odgt_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.odgt"
    path.write_text('{"ID": "ok", "gtboxes": []}\n' + line + "\n")
    with pytest.raises(ValueError, match=rf"bad\.odgt{message}"):
        read_odgt(path)


def test_read_odgt_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"none\.odgt"):
        read_odgt(tmp_path / "none.odgt")


def test_write_odgt_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "a.odgt"
    path.write_text("old\n")
    bad_box = CrowdHumanBox(tag="person", fbox_xyxy=(0, 0, 1, 1), head_attr={"x": object()})
    with pytest.raises(TypeError):
        write_odgt(path, [CrowdHumanImage("a", ()), CrowdHumanImage("b", (bad_box,))])
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.odgt"]
