"""``data.source: path`` with ``data.format: tao`` (the R-101 configs' data step): the
validation file and its images are checked, the folder is linked, and ``convert`` lists
each video's annotated frames; bad data stops with the file named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qdtrack.config import DataConfig
from qdtrack.data.prepare import convert_dataset, prepare_dataset


def _settings(root: Path) -> DataConfig:
    return DataConfig(source="path", path=str(root), format="tao")


def test_tao_folder_is_checked_linked_and_converted(synth_tao: Path, tmp_path: Path) -> None:
    manifest = prepare_dataset(_settings(synth_tao), tmp_path / "dataset")
    val = json.loads((synth_tao / "annotations" / "val.json").read_text())
    assert manifest["format"] == "tao"
    assert manifest["val"]["images"] == len(val["images"])
    assert (tmp_path / "dataset" / "annotations" / "train.json").is_file()
    convert_dataset(
        tmp_path / "dataset",
        tmp_path / "converted",
        val_split="full",
        train_sources=(),
        settings=_settings(synth_tao),
        class_names=("person", "car", "dog"),
    )
    listed = json.loads((tmp_path / "converted" / "val.json").read_text())
    assert listed["format"] == "tao" and len(listed["videos"]) == len(val["videos"])
    frames = listed["videos"][0]["frames"]
    assert [f["frame_index"] for f in frames] == sorted(f["frame_index"] for f in frames)
    assert all(Path(f["path"]).is_file() for f in frames)
    assert [p.name for p in (tmp_path / "converted" / "val_gt").iterdir()] == ["val.json"]


def test_bad_tao_folders_stop_naming_the_file(synth_tao: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(synth_tao, broken)
    image = sorted((broken / "val").glob("*/img1/*.jpg"))[3]
    image.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=image.name):
        prepare_dataset(_settings(broken), tmp_path / "out1")
    (broken / "annotations" / "val.json").unlink()
    with pytest.raises(FileNotFoundError, match="val_annotations"):
        prepare_dataset(_settings(broken), tmp_path / "out2")
    with pytest.raises(ValueError, match="val_split full"):
        DataConfig(format="tao", val_split="half-val")
    with pytest.raises(ValueError, match="classes >= 2"):
        DataConfig(format="tao", source="synth", classes=1)
