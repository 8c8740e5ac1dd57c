"""Tests of the synthetic dataset generator (``qdtrack data synth``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from qdtrack.data.mot import MotTable, read_mot_txt, read_seqinfo
from qdtrack.data.synth import (
    FigureLook,
    FigureState,
    SceneState,
    SynthConfig,
    build_sequence,
    detection_recall,
    generate,
    label_scene,
    render_frame,
    sequence_background,
    simulate_sequence,
    simulate_still,
)
from qdtrack.structures import box_iou

SMALL = SynthConfig(train_seqs=1, val_seqs=1, frames=40, crowdhuman_images=3)
SEED = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_a")
    generate(out, SMALL, SEED)
    return out


def _seq_dirs(root: Path) -> list[Path]:
    return sorted(p for split in ("train", "val") for p in (root / split).iterdir())


def _gt(seq_dir: Path) -> MotTable:
    info = read_seqinfo(seq_dir)
    return read_mot_txt(seq_dir / "gt" / "gt.txt", kind="gt", seq_length=info.seq_length)


def test_layout(dataset: Path) -> None:
    names = [p.name for p in _seq_dirs(dataset)]
    assert names == ["SYNTH-01", "SYNTH-02"]
    assert (dataset / "train" / "SYNTH-01" / "img1" / "000001.jpg").is_file()
    assert (dataset / "val" / "SYNTH-02" / "det" / "det.txt").is_file()
    assert (dataset / "crowdhuman" / "annotation_train.odgt").is_file()
    assert "gt/gt.txt" in (dataset / "README.txt").read_text(encoding="utf-8")


def test_same_seed_gives_identical_bytes_and_other_seed_differs(
    dataset: Path, tmp_path: Path
) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    generate(again, SMALL, SEED)
    generate(other, SMALL, SEED + 1)
    files = [
        "train/SYNTH-01/gt/gt.txt",
        "train/SYNTH-01/det/det.txt",
        "train/SYNTH-01/img1/000007.jpg",
        "val/SYNTH-02/img1/000040.jpg",
        "crowdhuman/annotation_train.odgt",
        "manifest.json",
    ]
    for name in files:
        assert (dataset / name).read_bytes() == (again / name).read_bytes(), name
    for name in files[:4]:
        assert (dataset / name).read_bytes() != (other / name).read_bytes(), name


def test_gt_is_valid(dataset: Path) -> None:
    for seq_dir in _seq_dirs(dataset):
        gt = _gt(seq_dir)
        info = read_seqinfo(seq_dir)
        assert len(gt) > 0
        assert gt.frames.min() >= 1 and gt.frames.max() <= info.seq_length
        pairs = set(zip(gt.frames.tolist(), gt.ids.tolist(), strict=True))
        assert len(pairs) == len(gt), "duplicate id within a frame"
        assert (gt.boxes_tlwh[:, 2:] >= 1).all()
        assert ((gt.visibility >= 0) & (gt.visibility <= 1)).all()
        assert (gt.scores == 1).all() and (gt.classes == 1).all()
        _, counts = np.unique(gt.ids, return_counts=True)
        assert (counts >= 2).all()
        line = (seq_dir / "gt" / "gt.txt").read_text(encoding="utf-8").splitlines()[0]
        assert len(line.split(",")) == 9


def test_images_have_seqinfo_size(dataset: Path) -> None:
    for seq_dir in _seq_dirs(dataset):
        info = read_seqinfo(seq_dir)
        assert (info.im_width, info.im_height) == (384, 224)
        assert info.frame_rate == 10
        images = sorted((seq_dir / "img1").glob("*.jpg"))
        assert len(images) == info.seq_length
        for path in (images[0], images[-1]):
            img = cv2.imread(str(path))
            assert img.shape == (info.im_height, info.im_width, 3)


def test_gt_boxes_cover_figures(dataset: Path) -> None:
    sim = build_sequence(SEED, 1, SMALL)
    background = sequence_background(sim, SMALL)
    gt = _gt(dataset / "train" / "SYNTH-01")
    for frame in (1, 20, 40):
        scene = sim.frames[frame - 1]
        img = cv2.imread(str(dataset / "train" / "SYNTH-01" / "img1" / f"{frame:06d}.jpg"))
        empty = render_frame(replace(scene, figures=()), background, margin=SMALL.jitter_px)
        diff = np.abs(img.astype(np.float32) - empty.astype(np.float32)).mean(axis=2)
        rows = gt.for_frame(frame)
        covered = np.zeros(diff.shape, bool)
        inside = []
        for box, vis in zip(rows.boxes_xyxy, rows.visibility, strict=True):
            x0, y0, x1, y1 = np.clip(box, 0, [384, 224, 384, 224]).astype(int)
            covered[y0:y1, x0:x1] = True
            if vis > 0.7 and x1 > x0 and y1 > y0:
                inside.append(diff[y0:y1, x0:x1].mean())
        assert inside, "no clearly visible figure"
        assert min(inside) > 3 * diff[~covered].mean() + 5


def test_lookalike_pairs_cross_and_differ_in_colour(dataset: Path) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    best = 0.0
    for seq in manifest["sequences"]:
        gt = _gt(dataset / seq["split"] / seq["name"])
        assert seq["lookalike_pairs"]
        for a, b in seq["lookalike_pairs"]:
            for frame in np.unique(gt.frames):
                rows = gt.for_frame(int(frame))
                if a in rows.ids and b in rows.ids:
                    iou = box_iou(rows.boxes_xyxy[rows.ids == a], rows.boxes_xyxy[rows.ids == b])
                    best = max(best, float(iou[0, 0]))
    assert best > 0.3
    sim = build_sequence(SEED, 1, SMALL)
    looks: dict[int, FigureLook] = {f.track_id: f.look for s in sim.frames for f in s.figures}
    for a, b in sim.lookalike_pairs:
        la, lb = looks[a], looks[b]
        for attr in ("size", "build", "pattern", "pants"):
            assert getattr(la, attr) == getattr(lb, attr)
        assert np.abs(np.subtract(la.shirt, lb.shirt)).sum() > 60


def test_figures_enter_and_leave(dataset: Path) -> None:
    late_or_early = 0
    for seq_dir in _seq_dirs(dataset):
        gt = _gt(seq_dir)
        last = read_seqinfo(seq_dir).seq_length
        for track_id in np.unique(gt.ids):
            frames = gt.frames[gt.ids == track_id]
            late_or_early += int(frames.min() > 1 or frames.max() < last)
    assert late_or_early > 0


def test_detections_are_realistic(dataset: Path) -> None:
    for seq_dir in _seq_dirs(dataset):
        gt = _gt(seq_dir)
        det = read_mot_txt(seq_dir / "det" / "det.txt", kind="det", seq_length=40)
        assert 0.7 <= detection_recall(gt, det) <= 0.98
        assert ((det.scores >= 0) & (det.scores <= 1)).all()
        assert (det.ids == -1).all()
        line = (seq_dir / "det" / "det.txt").read_text(encoding="utf-8").splitlines()[0]
        assert len(line.split(",")) == 10


def test_crowdhuman_odgt_parses(dataset: Path) -> None:
    crowdhuman = pytest.importorskip("qdtrack.data.crowdhuman")
    images = crowdhuman.read_odgt(dataset / "crowdhuman" / "annotation_train.odgt")
    assert len(images) == 3
    for image in images:
        assert (dataset / "crowdhuman" / "Images" / f"{image.image_id}.jpg").is_file()
        persons = [b for b in image.boxes if b.tag == "person"]
        assert persons
        for box in persons:
            fx0, fy0, fx1, fy1 = box.fbox_xyxy
            vx0, vy0, vx1, vy1 = box.vbox_xyxy
            assert fx1 > fx0 and fy1 > fy0
            assert fx0 <= vx0 < vx1 <= fx1 and fy0 <= vy0 < vy1 <= fy1
            assert box.hbox_xyxy is not None and not box.ignore


def test_stills_have_mask_regions() -> None:
    kinds = [
        o.kind
        for i in range(20)
        for o in simulate_still(np.random.default_rng([0, 3, i]), SynthConfig()).occluders
    ]
    assert "poster" in kinds


def test_simulation_is_pure() -> None:
    config = SynthConfig(frames=10)
    first = simulate_sequence(np.random.default_rng(5), config)
    second = simulate_sequence(np.random.default_rng(5), config)
    assert first == second
    assert len(first.frames) == 10
    counts = [len(scene.figures) for scene in first.frames]
    assert min(counts) >= config.min_figures - 1


def test_visibility_from_occlusion() -> None:
    look = FigureLook(
        skin=(150, 180, 220),
        hair=(20, 20, 20),
        shirt=(0, 0, 200),
        accent=(255, 255, 255),
        pattern="solid",
        pants=(40, 40, 40),
        size=1.0,
        build=0.12,
    )
    back = FigureState(1, look, 100.0, 150.0, 80.0, 0.0)
    front = FigureState(2, look, 100.0, 152.0, 82.0, 0.0)
    aside = FigureState(3, look, 300.0, 150.0, 80.0, 0.0)
    labels = {lab.track_id: lab for lab in label_scene(SceneState((back, front, aside)), 384, 224)}
    assert labels[1].visibility < 0.2
    assert labels[2].visibility == 1.0 and labels[3].visibility == 1.0
    _, y0, _, y1 = labels[3].box_xyxy
    assert y1 == pytest.approx(150.0, abs=1.0) and y1 - y0 == pytest.approx(80.0, abs=1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"frames": 1}, {"train_seqs": 0}, {"val_seqs": -1}, {"min_figures": 5, "max_figures": 2}],
)
def test_config_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SynthConfig(**kwargs)


def test_negative_seed_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        generate(tmp_path, SMALL, -1)


def test_manifest_counts_match_files(dataset: Path) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED
    assert manifest["config"]["frames"] == 40
    for seq in manifest["sequences"]:
        gt = _gt(dataset / seq["split"] / seq["name"])
        assert seq["gt_boxes"] == len(gt)
        assert seq["ids"] == len(np.unique(gt.ids))
        assert seq["frames"] == 40


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qdtrack.cli import main

    out_dir = str(tmp_path / "d")
    argv = ["data", "synth", "--out", out_dir, "--seed", "1", "--frames", "20"]
    argv += ["--train-seqs", "1", "--val-seqs", "1", "--crowdhuman-images", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "2 sequences" in out
    assert len(list((tmp_path / "d" / "val" / "SYNTH-02" / "img1").glob("*.jpg"))) == 20
    assert main([*argv[:6], "--frames", "1"]) == 2
