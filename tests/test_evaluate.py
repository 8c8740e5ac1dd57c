"""``qdtrack evaluate``: TrackEval scoring, input checks, half-val staging, gates, CLI codes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from gate_helpers import run_gate

from qdtrack.cli import main as cli_main
from qdtrack.evaluation.mot import METRIC_NAMES, evaluate_mot, half_val_frames
from qdtrack.gate import check_gate

SMALL_SEQS = ("MOT17-05-FRCNN", "MOT17-09-FRCNN")
REQUIRED_KEYS = {
    "HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr", "MOTA", "MOTP",
    "IDF1", "IDP", "IDR", "IDSW", "FP", "FN", "TP", "Frag", "MT", "PT", "ML",
    "GT_Dets", "Dets", "GT_IDs", "IDs",
}  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def _pedestrian_rows(seq_dir: Path, *, mot15: bool = False) -> np.ndarray:
    """(N, 6) ``frame, id, x, y, w, h`` of the class-1, flag-1 gt rows (MOT15: flag 1 only,
    column 8 holds a world coordinate there)."""
    gt = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",", ndmin=2)
    keep = gt[:, 6] == 1 if mot15 else (gt[:, 7] == 1) & (gt[:, 6] == 1)
    return gt[keep, :6]


def _write_results(path: Path, rows: np.ndarray) -> None:
    """MOTChallenge 10-column result file (conf 1, x/y/z = -1)."""
    with path.open("w") as handle:
        for frame, tid, x, y, w, h in rows:
            handle.write(f"{int(frame)},{int(tid)},{x:.3f},{y:.3f},{w:.3f},{h:.3f},1,-1,-1,-1\n")


def _link_gt(gt_root: Path, tmp: Path, seqs: tuple[str, ...]) -> Path:
    """A gt folder holding only ``seqs`` (symlinks into the real data)."""
    out = tmp / "gt"
    out.mkdir()
    for seq in seqs:
        os.symlink(gt_root / seq, out / seq)
    return out


def _one_seq_case(gt_root: Path, tmp: Path, seq: str, rows: np.ndarray) -> tuple[Path, Path]:
    gt_dir = _link_gt(gt_root, tmp, (seq,))
    res_dir = tmp / "res"
    res_dir.mkdir()
    _write_results(res_dir / f"{seq}.txt", rows)
    return gt_dir, res_dir


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))


def _toy_gt(root: Path, name: str = "TOY-01", frames: int = 20) -> Path:
    """A 20-frame sequence: pedestrians 1 and 2, a static_person (distractor, class 7) and an
    occluder (class 9, ignored) in every frame."""
    seq = root / name
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={frames}\n"
        "imWidth=640\nimHeight=480\nimExt=.jpg\n"
    )
    lines = []
    for f in range(1, frames + 1):
        lines.append(f"{f},1,{10 + 2 * f},100,40,100,1,1,1.0")
        lines.append(f"{f},2,{400 - 2 * f},100,40,100,1,1,1.0")
        lines.append(f"{f},3,300,300,40,100,0,7,1.0")
        lines.append(f"{f},4,500,300,60,60,0,9,1.0")
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    return seq


def _toy_results(frames: int = 20) -> list[str]:
    rows = []
    for f in range(1, frames + 1):
        rows.append(f"{f},1,{10 + 2 * f},100,40,100,1,-1,-1,-1")
        rows.append(f"{f},2,{400 - 2 * f},100,40,100,1,-1,-1,-1")
    return rows


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, Path]:
    gt_dir = tmp_path / "gt"
    _toy_gt(gt_dir)
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    (res_dir / "TOY-01.txt").write_text("\n".join(_toy_results()) + "\n")
    return gt_dir, res_dir


def _cli(*argv: str) -> int:
    return cli_main(["evaluate", *argv])


# ----------------------------------------------------------------------------- toy data


def test_toy_perfect_scores_and_metrics_shape(toy: tuple[Path, Path]) -> None:
    metrics = evaluate_mot(*toy)
    assert set(metrics) >= {"sequences", "combined", "benchmark", "split"}
    assert metrics["benchmark"] == "MOT17" and metrics["split"] == "full"
    combined = metrics["combined"]
    assert set(combined) >= REQUIRED_KEYS and set(combined) == set(METRIC_NAMES)
    assert combined["HOTA"] == pytest.approx(100.0, abs=1e-6)
    assert combined["GT_Dets"] == 40 and combined["GT_IDs"] == 2
    for key in ("IDSW", "FP", "FN", "TP", "Frag", "MT", "PT", "ML", "GT_Dets", "Dets"):
        assert type(combined[key]) is int
    assert metrics["sequences"]["TOY-01"] == combined


def test_distractor_box_removed_but_occluder_box_is_fp(toy: tuple[Path, Path]) -> None:
    gt_dir, res_dir = toy
    rows = _toy_results()
    rows.append("5,10,300,300,40,100,1,-1,-1,-1")  # on the static_person: removed (MOT17)
    rows.append("6,11,500,300,60,60,1,-1,-1,-1")  # on the occluder: stays, counts as FP
    (res_dir / "TOY-01.txt").write_text("\n".join(rows) + "\n")
    assert evaluate_mot(gt_dir, res_dir)["combined"]["FP"] == 1
    # MOT15 has no preprocessing: both boxes are FPs (and flag-0 gt rows are not scored).
    mot15 = evaluate_mot(gt_dir, res_dir, benchmark="MOT15")["combined"]
    assert mot15["FP"] == 2 and mot15["GT_Dets"] == 40


def test_empty_result_file_scores_zero(toy: tuple[Path, Path]) -> None:
    gt_dir, res_dir = toy
    (res_dir / "TOY-01.txt").write_text("")
    combined = evaluate_mot(gt_dir, res_dir)["combined"]
    assert combined["HOTA"] == 0 and combined["MOTA"] == 0 and combined["IDF1"] == 0
    assert combined["FN"] == 40 and combined["Dets"] == 0


def test_blank_lines_and_space_separated_results_accepted(toy: tuple[Path, Path]) -> None:
    gt_dir, res_dir = toy
    rows = [r.replace(",", " ") for r in _toy_results()]
    (res_dir / "TOY-01.txt").write_text("\n".join(rows[:10]) + "\n\n" + "\n".join(rows[10:]))
    assert evaluate_mot(gt_dir, res_dir)["combined"]["MOTA"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("21,1,10,10,5,5,1,-1,-1,-1", "frame 21 outside 1..20"),
        ("0,1,10,10,5,5,1,-1,-1,-1", "frame 0 outside 1..20"),
        ("3,2,10,10,5,5,1,-1,-1,-1", "id 2 appears twice in frame 3"),
        ("3,9,10,10,5,5,1,2,-1,-1", "class 2"),
        ("3,9,10,ten,5,5,1,-1,-1,-1", "not a number"),
        ("3,9,10,10", "at least 7 columns"),
    ],
)
def test_bad_result_rows_name_file_and_line(
    toy: tuple[Path, Path], bad_row: str, message: str
) -> None:
    gt_dir, res_dir = toy
    rows = _toy_results()
    rows.insert(7, bad_row)
    (res_dir / "TOY-01.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=message) as info:
        evaluate_mot(gt_dir, res_dir)
    assert "TOY-01.txt:8:" in str(info.value)


def test_missing_result_file_is_an_error_and_unknown_one_a_warning(
    toy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gt_dir, res_dir = toy
    _toy_gt(gt_dir, "TOY-02")
    with pytest.raises(FileNotFoundError, match=r"TOY-02\.txt"):
        evaluate_mot(gt_dir, res_dir)
    (res_dir / "TOY-02.txt").write_text("\n".join(_toy_results()) + "\n")
    (res_dir / "OTHER-07.txt").write_text("")
    metrics = evaluate_mot(gt_dir, res_dir)
    assert sorted(metrics["sequences"]) == ["TOY-01", "TOY-02"]
    assert "OTHER-07" in capsys.readouterr().err


def test_trackeval_errors_surface_as_value_error(toy: tuple[Path, Path]) -> None:
    gt_dir, res_dir = toy
    gt_file = gt_dir / "TOY-01" / "gt" / "gt.txt"
    gt_file.write_text(gt_file.read_text() + "2,1,50,50,10,10,1,1,1.0\n")  # id 1 twice in frame 2
    with pytest.raises(ValueError, match="Ground-truth has the same ID"):
        evaluate_mot(gt_dir, res_dir)


def test_inputs_untouched_and_staging_removed(
    toy: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gt_dir, res_dir = toy
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = sorted(p for p in tmp_path.rglob("*"))
    evaluate_mot(gt_dir, res_dir, split="half-val")
    evaluate_mot(gt_dir, res_dir)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    (res_dir / "TOY-01.txt").write_text("99,1,1,1,1,1,1,-1,-1,-1\n")
    with pytest.raises(ValueError):
        evaluate_mot(gt_dir, res_dir)
    assert list(scratch.iterdir()) == []


def test_half_val_rule() -> None:
    assert half_val_frames(600) == range(302, 601) and len(half_val_frames(600)) == 299
    assert half_val_frames(837) == range(420, 838)
    assert half_val_frames(525) == range(264, 526)


def test_bad_benchmark_or_split(toy: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="benchmark"):
        evaluate_mot(*toy, benchmark="KITTI")
    with pytest.raises(ValueError, match="split"):
        evaluate_mot(*toy, split="half-train")


# ----------------------------------------------------------------------------- gate


GOOD = {"HOTA": 60.0, "MOTA": 70.0, "IDF1": 72.0, "IDSW": 90, "FP": 1000, "FN": 5000}


def test_gate_pass_and_fail_messages() -> None:
    assert check_gate(GOOD, gate="HOTA>=55, MOTA > 65,IDSW<=100,FP<1001,IDF1==72") == []
    failures = check_gate(GOOD, gate="HOTA>=61,MOTA>=65,IDSW<=80,FN<5000")
    assert len(failures) == 3
    assert "HOTA" in failures[0] and "60" in failures[0] and "61" in failures[0]
    assert "IDSW" in failures[1] and "90" in failures[1] and "80" in failures[1]
    assert "FN" in failures[2] and "5000" in failures[2]


def test_gate_baseline_drop() -> None:
    baseline = {"HOTA": 60.4, "IDF1": 74.0, "IDSW": 80, "FP": 900, "MOTA": 70.0}
    # HOTA 60.0 >= 60.4 - 0.5 passes; IDF1 72 < 74 - 1 fails; IDSW 90 > 80 + 5 fails (lower is
    # better); FP 1000 <= 900 + 100 passes; MOTA equal passes with zero drop.
    failures = check_gate(GOOD, baseline=baseline, max_drop="HOTA=0.5,IDF1=1,IDSW=5,FP=100,MOTA=0")
    assert len(failures) == 2
    assert failures[0].startswith("IDF1") and "73" in failures[0]
    assert failures[1].startswith("IDSW") and "85" in failures[1]
    both = check_gate(GOOD, gate="HOTA>=65", baseline=baseline, max_drop="HOTA=0.1")
    assert [f.split()[0] for f in both] == ["HOTA", "HOTA"]


@pytest.mark.parametrize(
    "gate",
    ["HOTA=>55", "HOTA>=", "HOTA 55", "BOGUS>=1", "HOTA>=55,,MOTA>=1", "HOTA>=abc", "hota>=5"],
)
def test_gate_bad_syntax(gate: str) -> None:
    with pytest.raises(ValueError):
        check_gate(GOOD, gate=gate)


def test_max_drop_bad_input() -> None:
    with pytest.raises(ValueError):
        check_gate(GOOD, baseline=GOOD, max_drop="HOTA>0.5")
    with pytest.raises(ValueError):
        check_gate(GOOD, baseline=GOOD, max_drop="HOTA=-1")
    with pytest.raises(ValueError, match="together"):
        check_gate(GOOD, max_drop="HOTA=1")
    with pytest.raises(ValueError, match="together"):
        check_gate(GOOD, baseline=GOOD)


# ----------------------------------------------------------------------------- CLI


def test_cli_exit_codes(
    toy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt_dir, res_dir = toy
    out = tmp_path / "out" / "metrics.json"
    assert _cli("--gt", str(gt_dir), "--results", str(res_dir), "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "COMBINED" in captured.out and "TOY-01" in captured.out
    doc = json.loads(out.read_text())
    assert set(doc["combined"]) >= REQUIRED_KEYS and doc["split"] == "full"
    assert run_gate(tmp_path, out, "criteria=HOTA>=55,MOTA>=65") == 0
    assert "PASS" in capsys.readouterr().out

    # Gate failure: exit 1, one stderr line per failed criterion.
    (res_dir / "TOY-01.txt").write_text("\n".join(_toy_results()[:20]) + "\n")
    worse = tmp_path / "worse.json"
    assert _cli("--gt", str(gt_dir), "--results", str(res_dir), "--out", str(worse)) == 0
    assert run_gate(tmp_path, worse, "criteria=MOTA>=65,IDF1>=90,IDSW<=0") == 1
    err = capsys.readouterr().err
    assert "MOTA = 50" in err and "IDF1" in err and "IDSW" not in err

    # Comparison against the first run's metrics as the champion.
    assert run_gate(tmp_path, worse, "max_drop=HOTA=0.5", champion=out) == 1
    assert "HOTA" in capsys.readouterr().err

    # Bad input: exit 2 with one clean line; a malformed gate is refused before evaluating.
    (res_dir / "TOY-01.txt").unlink()
    assert _cli("--gt", str(gt_dir), "--results", str(res_dir)) == 2
    assert "TOY-01.txt" in capsys.readouterr().err
    assert _cli("--gt", str(gt_dir), "--results", str(res_dir),
                "--set", "gate.criteria=HOTA>>1") == 2  # fmt: skip
    assert "gate" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real data


@pytest.mark.integration
@pytest.mark.parametrize(
    ("split", "gt_dets", "dropped"),
    [
        ("full", {"MOT17-05-FRCNN": 6917, "MOT17-09-FRCNN": 5325}, {}),
        ("half-val", {"MOT17-05-FRCNN": 3357, "MOT17-09-FRCNN": 2879},
         {"MOT17-05-FRCNN": 3560, "MOT17-09-FRCNN": 2446}),
    ],
)  # fmt: skip
def test_mot17_gt_against_itself_scores_100(
    mot17_gt_dir: Path, tmp_path: Path, split: str, gt_dets: dict, dropped: dict
) -> None:
    gt_dir = _link_gt(mot17_gt_dir, tmp_path, SMALL_SEQS)
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    for seq in SMALL_SEQS:
        _write_results(res_dir / f"{seq}.txt", _pedestrian_rows(mot17_gt_dir / seq))
    metrics = evaluate_mot(gt_dir, res_dir, split=split)
    for name in ("HOTA", "MOTA", "IDF1"):
        assert metrics["combined"][name] == pytest.approx(100.0, abs=1e-6)
    assert {s: m["GT_Dets"] for s, m in metrics["sequences"].items()} == gt_dets
    assert metrics["combined"]["GT_Dets"] == sum(gt_dets.values())
    assert {s: n for s, n in metrics["dropped_rows"].items() if n} == dropped


@pytest.mark.integration
def test_mot17_02_half_val_counts_with_empty_tracker(mot17_gt_dir: Path, tmp_path: Path) -> None:
    gt_dir = _link_gt(mot17_gt_dir, tmp_path, ("MOT17-02-FRCNN",))
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    # Only half-train boxes: all dropped, so half-val sees an empty tracker.
    rows = _pedestrian_rows(mot17_gt_dir / "MOT17-02-FRCNN")
    _write_results(res_dir / "MOT17-02-FRCNN.txt", rows[rows[:, 0] <= 301])
    metrics = evaluate_mot(gt_dir, res_dir, split="half-val")
    combined = metrics["combined"]
    assert combined["GT_Dets"] == 9880 and combined["GT_IDs"] == 53
    assert combined["FN"] == 9880 and combined["Dets"] == 0 and combined["MOTA"] == 0
    assert metrics["dropped_rows"]["MOT17-02-FRCNN"] == 8701


@pytest.mark.integration
def test_dropping_boxes_raises_fn_by_dropped_count(mot17_gt_dir: Path, tmp_path: Path) -> None:
    seq = "MOT17-09-FRCNN"
    rows = _pedestrian_rows(mot17_gt_dir / seq)
    keep = np.random.default_rng(0).random(len(rows)) >= 0.2
    n_dropped = int((~keep).sum())
    metrics = evaluate_mot(*_one_seq_case(mot17_gt_dir, tmp_path, seq, rows[keep]))
    combined = metrics["combined"]
    assert combined["FN"] == n_dropped and combined["FP"] == 0 and combined["IDSW"] == 0
    assert combined["MOTA"] == pytest.approx(100.0 * (1 - n_dropped / len(rows)), abs=1e-9)
    assert combined["DetA"] < 100.0 and combined["MOTA"] < 100.0


@pytest.mark.integration
def test_identity_swap_costs_idsw_idf1_assa(mot17_gt_dir: Path, tmp_path: Path) -> None:
    seq = "MOT17-09-FRCNN"
    rows = _pedestrian_rows(mot17_gt_dir / seq)
    swap_frame = 200

    def boxes(frame: int) -> dict[int, np.ndarray]:
        return {int(r[1]): r[2:6] for r in rows[rows[:, 0] == frame]}

    before, at = boxes(swap_frame - 1), boxes(swap_frame)
    pairs = [
        (a, b) for a in at for b in at
        if a < b and a in before and b in before
        and _iou_xywh(at[a], at[b]) == 0 and _iou_xywh(before[a], before[b]) == 0
    ]  # fmt: skip
    assert pairs, "no two separate pedestrians around the swap frame"
    a, b = pairs[0]
    swapped = rows.copy()
    late = swapped[:, 0] >= swap_frame
    swapped[late & (rows[:, 1] == a), 1] = b
    swapped[late & (rows[:, 1] == b), 1] = a

    combined = evaluate_mot(*_one_seq_case(mot17_gt_dir, tmp_path, seq, swapped))["combined"]
    assert combined["IDSW"] == 2
    assert combined["FP"] == 0 and combined["FN"] == 0 and combined["DetA"] == pytest.approx(100)
    assert combined["MOTA"] == pytest.approx(100.0 * (1 - 2 / len(rows)), abs=1e-9)
    assert combined["IDF1"] < 100.0 and combined["AssA"] < 100.0 and combined["HOTA"] < 100.0


@pytest.mark.integration
def test_jitter_lowers_localisation(mot17_gt_dir: Path, tmp_path: Path) -> None:
    seq = "MOT17-09-FRCNN"
    rows = _pedestrian_rows(mot17_gt_dir / seq)
    jittered = rows.copy()
    noise = np.random.default_rng(1).normal(0.0, 0.03, size=(len(rows), 2))
    jittered[:, 2:4] += noise * rows[:, 4:6]
    combined = evaluate_mot(*_one_seq_case(mot17_gt_dir, tmp_path, seq, jittered))["combined"]
    assert combined["MOTP"] < 100.0 and combined["LocA"] < 100.0 and combined["HOTA"] < 100.0
    assert combined["MOTA"] > 90.0  # boxes still match at IoU >= 0.5


@pytest.mark.integration
def test_extra_box_is_a_false_positive(mot17_gt_dir: Path, tmp_path: Path) -> None:
    seq = "MOT17-09-FRCNN"
    rows = _pedestrian_rows(mot17_gt_dir / seq)
    all_gt = np.loadtxt(mot17_gt_dir / seq / "gt" / "gt.txt", delimiter=",")
    extra = np.array([1.0, 9999.0, 0.0, 0.0, 30.0, 30.0])  # top-left corner, frame 1
    assert all(_iou_xywh(extra[2:6], g[2:6]) == 0 for g in all_gt[all_gt[:, 0] == 1])
    case = _one_seq_case(mot17_gt_dir, tmp_path, seq, np.vstack([rows, extra]))
    combined = evaluate_mot(*case)["combined"]
    assert combined["FP"] == 1 and combined["FN"] == 0 and combined["Dets"] == len(rows) + 1
    assert combined["MOTA"] == pytest.approx(100.0 * (1 - 1 / len(rows)), abs=1e-9)


@pytest.mark.integration
def test_pets09_gt_against_itself_mot15(pets_dir: Path, tmp_path: Path) -> None:
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    os.symlink(pets_dir, gt_dir / "PETS09-S2L1")
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    _write_results(res_dir / "PETS09-S2L1.txt", _pedestrian_rows(pets_dir, mot15=True))
    combined = evaluate_mot(gt_dir, res_dir, benchmark="MOT15")["combined"]
    assert combined["GT_Dets"] == 4476
    for name in ("HOTA", "MOTA", "IDF1"):
        assert combined[name] == pytest.approx(100.0, abs=1e-6)
