"""MOTChallenge txt tables, half splits and sequence folders (real MOT17 / PETS09 data)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from qdtrack.data.mot import (
    MotTable,
    SeqInfo,
    half_frames,
    list_sequences,
    load_sequence,
    pedestrian_gt,
    read_mot_txt,
    read_seqinfo,
    write_half_split,
    write_mot_results,
    write_mot_txt,
    write_seqinfo,
)
from qdtrack.structures import Tracks

# docs/reference-behaviour.md (data formats): pedestrian boxes / ids (class 1, flag 1) per video.
PEDESTRIANS = {
    "02": (18_581, 62),
    "04": (47_557, 83),
    "05": (6_917, 133),
    "09": (5_325, 26),
    "10": (12_839, 57),
    "11": (9_436, 75),
    "13": (11_642, 110),
}
# (N, half-val first frame, half-val boxes, half-val ids), see docs/reference-behaviour.md.
HALF_VAL = {
    "02": (600, 302, 9_880, 53),
    "04": (1050, 527, 24_178, 69),
    "05": (837, 420, 3_357, 71),
    "09": (525, 264, 2_879, 22),
    "10": (654, 329, 5_923, 36),
    "11": (900, 452, 4_517, 44),
    "13": (750, 377, 3_156, 44),
}
OUT_OF_RANGE = r"frame number must be in 1\.\.10 \(seqLength\)"
COLUMNS = ("frames", "ids", "boxes_tlwh", "scores", "classes", "visibility")


def _table(frames: list[int], ids: list[int], *, scores: list[float] | None = None) -> MotTable:
    n = len(frames)
    rng = np.random.default_rng(n)
    boxes = np.round(rng.uniform(0, 500, (n, 4)), 2).astype(np.float32)
    return MotTable(
        frames=np.array(frames),
        ids=np.array(ids),
        boxes_tlwh=boxes,
        scores=np.ones(n) if scores is None else np.array(scores),
        classes=np.ones(n),
        visibility=np.linspace(0, 1, n),
    )


def _assert_tables_equal(a: MotTable, b: MotTable, columns: tuple[str, ...] = COLUMNS) -> None:
    assert len(a) == len(b)
    for name in columns:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _gt_path(mot17_gt_dir: Path, video: str) -> Path:
    return mot17_gt_dir / f"MOT17-{video}-FRCNN" / "gt" / "gt.txt"


# --- MotTable ---------------------------------------------------------------------


def test_table_validates_column_lengths() -> None:
    with pytest.raises(ValueError, match="ids"):
        MotTable(
            frames=np.ones(3),
            ids=np.ones(2),
            boxes_tlwh=np.zeros((3, 4)),
            scores=np.ones(3),
            classes=np.ones(3),
            visibility=np.ones(3),
        )
    with pytest.raises(ValueError, match="boxes_tlwh"):
        MotTable(np.ones(2), np.ones(2), np.zeros((2, 5)), np.ones(2), np.ones(2), np.ones(2))


def test_table_select_frame_and_concat() -> None:
    table = _table([3, 1, 3, 2], [1, 2, 2, 1])
    assert table.frames.dtype == np.int64 and table.boxes_tlwh.dtype == np.float32
    np.testing.assert_array_equal(table.frame_numbers(), [1, 2, 3])
    frame3 = table.for_frame(3)
    np.testing.assert_array_equal(frame3.ids, [1, 2])
    assert len(table.for_frame(7)) == 0
    xyxy = table.boxes_xyxy
    np.testing.assert_allclose(xyxy[:, 2:], table.boxes_tlwh[:, :2] + table.boxes_tlwh[:, 2:])
    both = MotTable.concat([table, MotTable.empty(), frame3])
    assert len(both) == 6
    assert len(MotTable.concat([])) == 0


def test_from_tracks_skips_unconfirmed_and_shifts_ids() -> None:
    tracks = Tracks(
        boxes_xyxy=np.array([[10, 20, 30, 60], [0, 0, 5, 5], [1, 1, 2, 2]], np.float32),
        scores=np.array([0.9, 0.8, 0.7]),
        labels=np.zeros(3),
        track_ids=np.array([0, -1, 4]),
        input_indices=np.arange(3),
    )
    table = MotTable.from_tracks(5, tracks)
    np.testing.assert_array_equal(table.ids, [1, 5])
    np.testing.assert_array_equal(table.frames, [5, 5])
    np.testing.assert_allclose(table.boxes_tlwh[0], [10, 20, 20, 40])
    np.testing.assert_allclose(table.scores, [0.9, 0.7], rtol=1e-6)


# --- real files -------------------------------------------------------------------


@pytest.mark.parametrize("video", sorted(PEDESTRIANS))
def test_mot17_pedestrian_counts(mot17_gt_dir: Path, video: str) -> None:
    info = read_seqinfo(mot17_gt_dir / f"MOT17-{video}-FRCNN")
    gt = read_mot_txt(_gt_path(mot17_gt_dir, video), kind="gt", seq_length=info.seq_length)
    ped = pedestrian_gt(gt, "MOT17")
    boxes, ids = PEDESTRIANS[video]
    assert (len(ped), len(np.unique(ped.ids))) == (boxes, ids)
    # Every class-1 row has flag 1 and every other class flag 0 (the data README).
    assert ((gt.classes == 1) == (gt.scores == 1)).all()


def test_mot17_02_rows_by_class(mot17_gt_dir: Path) -> None:
    gt = read_mot_txt(_gt_path(mot17_gt_dir, "02"), kind="gt")
    classes, counts = np.unique(gt.classes, return_counts=True)
    assert dict(zip(classes.tolist(), counts.tolist(), strict=True)) == {
        1: 18_581,
        2: 1_549,
        4: 1_559,
        7: 5_271,
        8: 1_200,
        9: 1_843,
    }
    assert len(gt) == 30_003
    assert ((gt.visibility >= 0) & (gt.visibility <= 1)).all()


def test_mot17_04_parses_fast(mot17_gt_dir: Path) -> None:
    t0 = time.perf_counter()
    gt = read_mot_txt(_gt_path(mot17_gt_dir, "04"), kind="gt", seq_length=1050)
    elapsed = time.perf_counter() - t0
    assert len(gt) == 108_005
    assert elapsed < 1.0, f"parsing took {elapsed:.2f} s"


def test_mot17_half_val_counts(mot17_gt_dir: Path) -> None:
    total = 0
    for video, (n, first_val, boxes, ids) in HALF_VAL.items():
        frames = half_frames(n, "half-val")
        assert (frames.start, frames[-1]) == (first_val, n)
        assert half_frames(n, "half-train") == range(1, first_val)
        gt = pedestrian_gt(read_mot_txt(_gt_path(mot17_gt_dir, video), kind="gt"))
        val = gt.select((gt.frames >= frames.start) & (gt.frames < frames.stop))
        assert (len(val), len(np.unique(val.ids))) == (boxes, ids), video
        total += len(val)
    assert total == 53_890


def test_write_half_split_keeps_all_rows(mot17_gt_dir: Path, tmp_path: Path) -> None:
    seq = mot17_gt_dir / "MOT17-02-FRCNN"
    train_path, val_path = write_half_split(seq, out_dir=tmp_path / "MOT17-02-FRCNN")
    assert train_path == tmp_path / "MOT17-02-FRCNN" / "gt" / "gt_half-train.txt"
    assert read_seqinfo(tmp_path / "MOT17-02-FRCNN").seq_length == 600
    train = read_mot_txt(train_path, kind="gt", seq_length=600)
    val = read_mot_txt(val_path, kind="gt", seq_length=600)
    assert len(train) + len(val) == 30_003
    assert train.frames.min() == 1 and train.frames.max() == 301
    assert val.frames.min() == 302 and val.frames.max() == 600
    # Distractor classes stay in the file; the pedestrian count matches the half-val table above.
    assert {2, 7, 8}.issubset(set(val.classes.tolist()))
    assert len(pedestrian_gt(val)) == 9_880
    # Rows are copied verbatim (original text, original frame numbers).
    original = (seq / "gt" / "gt.txt").read_text().splitlines()
    assert val_path.read_text().splitlines() == [
        line for line in original if int(line.split(",")[0]) >= 302
    ]


def test_write_half_split_in_place(tmp_path: Path) -> None:
    seq = tmp_path / "SEQ"
    write_seqinfo(seq, SeqInfo(name="SEQ", seq_length=5))
    write_mot_txt(seq / "gt" / "gt.txt", _table([1, 2, 3, 4, 5], [1, 1, 1, 1, 1]), kind="gt")
    train_path, val_path = write_half_split(seq)
    assert train_path.parent == seq / "gt"
    np.testing.assert_array_equal(read_mot_txt(train_path, kind="gt").frames, [1, 2, 3])
    np.testing.assert_array_equal(read_mot_txt(val_path, kind="gt").frames, [4, 5])


def test_pets09_mot15_gt_and_det(pets_dir: Path) -> None:
    gt = read_mot_txt(pets_dir / "gt" / "gt.txt", kind="gt", seq_length=795)
    assert len(gt) == 4_650
    assert (gt.classes == 1).all() and (gt.visibility == -1).all()
    kept = pedestrian_gt(gt, "MOT15")
    assert len(kept) == 4_476
    assert len(np.unique(gt.ids)) == 19
    det = read_mot_txt(pets_dir / "det" / "det.txt", kind="det", seq_length=795)
    assert len(det) == 5_578
    assert det.frames.min() == 1 and det.frames.max() == 795
    assert det.scores.min() == pytest.approx(-0.48, abs=0.01)
    assert det.scores.max() == pytest.approx(138.9, abs=0.1)


def test_load_and_list_sequences(mot17_gt_dir: Path, pets_dir: Path) -> None:
    seqs = list_sequences(mot17_gt_dir)
    assert [p.name for p in seqs] == [f"MOT17-{v}-FRCNN" for v in sorted(PEDESTRIANS)]
    seq = load_sequence(seqs[2])
    assert seq.info.seq_length == 837 and seq.info.frame_rate == 14
    assert seq.gt is not None and len(seq.gt) == 8_013
    assert seq.det is None
    pets = load_sequence(pets_dir)
    assert pets.det is not None and len(pets.det) == 5_578
    # PETS09 ships a video, not img1/: the first missing image is named.
    with pytest.raises(ValueError, match=r"000001\.jpg"):
        pets.image_paths()


# --- round trips ------------------------------------------------------------------


def test_gt_round_trip(tmp_path: Path) -> None:
    table = _table([2, 1, 1, 3], [5, 7, 2, 1], scores=[1, 0, 1, 1])
    table = MotTable(
        table.frames,
        table.ids,
        np.array([[1359.1, 413.27, 120.26, 362.77], [0, 0, 1, 1], [5, 6, 7, 8], [9, 9, 9, 9]]),
        table.scores,
        np.array([1, 7, 2, 1]),
        np.array([0.86047, 1, 0, 0.5]),
    )
    path = tmp_path / "gt.txt"
    write_mot_txt(path, table, kind="gt")
    lines = path.read_text().splitlines()
    assert lines[0] == "1,2,5,6,7,8,1,2,0"
    assert lines[-1] == "3,1,9,9,9,9,1,1,0.5"
    assert len(lines[0].split(",")) == 9
    back = read_mot_txt(path, kind="gt")
    order = np.lexsort((table.ids, table.frames))
    _assert_tables_equal(back, table.select(order))


def test_det_round_trip(tmp_path: Path) -> None:
    table = _table([1, 1, 2], [-1, -1, -1], scores=[2.3092, -0.47763, 138.92])
    path = tmp_path / "det.txt"
    write_mot_txt(path, table, kind="det")
    first = path.read_text().splitlines()[0].split(",")
    assert len(first) == 10 and first[1] == "-1" and first[-3:] == ["-1", "-1", "-1"]
    back = read_mot_txt(path, kind="det")
    _assert_tables_equal(back, table, ("frames", "ids", "boxes_tlwh", "scores"))
    assert (back.classes == 1).all() and (back.visibility == -1).all()


def test_results_round_trip_and_format(tmp_path: Path) -> None:
    table = MotTable(
        frames=np.array([2, 1, 1]),
        ids=np.array([1, 3, 2]),
        boxes_tlwh=np.array([[1.234, 2.5, 3, 4], [10, 20, 30, 40], [0.007, 1, 2, 3]]),
        scores=np.array([0.98765, 0.5, 1.0]),
        classes=np.ones(3),
        visibility=-np.ones(3),
    )
    path = tmp_path / "MOT17-02-FRCNN.txt"
    write_mot_txt(path, table, kind="results")
    assert path.read_text().splitlines() == [
        "1,2,0.01,1.00,2.00,3.00,1.000,-1,-1,-1",
        "1,3,10.00,20.00,30.00,40.00,0.500,-1,-1,-1",
        "2,1,1.23,2.50,3.00,4.00,0.988,-1,-1,-1",
    ]
    back = read_mot_txt(path, kind="results")
    np.testing.assert_array_equal(back.ids, [2, 3, 1])
    np.testing.assert_allclose(back.scores, [1.0, 0.5, 0.988], rtol=1e-6)


def _tracks(ids: list[int]) -> Tracks:
    n = len(ids)
    boxes = np.array([[i, i, i + 10, i + 20] for i in range(n)], np.float32).reshape(-1, 4)
    return Tracks(boxes, np.full(n, 0.9), np.zeros(n), np.array(ids), np.arange(n))


def test_write_mot_results(tmp_path: Path) -> None:
    path = tmp_path / "res.txt"
    rows = write_mot_results(
        path, [(1, _tracks([0, 1, -1])), (2, Tracks.empty()), (4, _tracks([1]))]
    )
    assert rows == 3
    back = read_mot_txt(path, kind="results")
    np.testing.assert_array_equal(back.frames, [1, 1, 4])
    np.testing.assert_array_equal(back.ids, [1, 2, 2])


@pytest.mark.parametrize(
    ("per_frame", "message"),
    [
        ([(1, _tracks([0])), (1, _tracks([1]))], "strictly increasing"),
        ([(0, _tracks([0]))], "strictly increasing"),
        ([(1, _tracks([3, 3]))], "track id 3 appears more than once in frame 1"),
    ],
)
def test_write_mot_results_rejects(
    tmp_path: Path, per_frame: list[tuple[int, Tracks]], message: str
) -> None:
    path = tmp_path / "res.txt"
    path.write_text("old\n")
    with pytest.raises(ValueError, match=message):
        write_mot_results(path, per_frame)
    assert path.read_text() == "old\n"


# --- errors -----------------------------------------------------------------------


def test_tolerates_whitespace_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("\n 1 , 2, 10,20 ,30,40, 1,1, 0.5 \n\n   \n2,2,11,21,30,40,0,7,1\n")
    table = read_mot_txt(path, kind="gt")
    np.testing.assert_array_equal(table.frames, [1, 2])
    np.testing.assert_array_equal(table.classes, [1, 7])
    np.testing.assert_allclose(table.visibility, [0.5, 1])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,1,1,1,1,1,1,1,1\n\n2,1,1,1,1\n", r":3: expected at least 7"),
        ("1,1,1,1,1,1,1,1,1\n2,1,abc,1,1,1,1,1,1\n", r":2: column 3 is not a number: 'abc'"),
        ("1,1,1,1,1,1,1,1,1\n2,1,1,1,-5,1,1,1,1\n", r":2: box width and height"),
        ("1,1,1,1,1,1,1,1,1\n0,1,1,1,1,1,1,1,1\n", rf":2: {OUT_OF_RANGE}, got 0"),
        ("1,1,1,1,1,1,1,1,1\n11,1,1,1,1,1,1,1,1\n", rf":2: {OUT_OF_RANGE}, got 11"),
        ("1.5,1,1,1,1,1,1,1,1\n", r":1: frame number must be an integer"),
        ("1,1,1,1,1,1,1,1,1\n2,1,nan,1,1,1,1,1,1\n", r":2: values must be finite"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=rf"gt\.txt{message}"):
        read_mot_txt(path, kind="gt", seq_length=10)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        read_mot_txt(tmp_path / "nope.txt", kind="det")
    with pytest.raises(FileNotFoundError, match=r"seqinfo\.ini"):
        load_sequence(tmp_path)
    with pytest.raises(ValueError, match="no sequence folders"):
        list_sequences(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        read_mot_txt(tmp_path / "x.txt", kind="tracks")  # type: ignore[arg-type]


def test_atomic_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,1,1,1,1,1,1,1\n")
    table = _table([1, 2, 3], [1, 1, 1])

    import qdtrack.data.mot as mot

    real = mot._format_lines

    def failing(tbl: MotTable, kind: str) -> list[str]:
        lines = real(tbl, kind)  # type: ignore[arg-type]
        return [*lines[:1], None]  # type: ignore[list-item]

    monkeypatch.setattr(mot, "_format_lines", failing)
    with pytest.raises(TypeError):
        write_mot_txt(path, table, kind="gt")
    assert path.read_text() == "1,1,1,1,1,1,1,1,1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gt.txt"]


def test_image_paths(tmp_path: Path) -> None:
    write_seqinfo(tmp_path, SeqInfo(name="S", seq_length=2, im_ext=".png"))
    (tmp_path / "img1").mkdir()
    (tmp_path / "img1" / "000001.png").write_bytes(b"")
    seq = load_sequence(tmp_path)
    with pytest.raises(ValueError, match=r"000002\.png"):
        seq.image_paths()
    (tmp_path / "img1" / "000002.png").write_bytes(b"")
    assert [p.name for p in seq.image_paths()] == ["000001.png", "000002.png"]
