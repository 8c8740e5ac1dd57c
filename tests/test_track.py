"""``qdtrack track`` end to end on a tiny trained model, and the rendering helpers."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from qdtrack.checkpoint import model_from_checkpoint
from qdtrack.cli import main as cli
from qdtrack.config import load_config
from qdtrack.data.mot import read_mot_txt
from qdtrack.render import draw_tracks, track_colour
from qdtrack.structures import Tracks
from qdtrack.trackers import tracker_block
from qdtrack.train import run_training


@pytest.fixture(scope="module")
def checkpoint(tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_flush_denormal(True)
    cfg = load_config(tiny_workspace / "params.yaml", ["train.epochs=1"])
    return run_training(cfg, tmp_path_factory.mktemp("ckpt"), device="cpu")


def _val_seq(workspace: Path) -> Path:
    return next(p for p in sorted((workspace / "data" / "val").iterdir()) if p.is_dir())


def test_track_writes_results_video_and_detections(
    tiny_workspace: Path, checkpoint: Path, tmp_path: Path, capsys
) -> None:
    seq = _val_seq(tiny_workspace)
    res, video, dets = (
        tmp_path / "res" / f"{seq.name}.txt",
        tmp_path / "out.mp4",
        tmp_path / "d.json",
    )
    overrides = ["--set", "tracker.init_score_thr=0.05", "--set", "tracker.obj_score_thr=0.02"]
    rc = cli(
        ["track", str(seq), "--checkpoint", str(checkpoint), "--out", str(res)]
        + ["--render", str(video), "--save-detections", str(dets), *overrides]
    )
    assert rc == 0
    assert "frames/s" in capsys.readouterr().out
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 16
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (384, 224)
    table = read_mot_txt(res, kind="results", seq_length=16)
    doc = json.loads(dets.read_text())
    assert len(doc["frames"]) == 16
    assert all(len(f["embeds"]) == len(f["scores"]) for f in doc["frames"])
    assert sum(len(f["scores"]) for f in doc["frames"]) > 0
    # re-tracking the saved detections with the same settings reproduces the same tracks
    retracked = tmp_path / "re.txt"
    rc = cli(
        ["associate", "--input", str(dets), "--output", str(tmp_path / "t.json")]
        + ["--config", _tracker_params(checkpoint, tmp_path), *overrides]
        + ["--mot-output", str(retracked)]
    )
    assert rc == 0
    again = read_mot_txt(retracked, kind="results")
    np.testing.assert_array_equal(table.frames, again.frames)
    np.testing.assert_array_equal(table.ids, again.ids)
    np.testing.assert_allclose(table.boxes_tlwh, again.boxes_tlwh, atol=0.02)
    # the results feed `qdtrack evaluate`
    rc = cli(["evaluate", "--gt", str(seq.parent), "--results", str(res.parent)])
    assert rc == 0


def _tracker_params(checkpoint: Path, folder: Path) -> str:
    """A params file holding the checkpoint's tracker block."""
    _, config = model_from_checkpoint(checkpoint)
    path = folder / "tracker.yaml"
    path.write_text(json.dumps({"tracker": tracker_block(config.tracker)}))
    return str(path)


def test_track_reads_image_folders_and_videos(
    tiny_workspace: Path, checkpoint: Path, tmp_path: Path
) -> None:
    seq = _val_seq(tiny_workspace)
    folder_res = tmp_path / "folder.txt"
    assert (
        cli(
            [
                "track",
                str(seq / "img1"),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(folder_res),
                "--stop",
                "5",
            ]
        )
        == 0
    )
    video = tmp_path / "v.mp4"
    assert (
        cli(
            [
                "track",
                str(seq),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path / "seq.txt"),
                "--render",
                str(video),
                "--stop",
                "5",
            ]
        )
        == 0
    )
    assert (
        cli(
            [
                "track",
                str(video),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path / "video.txt"),
            ]
        )
        == 0
    )


def test_track_bad_inputs(tiny_workspace: Path, checkpoint: Path, tmp_path: Path, capsys) -> None:
    seq = _val_seq(tiny_workspace)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert cli(["track", str(seq), "--checkpoint", str(junk), "--out", str(tmp_path / "r")]) == 2
    assert (
        cli(
            [
                "track",
                str(tmp_path / "nope"),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert (
        cli(
            [
                "track",
                str(seq),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path / "r"),
                "--set",
                "tracker.memo_frames=3",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 3


def test_colours_are_stable_and_distinct() -> None:
    assert track_colour(7) == track_colour(7)
    colours = {track_colour(i) for i in range(50)}
    assert len(colours) == 50


def test_draw_tracks_marks_each_box() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    tracks = Tracks(
        np.array([[10, 20, 60, 90], [100, 10, 150, 80]], np.float32),
        np.ones(2, np.float32),
        np.zeros(2, np.int64),
        np.array([3, 4]),
        np.arange(2),
    )
    out = draw_tracks(frame, tracks)
    assert frame.sum() == 0  # the input is untouched
    assert tuple(out[50, 10]) == track_colour(3)
    assert tuple(out[50, 100]) == track_colour(4)
