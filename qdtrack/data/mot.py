"""MOTChallenge sequences: ``seqinfo.ini``, ``gt.txt``, ``det.txt`` and result files.

Formats and rules: MOT15/16/17/20 layouts as TrackEval and mmtracking read them.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from qdtrack.io_utils import atomic_write
from qdtrack.structures import FloatArray, IntArray, Tracks, tlwh_to_xyxy

# mmtracking's converter reads seqinfo.ini by line position, so we always write the keys
# in this order (name, imDir, frameRate, seqLength, imWidth, imHeight, imExt).
SEQINFO_KEYS = ("name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``."""

    name: str
    seq_length: int
    frame_rate: float = 30.0
    im_width: int = 0
    im_height: int = 0
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Read ``seqinfo.ini`` (a file, or a sequence folder containing one).

    Raises:
        FileNotFoundError: the file is missing (the message names the path).
        ValueError: a required key is missing or not a number (names file and key).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "seqinfo.ini"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: seqinfo.ini not found")
    parser = configparser.ConfigParser()
    try:
        parser.read(p, encoding="utf-8")
    except configparser.Error as exc:
        raise ValueError(f"{p}: cannot parse seqinfo.ini: {exc}") from exc
    if "Sequence" not in parser:
        raise ValueError(f"{p}: missing [Sequence] section")
    sec = parser["Sequence"]

    def number(key: str, kind: type, default: float | None = None) -> float:
        if key not in sec:
            if default is not None:
                return default
            raise ValueError(f"{p}: missing key '{key}' in [Sequence]")
        try:
            return kind(sec[key])
        except ValueError as exc:
            raise ValueError(f"{p}: key '{key}' is not a number: {sec[key]!r}") from exc

    seq_length = int(number("seqLength", int))
    if seq_length < 0:
        raise ValueError(f"{p}: seqLength must be >= 0, got {seq_length}")
    return SeqInfo(
        name=sec.get("name", p.parent.name),
        seq_length=seq_length,
        frame_rate=float(number("frameRate", float, 30.0)),
        im_width=int(number("imWidth", int, 0)),
        im_height=int(number("imHeight", int, 0)),
        im_dir=sec.get("imDir", "img1"),
        im_ext=sec.get("imExt", ".jpg"),
    )


def write_seqinfo(path: str | Path, info: SeqInfo) -> None:
    """Write ``seqinfo.ini`` atomically with the keys in the canonical order."""
    p = Path(path)
    if p.is_dir() or p.suffix != ".ini":
        p = p / "seqinfo.ini"
    frame_rate = int(info.frame_rate) if float(info.frame_rate).is_integer() else info.frame_rate
    values = (
        info.name,
        info.im_dir,
        frame_rate,
        info.seq_length,
        info.im_width,
        info.im_height,
        info.im_ext,
    )
    with atomic_write(p) as handle:
        handle.write("[Sequence]\n")
        for key, value in zip(SEQINFO_KEYS, values, strict=True):
            handle.write(f"{key}={value}\n")


def half_split_point(seq_length: int) -> int:
    """Last frame (1-based) of mmtracking's half-train split: ``seq_length // 2 + 1``.

    Half-train is frames ``1 .. split``; half-val is frames ``split + 1 .. seq_length``,
    keeping the original frame numbers.
    """
    if seq_length < 0:
        raise ValueError(f"seq_length must be >= 0, got {seq_length}")
    return seq_length // 2 + 1


# --------------------------------------------------------------------------------------
# MOT txt tables (gt.txt, det.txt, tracker results)
# --------------------------------------------------------------------------------------

MotKind = Literal["gt", "det", "results"]
HalfSubset = Literal["half-train", "half-val"]
_KINDS = ("gt", "det", "results")
# frame, id, left, top, width, height and column 7 (flag / score / confidence).
_MIN_COLUMNS = 7
# MOT15 gt has 10 columns (world coordinates in 8-10) and no class column.
_MOT15_GT_COLUMNS = 10
# TrackEval's non-MOT15 benchmarks score only this class (pedestrian).
PEDESTRIAN_CLASS = 1


@dataclass(frozen=True)
class MotTable:
    """Rows of a MOTChallenge txt file as columns of equal length N.

    Attributes:
        frames: (N,) int64 1-based frame numbers.
        ids: (N,) int64 object ids (1-based in gt and results, -1 in det files).
        boxes_tlwh: (N, 4) float32 (left, top, width, height) boxes in pixels.
        scores: (N,) float32 column 7: the flag for gt (1 evaluate, 0 ignore), the score
            for detections, the confidence for tracker results.
        classes: (N,) int64 column 8 of MOT16/17/20 gt; 1 when the file has no class
            column (MOT15 gt, detections, results).
        visibility: (N,) float32 column 9 of MOT16/17/20 gt; -1 when absent.
    """

    frames: IntArray
    ids: IntArray
    boxes_tlwh: FloatArray
    scores: FloatArray
    classes: IntArray
    visibility: FloatArray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes_tlwh, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes_tlwh must have shape (N, 4), got {boxes.shape}")
        n = boxes.shape[0]
        object.__setattr__(self, "boxes_tlwh", boxes)
        columns = (
            ("frames", np.int64),
            ("ids", np.int64),
            ("scores", np.float32),
            ("classes", np.int64),
            ("visibility", np.float32),
        )
        for name, dtype in columns:
            arr = np.asarray(getattr(self, name), dtype=dtype)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def boxes_xyxy(self) -> FloatArray:
        """Boxes as (x1, y1, x2, y2), shape (N, 4)."""
        return tlwh_to_xyxy(self.boxes_tlwh)

    def select(self, mask_or_index: npt.ArrayLike) -> MotTable:
        """Rows picked by a boolean mask or an integer index array."""
        idx = np.asarray(mask_or_index)
        return MotTable(
            frames=self.frames[idx],
            ids=self.ids[idx],
            boxes_tlwh=self.boxes_tlwh[idx],
            scores=self.scores[idx],
            classes=self.classes[idx],
            visibility=self.visibility[idx],
        )

    def for_frame(self, frame: int) -> MotTable:
        """Rows of one (1-based) frame, in file order."""
        return self.select(self.frames == frame)

    def frame_numbers(self) -> IntArray:
        """Sorted unique frame numbers present in the table."""
        return np.unique(self.frames)

    @classmethod
    def empty(cls) -> MotTable:
        """A table with no rows."""
        return cls(
            frames=np.zeros(0, np.int64),
            ids=np.zeros(0, np.int64),
            boxes_tlwh=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            classes=np.zeros(0, np.int64),
            visibility=np.zeros(0, np.float32),
        )

    @classmethod
    def concat(cls, tables: Iterable[MotTable]) -> MotTable:
        """Rows of all ``tables`` one after another."""
        parts = list(tables)
        if not parts:
            return cls.empty()
        return cls(
            frames=np.concatenate([t.frames for t in parts]),
            ids=np.concatenate([t.ids for t in parts]),
            boxes_tlwh=np.concatenate([t.boxes_tlwh for t in parts]),
            scores=np.concatenate([t.scores for t in parts]),
            classes=np.concatenate([t.classes for t in parts]),
            visibility=np.concatenate([t.visibility for t in parts]),
        )

    @classmethod
    def from_tracks(cls, frame: int, tracks: Tracks) -> MotTable:
        """Result rows for one frame of tracker output.

        Only tracks with ``track_id >= 0`` are kept (as mmtracking's ``outs2results``).
        MOT ids are 1-based, so a track id ``k`` is written as ``k + 1``.

        Args:
            frame: 1-based MOT frame number.
            tracks: the tracker output of that frame.
        """
        confirmed = tracks.select(tracks.track_ids >= 0)
        n = len(confirmed)
        return cls(
            frames=np.full(n, frame, np.int64),
            ids=confirmed.track_ids + 1,
            boxes_tlwh=confirmed.boxes_tlwh,
            scores=confirmed.scores,
            classes=np.ones(n, np.int64),
            visibility=np.full(n, -1.0, np.float32),
        )


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")


def _content_lines(path: Path) -> tuple[list[str], list[int]]:
    """Non-blank lines of ``path`` and their 1-based line numbers."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MOT txt file")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    numbers = [i + 1 for i, line in enumerate(lines) if line.strip()]
    return [lines[i - 1] for i in numbers], numbers


def _parse_line(path: Path, line_no: int, line: str) -> list[float]:
    """Parse one line strictly, raising ``ValueError`` "PATH:LINE: ..." on bad content."""
    fields = [field.strip() for field in line.split(",")]
    if len(fields) < _MIN_COLUMNS:
        raise ValueError(
            f"{path}:{line_no}: expected at least {_MIN_COLUMNS} comma-separated values, "
            f"got {len(fields)}: {line.strip()!r}"
        )
    values = []
    for col, field in enumerate(fields, start=1):
        try:
            values.append(float(field))
        except ValueError:
            raise ValueError(f"{path}:{line_no}: column {col} is not a number: {field!r}") from None
    return values


def _rows_to_table(rows: list[list[float]], kind: MotKind) -> MotTable:
    """Build a table from parsed rows (each with >= 7 values)."""
    n = len(rows)
    head = np.array([row[:_MIN_COLUMNS] for row in rows], np.float64).reshape(n, _MIN_COLUMNS)
    classes = np.ones(n, np.int64)
    visibility = np.full(n, -1.0, np.float32)
    if kind == "gt":
        for i, row in enumerate(rows):
            # 8/9 columns: MOT16/17/20 (class, visibility); 10 columns: MOT15 (world coords).
            if len(row) >= 8 and len(row) != _MOT15_GT_COLUMNS:
                classes[i] = int(row[7])
                if len(row) >= 9:
                    visibility[i] = row[8]
    return MotTable(
        frames=head[:, 0].astype(np.int64),
        ids=head[:, 1].astype(np.int64),
        boxes_tlwh=head[:, 2:6].astype(np.float32),
        scores=head[:, 6].astype(np.float32),
        classes=classes,
        visibility=visibility,
    )


def _matrix_to_table(values: np.ndarray, kind: MotKind) -> MotTable:
    """Build a table from an (N, C) matrix with one column count for all rows."""
    n, ncols = values.shape
    classes = np.ones(n, np.int64)
    visibility = np.full(n, -1.0, np.float32)
    if kind == "gt" and ncols >= 8 and ncols != _MOT15_GT_COLUMNS:
        classes = values[:, 7].astype(np.int64)
        if ncols >= 9:
            visibility = values[:, 8].astype(np.float32)
    return MotTable(
        frames=values[:, 0].astype(np.int64),
        ids=values[:, 1].astype(np.int64),
        boxes_tlwh=values[:, 2:6].astype(np.float32),
        scores=values[:, 6].astype(np.float32),
        classes=classes,
        visibility=visibility,
    )


def _validate_values(
    path: Path, line_numbers: list[int], raw: np.ndarray, seq_length: int | None
) -> None:
    """Check frame numbers, finiteness and box sizes; name the first bad line."""
    frames = raw[:, 0]
    problems: list[tuple[np.ndarray, str]] = [
        (~np.isfinite(raw).all(axis=1), "values must be finite"),
        (frames != np.round(frames), "frame number must be an integer"),
        ((raw[:, 4] < 0) | (raw[:, 5] < 0), "box width and height must be >= 0"),
    ]
    bad_frame = frames < 1
    allowed = "frame number must be >= 1"
    if seq_length is not None:
        bad_frame |= frames > seq_length
        allowed = f"frame number must be in 1..{seq_length} (seqLength)"
    problems.append((bad_frame, allowed))
    first: tuple[int, str] | None = None
    for mask, message in problems:
        hits = np.flatnonzero(mask)
        if hits.size and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), message)
    if first is None:
        return
    row, message = first
    if message == allowed:
        message = f"{message}, got {raw[row, 0]:g}"
    raise ValueError(f"{path}:{line_numbers[row]}: {message}")


def read_mot_txt(path: str | Path, *, kind: MotKind, seq_length: int | None = None) -> MotTable:
    """Read a MOTChallenge gt / det / result txt file.

    Rows keep their file order. A gt file with 10 columns is MOT15 (no class column:
    classes = 1, visibility = -1); 9 columns is MOT16/17/20.

    Args:
        path: the txt file.
        kind: ``"gt"``, ``"det"`` or ``"results"``; decides how columns 8-10 are read.
        seq_length: when given, frame numbers above it are rejected.

    Returns:
        The rows as a :class:`MotTable`, in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed line or an out-of-range frame ("PATH:LINE: ...").
    """
    _check_kind(kind)
    p = Path(path)
    lines, line_numbers = _content_lines(p)
    if not lines:
        return MotTable.empty()
    try:
        # Fast path: numpy's C parser; it fails on ragged or non-numeric lines.
        values = np.loadtxt(lines, delimiter=",", ndmin=2, comments=None, dtype=np.float64)
        if values.shape[1] < _MIN_COLUMNS:
            raise ValueError("too few columns")
    except ValueError:
        rows = [_parse_line(p, no, line) for no, line in zip(line_numbers, lines, strict=True)]
        raw = np.array([row[:_MIN_COLUMNS] for row in rows], np.float64)
        _validate_values(p, line_numbers, raw, seq_length)
        return _rows_to_table(rows, kind)
    _validate_values(p, line_numbers, values[:, :_MIN_COLUMNS], seq_length)
    return _matrix_to_table(values, kind)


def _sorted_rows(table: MotTable) -> MotTable:
    return table.select(np.lexsort((table.ids, table.frames)))


def _format_lines(table: MotTable, kind: MotKind) -> list[str]:
    """Text lines of ``table`` (already sorted) in the layout of ``kind``."""
    frames = table.frames.tolist()
    ids = table.ids.tolist()
    boxes = table.boxes_tlwh.tolist()
    scores = table.scores.tolist()
    if kind == "gt":
        flags = np.round(table.scores).astype(np.int64).tolist()
        classes = table.classes.tolist()
        vis = table.visibility.tolist()
        # %.7g prints float32 values exactly as parsed (e.g. 1359.1, 0.86047).
        return [
            f"{f},{i},{b[0]:.7g},{b[1]:.7g},{b[2]:.7g},{b[3]:.7g},{fl},{c},{v:.7g}"
            for f, i, b, fl, c, v in zip(frames, ids, boxes, flags, classes, vis, strict=True)
        ]
    if kind == "det":
        return [
            f"{f},-1,{b[0]:.7g},{b[1]:.7g},{b[2]:.7g},{b[3]:.7g},{s:.7g},-1,-1,-1"
            for f, b, s in zip(frames, boxes, scores, strict=True)
        ]
    # Results as mmtracking writes them: boxes with 2 decimals, confidence with 3.
    return [
        f"{f},{i},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{s:.3f},-1,-1,-1"
        for f, i, b, s in zip(frames, ids, boxes, scores, strict=True)
    ]


def write_mot_txt(path: str | Path, table: MotTable, *, kind: MotKind) -> None:
    """Write ``table`` atomically, rows sorted by (frame, id).

    Layouts: gt ``frame,id,x,y,w,h,flag,class,vis`` (9 columns, flag as an integer);
    det ``frame,-1,x,y,w,h,score,-1,-1,-1``; results ``frame,id,x,y,w,h,conf,-1,-1,-1``
    with boxes at 2 decimals and the confidence at 3 (mmtracking style).

    Raises:
        ValueError: ``kind`` is not one of "gt", "det", "results".
    """
    _check_kind(kind)
    lines = _format_lines(_sorted_rows(table), kind)
    with atomic_write(path) as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")


def write_mot_results(path: str | Path, per_frame: Iterable[tuple[int, Tracks]]) -> int:
    """Write tracker output as a MOTChallenge result file.

    Args:
        path: the ``<SeqName>.txt`` to write (atomically).
        per_frame: (1-based MOT frame number, tracks of that frame) pairs in increasing
            frame order. Tracks with a negative id are skipped.

    Returns:
        The number of rows written.

    Raises:
        ValueError: frames are not strictly increasing (or < 1), or a track id repeats
            within a frame (TrackEval rejects both).
    """
    tables = []
    previous = 0
    for frame, tracks in per_frame:
        if frame <= previous:
            raise ValueError(
                f"frames must be strictly increasing and >= 1; got {frame} after {previous}"
            )
        previous = frame
        table = MotTable.from_tracks(frame, tracks)
        unique, counts = np.unique(table.ids, return_counts=True)
        if (counts > 1).any():
            dup = int(unique[counts > 1][0]) - 1
            raise ValueError(f"track id {dup} appears more than once in frame {frame}")
        tables.append(table)
    merged = MotTable.concat(tables)
    write_mot_txt(path, merged, kind="results")
    return len(merged)


def pedestrian_gt(table: MotTable, benchmark: str = "MOT17") -> MotTable:
    """The gt rows TrackEval scores.

    Args:
        table: a gt table.
        benchmark: ``"MOT15"`` keeps every row with flag != 0 (no class filter); any
            other benchmark (MOT16/17/20) keeps class 1 (pedestrian) with flag != 0.
    """
    keep = table.scores != 0
    if benchmark.upper() != "MOT15":
        keep &= table.classes == PEDESTRIAN_CLASS
    return table.select(keep)


def half_frames(seq_length: int, subset: HalfSubset) -> range:
    """1-based frame numbers of mmtracking's half-train or half-val subset.

    Half-train is ``1 .. seq_length // 2 + 1`` and half-val the remaining frames, with
    the original numbering (``mot2coco.py --split-train``).
    """
    split = half_split_point(seq_length)
    if subset == "half-train":
        return range(1, min(split, seq_length) + 1)
    if subset == "half-val":
        return range(split + 1, seq_length + 1)
    raise ValueError(f"subset must be 'half-train' or 'half-val', got {subset!r}")


def write_half_split(
    seq_dir: str | Path, *, out_dir: str | Path | None = None
) -> tuple[Path, Path]:
    """Write ``gt/gt_half-train.txt`` and ``gt/gt_half-val.txt`` for one sequence.

    Every row (all classes and flags; TrackEval's distractor step needs them) of the
    frames of each half is copied verbatim, keeping the original frame numbers.

    Args:
        seq_dir: the sequence folder with ``seqinfo.ini`` and ``gt/gt.txt``.
        out_dir: write into this sequence folder instead (``seqinfo.ini`` is copied).

    Returns:
        The paths of the half-train and half-val files.
    """
    src = Path(seq_dir)
    info = read_seqinfo(src)
    gt_path = src / "gt" / "gt.txt"
    table = read_mot_txt(gt_path, kind="gt", seq_length=info.seq_length)
    lines, _ = _content_lines(gt_path)
    dst = src if out_dir is None else Path(out_dir)
    if out_dir is not None:
        with atomic_write(dst / "seqinfo.ini", "wb") as handle:
            handle.write((src / "seqinfo.ini").read_bytes())
    outputs = []
    for subset in ("half-train", "half-val"):
        frames = half_frames(info.seq_length, subset)
        keep = (table.frames >= frames.start) & (table.frames < frames.stop)
        out = dst / "gt" / f"gt_{subset}.txt"
        with atomic_write(out) as handle:
            for index in np.flatnonzero(keep).tolist():
                handle.write(lines[index].strip())
                handle.write("\n")
        outputs.append(out)
    return outputs[0], outputs[1]


# --------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------


@dataclass
class MotSequence:
    """One MOTChallenge sequence folder.

    Attributes:
        root: the sequence folder.
        info: its ``seqinfo.ini``.
        gt: ``gt/gt.txt`` when present.
        det: ``det/det.txt`` when present.
    """

    root: Path
    info: SeqInfo
    gt: MotTable | None = None
    det: MotTable | None = None

    def image_paths(self) -> list[Path]:
        """Image files of frames 1..seq_length (``<imDir>/<frame:06d><imExt>``).

        Raises:
            ValueError: an image is missing (names the first one).
        """
        folder = self.root / self.info.im_dir
        paths = [
            folder / f"{frame:06d}{self.info.im_ext}"
            for frame in range(1, self.info.seq_length + 1)
        ]
        for p in paths:
            if not p.is_file():
                raise ValueError(f"{p}: image missing (sequence has {len(paths)} frames)")
        return paths


def load_sequence(seq_dir: str | Path) -> MotSequence:
    """Read ``seqinfo.ini`` and, when present, ``gt/gt.txt`` and ``det/det.txt``.

    Raises:
        FileNotFoundError: ``seqinfo.ini`` is missing.
        ValueError: a malformed file (see :func:`read_mot_txt`).
    """
    root = Path(seq_dir)
    info = read_seqinfo(root / "seqinfo.ini")
    gt_path = root / "gt" / "gt.txt"
    det_path = root / "det" / "det.txt"
    gt = read_mot_txt(gt_path, kind="gt", seq_length=info.seq_length) if gt_path.is_file() else None
    det = (
        read_mot_txt(det_path, kind="det", seq_length=info.seq_length)
        if det_path.is_file()
        else None
    )
    return MotSequence(root=root, info=info, gt=gt, det=det)


def list_sequences(root: str | Path) -> list[Path]:
    """Sorted subfolders of ``root`` that contain a ``seqinfo.ini``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: no sequence folder was found.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no such folder")
    found = sorted(p for p in base.iterdir() if (p / "seqinfo.ini").is_file())
    if not found:
        raise ValueError(f"{base}: no sequence folders (subfolders with seqinfo.ini)")
    return found
