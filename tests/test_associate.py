"""``qdtrack associate`` and ``qdtrack data det2frames`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qdtrack.cli import main as cli
from qdtrack.data.mot import read_mot_txt


def _frame(fid: int, boxes, scores, idents, dim: int = 4) -> dict:
    embeds = [[10.0 if d == k else 0.0 for d in range(dim)] for k in idents]
    return {
        "frame_id": fid,
        "bboxes": boxes,
        "scores": scores,
        "labels": [0] * len(boxes),
        "embeds": embeds,
        "extra": "ignored",
    }


def _write(tmp_path: Path, frames: list[dict]) -> Path:
    path = tmp_path / "frames.json"
    path.write_text(json.dumps({"frames": frames}))
    return path


def _tracks(path: Path) -> list[dict[int, int]]:
    doc = json.loads(path.read_text())
    return [{t["input_index"]: t["track_id"] for t in f["tracks"]} for f in doc["frames"]]


A, B = [0, 0, 10, 20], [100, 0, 110, 20]


def test_associate_round_trip_and_timing_line(tmp_path: Path, capsys) -> None:
    frames = [
        _frame(0, [A, B], [0.95, 0.97], [0, 1]),
        _frame(1, [], [], []),
        _frame(2, [B, A, A], [0.96, 0.95, 0.3], [1, 0, 2]),
    ]
    out = tmp_path / "tracks.json"
    mot = tmp_path / "res.txt"
    rc = cli(
        [
            "associate",
            "--input",
            str(_write(tmp_path, frames)),
            "--output",
            str(out),
            "--mot-output",
            str(mot),
        ]
    )
    assert rc == 0
    assert _tracks(out) == [{0: 1, 1: 0}, {}, {0: 0, 1: 1}]
    doc = json.loads(out.read_text())
    assert doc["frames"][2]["tracks"][0] == {
        "input_index": 0,
        "track_id": 0,
        "bbox": [100.0, 0.0, 110.0, 20.0],
        "score": 0.96,
        "label": 0,
    }
    line = capsys.readouterr().out
    assert "median" in line and "p99" in line and "3 frames, 2 tracks" in line
    table = read_mot_txt(mot, kind="results")
    assert table.frames.tolist() == [1, 1, 3, 3]
    assert sorted(table.ids.tolist()) == [1, 1, 2, 2]  # MOT ids are 1-based


def test_config_and_tracker_choice(tmp_path: Path) -> None:
    frames = [_frame(0, [A], [0.95], [0])] + [_frame(f, [B], [0.3], [3]) for f in (1, 2)]
    frames.append(_frame(3, [A], [0.95], [0]))
    inp, out = _write(tmp_path, frames), tmp_path / "t.json"
    run = ["associate", "--input", str(inp), "--output", str(out)]
    assert cli(run) == 0
    assert _tracks(out)[3] == {0: 0}
    assert cli([*run, "--set", "tracker.memo_tracklet_frames=2"]) == 0
    assert _tracks(out)[3] == {0: 1}  # forgotten after 2 frames: a new id
    assert cli([*run, "--set", "tracker.type=iou"]) == 0
    assert _tracks(out)[0] == {0: 0}
    # a params file's tracker block names its tracker with "type"
    params = tmp_path / "params.yaml"
    params.write_text("tracker:\n  type: qdtrack\n  memo_tracklet_frames: 2\n")
    assert cli([*run, "--config", str(params)]) == 0
    assert _tracks(out)[3] == {0: 1}
    params.write_text("tracker:\n  type: tao\n  memo_tracklet_frames: 2\n")
    assert cli([*run, "--config", str(params)]) == 0
    # switching the type starts from that tracker's defaults (the tao block's settings
    # would not apply); a TAO-only setting given to QuasiDenseTracker is refused
    params.write_text("tracker:\n  type: tao\n  distractor_nms_thr: 0.2\n")
    assert cli([*run, "--config", str(params), "--set", "tracker.type=qdtrack"]) == 0
    switch = ["--set", "tracker.type=qdtrack", "--set", "tracker.distractor_nms_thr=0.2"]
    assert cli([*run, "--config", str(params), *switch]) == 2


def test_frame_zero_starts_a_fresh_tracker(tmp_path: Path) -> None:
    frames = [_frame(0, [A], [0.95], [0]), _frame(1, [A], [0.95], [0])]
    frames += [_frame(0, [B], [0.95], [1])]
    out = tmp_path / "t.json"
    assert cli(["associate", "--input", str(_write(tmp_path, frames)), "--output", str(out)]) == 0
    assert _tracks(out) == [{0: 0}, {0: 0}, {0: 0}]


@pytest.mark.parametrize(
    ("frames", "overrides", "message"),
    [
        (
            [_frame(0, [A], [0.9], [0]), _frame(0, [A], [0.9], [0]) | {"frame_id": -1}],
            [],
            "non-negative",
        ),
        ([_frame(3, [A], [0.9], [0]), _frame(2, [A], [0.9], [0])], [], "does not follow"),
        ([{"frame_id": 0, "bboxes": [A], "scores": [0.9]}], [], "embeds"),
        ([_frame(0, [A], [0.9, 0.8], [0])], [], "scores has 2 entries"),
        ([_frame(0, [[10, 0, 0, 20]], [0.9], [0])], [], "x2 < x1"),
        ([_frame(0, [A], [0.9], [0])], ["tracker.memo_frames=3"], "tracker.memo_frames"),
        ([_frame(0, [A], [0.9], [0])], ["tracker.memo_momentum=2"], "memo_momentum"),
        ([_frame(0, [A], [0.9], [0])], ["tracker.type=kalman"], "unknown tracker"),
        ([_frame(0, [A], [0.9], [0])], ["tracker"], "KEY=VALUE"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, capsys, frames, overrides, message) -> None:
    out = tmp_path / "t.json"
    sets = [arg for item in overrides for arg in ("--set", item)]
    rc = cli(["associate", "--input", str(_write(tmp_path, frames)), "--output", str(out), *sets])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_missing_or_broken_input_file(tmp_path: Path, capsys) -> None:
    assert cli(["associate", "--input", str(tmp_path / "nope.json"), "--output", "x"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": [')
    assert cli(["associate", "--input", str(bad), "--output", str(tmp_path / "o")]) == 2
    assert "bad.json:1" in capsys.readouterr().err


@pytest.mark.integration
def test_public_detections_end_to_end(pets_dir: Path, tmp_path: Path, capsys) -> None:
    """det.txt -> frames.json -> IoU tracking -> TrackEval, on the real PETS09 sequence."""
    frames = tmp_path / "frames.json"
    assert cli(["data", "det2frames", "--seq", str(pets_dir), "--out", str(frames)]) == 0
    doc = json.loads(frames.read_text())
    assert len(doc["frames"]) == 795
    assert sum(len(f["scores"]) for f in doc["frames"]) == 5578
    res_dir = tmp_path / "res"
    tracker = ["type=iou", "obj_score_thr=10", "init_score_thr=20", "memo_tracklet_frames=5"]
    rc = cli(
        [
            "associate",
            "--input",
            str(frames),
            "--output",
            str(tmp_path / "t.json"),
            *(arg for item in tracker for arg in ("--set", f"tracker.{item}")),
            "--mot-output",
            str(res_dir / "PETS09-S2L1.txt"),
        ]
    )
    assert rc == 0
    gt = tmp_path / "gt" / "PETS09-S2L1"
    gt.mkdir(parents=True)
    (gt / "seqinfo.ini").write_text((pets_dir / "seqinfo.ini").read_text())
    (gt / "gt").mkdir()
    (gt / "gt" / "gt.txt").write_text((pets_dir / "gt" / "gt.txt").read_text())
    metrics = tmp_path / "m.json"
    rc = cli(
        [
            "evaluate",
            "--gt",
            str(gt.parent),
            "--results",
            str(res_dir),
            "--set",
            "evaluate.benchmark=MOT15",
            "--out",
            str(metrics),
        ]
    )
    assert rc == 0
    combined = json.loads(metrics.read_text())["combined"]
    # ACF detections have recall 0.91 / precision 0.73: a sane tracker lands well inside
    assert 50 < combined["MOTA"] < 95
    assert 20 < combined["HOTA"] < 90
    assert combined["GT_Dets"] == 4476
    assert np.isfinite(combined["IDF1"])
