"""Tests of the multi-class mode of the synthetic generator (``qdtrack data synth --classes``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qdtrack.data.mot import MotTable, read_mot_txt
from qdtrack.data.synth import (
    CATEGORY_NAMES,
    BallLook,
    CarLook,
    DogLook,
    FigureLook,
    SynthConfig,
    build_sequence,
    generate,
    label_sequence,
    perspective_height,
    simulate_sequence,
)
from qdtrack.data.synth.coco import MIN_VISIBLE, clipped_box

SMALL = SynthConfig(train_seqs=1, val_seqs=1, frames=12, crowdhuman_images=3, num_classes=4)
SEED = 2
WIDTH, HEIGHT = SMALL.width, SMALL.height
SEQUENCES = (("train", "SYNTH-01"), ("val", "SYNTH-02"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_multiclass")
    generate(out, SMALL, SEED)
    return out


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _gt(root: Path, split: str, name: str) -> MotTable:
    return read_mot_txt(root / split / name / "gt" / "gt.txt", kind="gt", seq_length=SMALL.frames)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _check_box(ann: dict[str, Any]) -> None:
    x, y, w, h = ann["bbox"]
    assert w >= 2 and h >= 2
    assert x >= 0 and y >= 0 and x + w <= WIDTH and y + h <= HEIGHT, "TAO/LVIS boxes lie inside"
    assert ann["area"] == pytest.approx(w * h)
    assert ann["iscrowd"] == 0


def test_layout(dataset: Path) -> None:
    assert (dataset / "train" / "SYNTH-01" / "img1" / "000012.jpg").is_file()
    assert (dataset / "val" / "SYNTH-02" / "det" / "det.txt").is_file()
    for name in ("annotations/train.json", "annotations/val.json", "lvis/annotations.json"):
        assert (dataset / name).is_file(), name
    assert len(list((dataset / "lvis" / "images").glob("*.jpg"))) == 3
    assert not (dataset / "crowdhuman").exists(), "multi-class writes LVIS stills instead"
    readme = (dataset / "README.txt").read_text(encoding="utf-8")
    assert "annotations/train.json" in readme and "lvis/annotations.json" in readme


@pytest.mark.parametrize("split", ["train", "val"])
def test_tao_json_is_consistent(dataset: Path, split: str) -> None:
    tao = _json(dataset / "annotations" / f"{split}.json")
    assert tao["categories"] == [
        {"id": k + 1, "name": name, "synset": f"{name}.n.01", "frequency": "f"}
        for k, name in enumerate(CATEGORY_NAMES)
    ]
    for key in ("videos", "images", "tracks", "annotations"):
        ids = [item["id"] for item in tao[key]]
        assert ids == list(range(1, len(ids) + 1)), f"{key} ids unique, from 1"
    (video,) = tao["videos"]
    assert video["name"] == dict(SEQUENCES)[split]
    assert (video["width"], video["height"]) == (WIDTH, HEIGHT)
    assert video["neg_category_ids"] == [] and video["not_exhaustive_category_ids"] == []
    images = {im["id"]: im for im in tao["images"]}
    tracks = {t["id"]: t for t in tao["tracks"]}
    frame_indices = sorted(im["frame_index"] for im in images.values())
    assert frame_indices == list(range(SMALL.frames)), "every frame, 0-based and contiguous"
    for image in images.values():
        assert image["video_id"] == video["id"]
        assert (dataset / image["file_name"]).is_file(), image["file_name"]
        assert image["file_name"].endswith(f"/img1/{image['frame_index'] + 1:06d}.jpg")
    for ann in tao["annotations"]:
        track = tracks[ann["track_id"]]
        assert ann["image_id"] in images
        assert ann["category_id"] == track["category_id"], "one class per track"
        assert ann["video_id"] == track["video_id"] == images[ann["image_id"]]["video_id"]
        _check_box(ann)
    pairs = [(a["image_id"], a["track_id"]) for a in tao["annotations"]]
    assert len(set(pairs)) == len(pairs), "a track appears once per frame"
    assert {a["track_id"] for a in tao["annotations"]} == set(tracks)


def test_tao_boxes_follow_the_gt_and_the_visibility_rule(dataset: Path) -> None:
    for video_index, (split, name) in enumerate(SEQUENCES, start=1):
        tao = _json(dataset / "annotations" / f"{split}.json")
        labels = label_sequence(build_sequence(SEED, video_index, SMALL), WIDTH, HEIGHT)
        gt = labels.gt
        expected = Counter()
        for row in range(len(gt)):
            box = clipped_box(gt.boxes_tlwh[row].tolist(), WIDTH, HEIGHT)
            if labels.visible_in_frame[row] >= MIN_VISIBLE and box is not None:
                expected[(int(gt.frames[row]) - 1, int(gt.classes[row]), box)] += 1
        frame_of = {im["id"]: im["frame_index"] for im in tao["images"]}
        written = Counter(
            (frame_of[a["image_id"]], a["category_id"], tuple(a["bbox"]))
            for a in tao["annotations"]
        )
        assert written == expected
        # Rows left out are the mostly hidden or mostly outside ones.
        assert 0 < len(tao["annotations"]) < len(_gt(dataset, split, name))


def test_lvis_json_is_consistent(dataset: Path) -> None:
    lvis = _json(dataset / "lvis" / "annotations.json")
    assert [c["name"] for c in lvis["categories"]] == list(CATEGORY_NAMES)
    images = {im["id"]: im for im in lvis["images"]}
    assert sorted(images) == [1, 2, 3]
    for image in images.values():
        assert (dataset / "lvis" / "images" / image["file_name"]).is_file()
        assert (image["width"], image["height"]) == (WIDTH, HEIGHT)
        assert image["neg_category_ids"] == [] and image["not_exhaustive_category_ids"] == []
    ids = [a["id"] for a in lvis["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    for ann in lvis["annotations"]:
        assert ann["image_id"] in images
        assert 1 <= ann["category_id"] <= len(CATEGORY_NAMES)
        _check_box(ann)


def test_every_class_in_train_val_and_stills(dataset: Path) -> None:
    all_classes = set(range(1, len(CATEGORY_NAMES) + 1))
    for name in ("annotations/train.json", "annotations/val.json", "lvis/annotations.json"):
        annotations = _json(dataset / name)["annotations"]
        assert {a["category_id"] for a in annotations} == all_classes, name
    for split, name in SEQUENCES:
        assert set(_gt(dataset, split, name).classes.tolist()) == all_classes


def test_mot_gt_class_column_is_the_category(dataset: Path) -> None:
    manifest = _json(dataset / "manifest.json")
    for seq in manifest["sequences"]:
        gt = _gt(dataset, seq["split"], seq["name"])
        for name, counts in seq["per_class"].items():
            of_class = gt.classes == CATEGORY_NAMES.index(name) + 1
            assert counts["gt_boxes"] == int(of_class.sum())
            assert counts["tracks"] == len(np.unique(gt.ids[of_class]))
        for track_id in np.unique(gt.ids):
            assert len(np.unique(gt.classes[gt.ids == track_id])) == 1, "one class per id"


def test_manifest_describes_the_files(dataset: Path) -> None:
    manifest = _json(dataset / "manifest.json")
    assert manifest["config"]["num_classes"] == 4
    assert "crowdhuman" not in manifest
    assert [c["name"] for c in manifest["categories"]] == list(CATEGORY_NAMES)
    for split in ("train", "val"):
        tao = _json(dataset / "annotations" / f"{split}.json")
        entry = manifest["tao"][split]
        assert entry["annotations"] == len(tao["annotations"])
        assert sum(entry["annotations_per_class"].values()) == len(tao["annotations"])
        assert sum(entry["tracks_per_class"].values()) == len(tao["tracks"])
    lvis = _json(dataset / "lvis" / "annotations.json")
    assert manifest["lvis"]["annotations"] == len(lvis["annotations"])


def test_class_shapes_differ(dataset: Path) -> None:
    boxes: dict[int, list[np.ndarray]] = {}
    for split, name in SEQUENCES:
        gt = _gt(dataset, split, name)
        for box, category in zip(gt.boxes_tlwh, gt.classes, strict=True):
            boxes.setdefault(int(category), []).append(box)
    aspect = {c: float(np.mean([b[2] / b[3] for b in bs])) for c, bs in boxes.items()}
    person, car, dog, ball = (aspect[k] for k in (1, 2, 3, 4))
    assert car > 1.8 and dog > 1.1 and person < 0.6
    assert 0.85 < ball < 1.15


def test_sizes_follow_the_ground_plane() -> None:
    """Box height over a person's perspective height at the same foot row, per class."""
    sim = simulate_sequence(np.random.default_rng(0), SynthConfig(frames=30, num_classes=4))
    ratios: dict[type, list[float]] = {}
    for scene in sim.frames:
        for fig in scene.figures:
            person_height = perspective_height(fig.foot_y, HEIGHT)
            ratios.setdefault(type(fig.look), []).append(fig.height / person_height)
    mean = {kind: float(np.mean(r)) for kind, r in ratios.items()}
    assert mean[FigureLook] > mean[CarLook] > mean[DogLook] > mean[BallLook]
    assert 0.8 < mean[FigureLook] < 1.15


def test_classes_are_balanced_and_pairs_stay_within_a_class() -> None:
    config = SynthConfig(frames=150, num_classes=4)
    for seed in range(3):
        sim = simulate_sequence(np.random.default_rng(seed), config)
        looks = {f.track_id: f.look for scene in sim.frames for f in scene.figures}
        per_class = Counter(look.category_id for look in looks.values())
        assert set(per_class) == {1, 2, 3, 4}
        assert max(per_class.values()) - min(per_class.values()) <= 2
        assert len(sim.lookalike_pairs) == 3
        for a, b in sim.lookalike_pairs:
            look_a, look_b = looks[a], looks[b]
            assert type(look_a) is type(look_b)
            assert look_a.size == look_b.size and look_a != look_b
            if isinstance(look_a, CarLook | DogLook):
                assert look_a.length == look_b.length  # type: ignore[union-attr]


def test_same_seed_gives_identical_bytes(dataset: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", SMALL, SEED)
    assert _tree_hashes(tmp_path / "again") == _tree_hashes(dataset)


def test_classes_1_is_the_default_dataset(tmp_path: Path) -> None:
    from qdtrack.cli import main

    argv = ["data", "synth", "--seed", "5", "--frames", "12", "--train-seqs", "1"]
    argv += ["--val-seqs", "1", "--crowdhuman-images", "3"]
    assert main([*argv, "--out", str(tmp_path / "default")]) == 0
    assert main([*argv, "--out", str(tmp_path / "one"), "--classes", "1"]) == 0
    hashes = _tree_hashes(tmp_path / "default")
    assert hashes == _tree_hashes(tmp_path / "one")
    assert not (tmp_path / "one" / "annotations").exists()
    manifest = _json(tmp_path / "one" / "manifest.json")
    assert "num_classes" not in manifest["config"] and "crowdhuman" in manifest
    # Text outputs of the people-only generator from before classes existed (pinned).
    # A deliberate change to the single-class generator updates these.
    assert hashes["train/SYNTH-01/gt/gt.txt"].startswith("e28f6b571f8c9241")
    assert hashes["val/SYNTH-02/det/det.txt"].startswith("0d3c850544eec2e1")
    assert hashes["crowdhuman/annotation_train.odgt"].startswith("670c529f2cb2ffd0")
    assert hashes["manifest.json"].startswith("435165a35132c6f1")


@pytest.mark.parametrize("classes", [0, 5])
def test_bad_class_count_is_rejected(
    classes: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qdtrack.cli import main

    with pytest.raises(ValueError, match=r"num_classes must be in 1\.\.4"):
        SynthConfig(num_classes=classes)
    assert main(["data", "synth", "--out", str(tmp_path), "--classes", str(classes)]) == 2
    assert "num_classes must be in 1..4 (person, car, dog, ball)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_multiclass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qdtrack.cli import main

    argv = ["data", "synth", "--out", str(tmp_path), "--frames", "6", "--train-seqs", "1"]
    argv += ["--val-seqs", "0", "--crowdhuman-images", "2", "--classes", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "person, car" in out and "2 LVIS images" in out
    val = _json(tmp_path / "annotations" / "val.json")
    assert val["videos"] == [] and val["annotations"] == []
    train = _json(tmp_path / "annotations" / "train.json")
    assert {c["name"] for c in train["categories"]} == {"person", "car"}
