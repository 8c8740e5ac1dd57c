"""The pipeline's data and convert steps: synthesize or check a dataset, then split it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qdtrack.cli import main as cli
from qdtrack.config import DataConfig, config_from_dict

PARAMS = """
data: {source: SOURCE, path: PATH, val_split: SPLIT, seed: 0, train_seqs: 1, val_seqs: 1,
       frames: 12, crowdhuman_images: 3}
train:
  sources:
    - {kind: mot, path: OUT/train, subset: SUBSET}
    - {kind: crowdhuman, path: OUT/crowdhuman}
"""


def _params(tmp: Path, *, source: str, path: Path, split: str, out: Path) -> Path:
    subset = "full" if split == "full" else "half-train"
    text = PARAMS.replace("SOURCE", source).replace("PATH", str(path)).replace("SPLIT", split)
    file = tmp / f"params-{source}-{split}.yaml"
    file.write_text(text.replace("OUT", str(out)).replace("SUBSET", subset))
    return file


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("prepare")
    out = tmp / "synth"
    params = _params(tmp, source="synth", path=tmp, split="full", out=out)
    assert cli(["data", "prepare", "--config", str(params), "--out", str(out)]) == 0
    return out


def test_synth_source_and_full_val(synth_dataset: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in synth_dataset.iterdir()) == [
        "README.txt", "crowdhuman", "manifest.json", "train", "val"
    ]  # fmt: skip
    params = _params(tmp_path, source="synth", path=tmp_path, split="full", out=synth_dataset)
    out = tmp_path / "converted"
    args = ["data", "convert", "--config", str(params), "--data", str(synth_dataset)]
    assert cli([*args, "--out", str(out)]) == 0
    val = json.loads((out / "val.json").read_text())
    assert val["split"] == "full"
    assert [(s["name"], s["start"], s["stop"]) for s in val["sequences"]] == [("SYNTH-02", 1, 12)]
    assert (out / "val_gt" / "SYNTH-02" / "gt" / "gt.txt").read_bytes() == (
        synth_dataset / "val" / "SYNTH-02" / "gt" / "gt.txt"
    ).read_bytes()
    stats = json.loads((out / "stats.json").read_text())
    assert [s["key_frames"] for s in stats["train_sources"]] == [12, 3]


def test_path_source_links_a_checked_dataset_and_half_splits(
    synth_dataset: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "MOT17"
    shutil.copytree(synth_dataset / "train", raw / "train")
    shutil.copytree(synth_dataset / "crowdhuman", raw / "crowdhuman")
    out = tmp_path / "dataset"
    params = _params(tmp_path, source="path", path=raw, split="half-val", out=out)
    assert cli(["data", "prepare", "--config", str(params), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["train"][0]["name"] == "SYNTH-01" and manifest["train"][0]["frames"] == 12
    assert manifest["crowdhuman"]["images"] == 3
    image = out / "train" / "SYNTH-01" / "img1" / "000001.jpg"
    assert image.read_bytes() == (raw / "train" / "SYNTH-01" / "img1" / "000001.jpg").read_bytes()

    converted = tmp_path / "converted"
    args = ["data", "convert", "--config", str(params), "--data", str(out)]
    assert cli([*args, "--out", str(converted)]) == 0
    val = json.loads((converted / "val.json").read_text())
    # mmtracking's half split of 12 frames: half-train 1..7, half-val 8..12
    assert [(s["name"], s["start"], s["stop"]) for s in val["sequences"]] == [("SYNTH-01", 8, 12)]
    assert (converted / "val_gt" / "SYNTH-01" / "gt" / "gt_half-val.txt").is_file()
    stats = json.loads((converted / "stats.json").read_text())
    assert stats["train_sources"][0]["subset"] == "half-train"
    assert stats["train_sources"][0]["frames"] == 7


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate_image", "000005.jpg: not a JPEG or PNG file"),
        ("remove_image", "000012.jpg: image missing"),
        ("corrupt_gt", "gt.txt:3"),
        ("remove_seqinfo", "no sequence folders"),
        ("remove_crowdhuman_image", ".jpg: image missing"),
        ("missing_root", "no such folder"),
    ],
)
def test_bad_data_fails_at_the_data_step_naming_the_file(
    synth_dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    message: str,
) -> None:
    raw = tmp_path / "MOT17"
    shutil.copytree(synth_dataset / "train", raw / "train")
    shutil.copytree(synth_dataset / "crowdhuman", raw / "crowdhuman")
    seq = raw / "train" / "SYNTH-01"
    if damage == "truncate_image":
        (seq / "img1" / "000005.jpg").write_bytes(b"")
    elif damage == "remove_image":
        (seq / "img1" / "000012.jpg").unlink()
    elif damage == "corrupt_gt":
        lines = (seq / "gt" / "gt.txt").read_text().splitlines()
        lines[2] = "3,1,not-a-number,0,10,10,1,1,1"
        (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    elif damage == "remove_seqinfo":
        (seq / "seqinfo.ini").unlink()
    elif damage == "remove_crowdhuman_image":
        images = sorted((raw / "crowdhuman" / "Images").iterdir())
        images[1].unlink()
    else:
        shutil.rmtree(raw)
    out = tmp_path / "dataset"
    params = _params(tmp_path, source="path", path=raw, split="half-val", out=out)
    assert cli(["data", "prepare", "--config", str(params), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qdtrack data: error:")
    assert message in err


def test_bad_settings_are_clear() -> None:
    with pytest.raises(ValueError, match=r"data\.source: expected one of"):
        DataConfig(source="s3")
    with pytest.raises(ValueError, match=r"data\.sorce: unknown key"):
        config_from_dict({"data": {"sorce": "synth"}})
