"""MOTChallenge scoring with TrackEval: HOTA, CLEAR (MOTA...) and Identity (IDF1...).

``evaluate_mot`` stages TrackEval's inputs in a temporary folder (nothing is written into the
gt or result folders), checks the result files first so that bad input fails with a message
naming the file and line, runs TrackEval 1.3.0's ``MotChallenge2DBox`` with the benchmark's
official preprocessing, and returns the metrics as plain JSON-ready numbers. The gt
handling, result format and half-val split are described in ``docs/reference-behaviour.md``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdtrack.data.mot import half_frames, read_seqinfo
from qdtrack.evaluation.trackeval_run import quiet_eval_config, staging_dir

BENCHMARKS = ("MOT17", "MOT16", "MOT15", "MOT20")
"""MOTChallenge benchmarks (``evaluate_mot``); ``qdtrack evaluate`` also takes TAO and COCO."""

SPLITS = ("full", "half-val")

# Name of the single tracker folder inside the staging area.
_TRACKER_NAME = "results"

_CLASS = "pedestrian"

# TrackEval field -> our key. HOTA-family fields are arrays over the 19 alphas (mean, x100).
_HOTA_ARRAY_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")

_HOTA_FLOAT_FIELDS = ("HOTA(0)", "LocA(0)", "HOTALocA(0)")

_CLEAR_PERCENT_FIELDS = ("MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA")

_CLEAR_INT_FIELDS = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames")

_IDENTITY_PERCENT_FIELDS = ("IDF1", "IDR", "IDP")

_IDENTITY_INT_FIELDS = ("IDTP", "IDFN", "IDFP")

_COUNT_INT_FIELDS = ("Dets", "GT_Dets", "IDs", "GT_IDs")

# Short names for the CLEAR counts (what the MOTChallenge tables call them).
_ALIASES = {"TP": "CLR_TP", "FP": "CLR_FP", "FN": "CLR_FN"}

METRIC_NAMES: tuple[str, ...] = (
    _HOTA_ARRAY_FIELDS
    + _HOTA_FLOAT_FIELDS
    + _CLEAR_PERCENT_FIELDS
    + _CLEAR_INT_FIELDS
    + _IDENTITY_PERCENT_FIELDS
    + _IDENTITY_INT_FIELDS
    + _COUNT_INT_FIELDS
    + tuple(_ALIASES)
)
"""Every key of a MOTChallenge per-sequence / combined metrics dict."""

# Metrics where smaller is better: a --max-drop allows baseline + drop for them.
LOWER_IS_BETTER = frozenset(
    {"IDSW", "FP", "FN", "Frag", "ML", "MLR", "CLR_FP", "CLR_FN", "IDFP", "IDFN"}
)


@dataclass(frozen=True)
class _Sequence:
    name: str
    seq_length: int
    gt_file: Path
    result_file: Path


def _find_sequences(gt_dir: Path, results_dir: Path) -> list[_Sequence]:
    """Sequences = folders of ``gt_dir`` with a seqinfo.ini; each needs ``<seq>.txt``."""
    if not gt_dir.is_dir():
        raise FileNotFoundError(f"{gt_dir}: gt folder not found")
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results folder not found")
    sequences = []
    for folder in sorted(p for p in gt_dir.iterdir() if (p / "seqinfo.ini").is_file()):
        gt_file = folder / "gt" / "gt.txt"
        if not gt_file.is_file():
            raise FileNotFoundError(f"{gt_file}: gt file not found")
        result_file = results_dir / f"{folder.name}.txt"
        if not result_file.is_file():
            raise FileNotFoundError(
                f"{result_file}: result file for sequence {folder.name} missing"
            )
        info = read_seqinfo(folder / "seqinfo.ini")
        sequences.append(_Sequence(folder.name, info.seq_length, gt_file, result_file))
    if not sequences:
        raise ValueError(f"{gt_dir}: no sequence folders with seqinfo.ini")
    known = {s.name for s in sequences}
    for extra in sorted(results_dir.glob("*.txt")):
        if extra.stem not in known:
            print(
                f"warning: {extra}: no gt sequence '{extra.stem}' in {gt_dir}; ignored",
                file=sys.stderr,
            )
    return sequences


def _split_fields(line: str) -> list[str]:
    # TrackEval sniffs the delimiter; results are comma separated, some tools use spaces.
    return line.split(",") if "," in line else line.split()


def _check_results(seq: _Sequence, first_frame: int) -> tuple[list[str], int, bool]:
    """Validate one result file.

    Returns the lines of frames >= ``first_frame``, the number of rows dropped, and whether
    the file can be handed to TrackEval as it is (nothing dropped, no blank lines: TrackEval's
    reader fails on a blank line).

    Raises ``ValueError`` naming file and line for what TrackEval would reject with a cryptic
    message: too few columns, non-numbers, frames outside 1..seqLength, an id twice in a frame,
    or a class column above 1 (TrackEval scores pedestrians only).
    """
    kept: list[str] = []
    dropped = 0
    verbatim = True
    seen: set[tuple[int, int]] = set()
    path = seq.result_file
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                verbatim = False
                continue
            fields = _split_fields(line.strip())
            if len(fields) < 7:
                raise ValueError(
                    f"{path}:{line_no}: expected at least 7 columns, got {len(fields)}"
                )
            try:
                values = [float(v) for v in fields[:8]]
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: not a number: {line.strip()!r}") from exc
            frame, track_id = int(values[0]), int(values[1])
            if not 1 <= frame <= seq.seq_length:
                raise ValueError(
                    f"{path}:{line_no}: frame {frame} outside 1..{seq.seq_length} (seqLength)"
                )
            if len(values) >= 8 and int(values[7]) > 1:
                raise ValueError(
                    f"{path}:{line_no}: class {int(values[7])} in column 8; only pedestrian "
                    "(1, or -1 / omitted) can be evaluated"
                )
            if (frame, track_id) in seen:
                raise ValueError(f"{path}:{line_no}: id {track_id} appears twice in frame {frame}")
            seen.add((frame, track_id))
            if frame < first_frame:
                dropped += 1
            else:
                kept.append(line if line.endswith("\n") else line + "\n")
    return kept, dropped, verbatim and dropped == 0


def _write_half_val_gt(src: Path, dst: Path, first_frame: int) -> None:
    """Keep every gt row (all classes and flags: distractor removal needs them) of half-val."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for line in fin:
            head = line.split(",", 1)[0].strip()
            if head and int(float(head)) >= first_frame:
                fout.write(line)


def _stage_results(seq: _Sequence, dst: Path, kept: list[str], verbatim: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if verbatim:
        try:
            os.symlink(seq.result_file.resolve(), dst)
            return
        except OSError:  # no symlinks on this file system: copy instead
            pass
    with dst.open("w", encoding="utf-8") as handle:
        handle.writelines(kept)


def _run_trackeval(
    gt_folder: Path,
    gt_loc_format: str,
    trackers_folder: Path,
    staging: Path,
    seq_lengths: dict[str, int],
    benchmark: str,
) -> dict[str, Any]:
    """Run TrackEval quietly; return ``res[seq][class][metric][field]`` incl. COMBINED_SEQ."""
    import trackeval  # imported here: slow import, only needed when evaluating

    eval_config = quiet_eval_config(staging)
    dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dataset_config.update(
        {
            "GT_FOLDER": str(gt_folder),
            "TRACKERS_FOLDER": str(trackers_folder),
            "OUTPUT_FOLDER": str(staging / "output"),
            "TRACKERS_TO_EVAL": [_TRACKER_NAME],
            "CLASSES_TO_EVAL": [_CLASS],
            "BENCHMARK": benchmark,
            "SPLIT_TO_EVAL": "train",
            "PRINT_CONFIG": False,
            "DO_PREPROC": True,  # TrackEval itself skips preprocessing for MOT15
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": dict(seq_lengths),
            "GT_LOC_FORMAT": gt_loc_format,
        }
    )
    noise = io.StringIO()
    try:
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
            evaluator = trackeval.Evaluator(eval_config)
            metrics = [
                trackeval.metrics.HOTA(),
                trackeval.metrics.CLEAR(),
                trackeval.metrics.Identity(),
            ]
            results, messages = evaluator.evaluate([dataset], metrics)
    except trackeval.utils.TrackEvalException as exc:
        raise ValueError(f"TrackEval: {exc}") from exc
    dataset_name = dataset.get_name()
    res = results[dataset_name].get(_TRACKER_NAME)
    if res is None:
        raise ValueError(f"TrackEval: {messages[dataset_name].get(_TRACKER_NAME, 'failed')}")
    return res


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _convert(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """TrackEval's per-class dict -> flat {metric: number}, percentages on 0-100."""
    hota, clear, ident, count = raw["HOTA"], raw["CLEAR"], raw["Identity"], raw["Count"]
    out: dict[str, Any] = {}
    for field in _HOTA_ARRAY_FIELDS:
        out[field] = _finite(float(hota[field].mean()) * 100.0)
    for field in _HOTA_FLOAT_FIELDS:
        out[field] = _finite(float(hota[field]) * 100.0)
    for field in _CLEAR_PERCENT_FIELDS:
        out[field] = _finite(float(clear[field]) * 100.0)
    for field in _CLEAR_INT_FIELDS:
        out[field] = int(clear[field])
    for field in _IDENTITY_PERCENT_FIELDS:
        out[field] = _finite(float(ident[field]) * 100.0)
    for field in _IDENTITY_INT_FIELDS:
        out[field] = int(ident[field])
    for field in _COUNT_INT_FIELDS:
        out[field] = int(count[field])
    for alias, field in _ALIASES.items():
        out[alias] = out[field]
    return out


def half_val_frames(seq_length: int) -> range:
    """Frames (1-based, original numbering) of mmtracking's half-val split."""
    return half_frames(seq_length, "half-val")


def evaluate_mot(
    gt_dir: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    *,
    benchmark: str = "MOT17",
    split: str = "full",
) -> dict[str, Any]:
    """Score ``results_dir/<seq>.txt`` against ``gt_dir/<seq>/gt/gt.txt`` with TrackEval.

    Args:
        gt_dir: folder of sequence folders, each with ``gt/gt.txt`` and ``seqinfo.ini``;
            every folder with a ``seqinfo.ini`` is evaluated.
        results_dir: one MOTChallenge result file ``<seq>.txt`` per sequence (an empty file
            is a tracker that output nothing).
        benchmark: ``MOT17``/``MOT16``/``MOT20`` (distractor removal, pedestrians only) or
            ``MOT15`` (no preprocessing; gt with flag 0 ignored).
        split: ``full``, or ``half-val`` (frames after ``seq_length // 2 + 1``, original frame
            numbers; result rows on earlier frames are dropped and counted).

    Returns:
        ``{"sequences": {seq: metrics}, "combined": metrics, "benchmark", "split",
        "dropped_rows": {seq: n}}``; metrics map each name in ``METRIC_NAMES`` to a
        percentage (0-100) or an int count.

    Raises:
        FileNotFoundError: a folder, gt file or result file is missing.
        ValueError: a bad result row (file and line named) or a TrackEval error.
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    gt_root, results_root = Path(gt_dir), Path(results_dir)
    sequences = _find_sequences(gt_root, results_root)

    with staging_dir() as staging:
        trackers_data = staging / "trackers" / _TRACKER_NAME / "data"
        dropped_rows: dict[str, int] = {}
        if split == "full":
            gt_folder, gt_loc_format = gt_root.resolve(), "{gt_folder}/{seq}/gt/gt.txt"
        else:
            gt_folder, gt_loc_format = staging / "gt", "{gt_folder}/{seq}/gt/gt_half-val.txt"
        for seq in sequences:
            first_frame = 1 if split == "full" else half_val_frames(seq.seq_length).start
            kept, dropped, verbatim = _check_results(seq, first_frame)
            dropped_rows[seq.name] = dropped
            _stage_results(seq, trackers_data / f"{seq.name}.txt", kept, verbatim)
            if split == "half-val":
                _write_half_val_gt(
                    seq.gt_file, gt_folder / seq.name / "gt" / "gt_half-val.txt", first_frame
                )
        total_dropped = sum(dropped_rows.values())
        if total_dropped:
            print(
                f"half-val: dropped {total_dropped} result rows on half-train frames "
                f"({', '.join(f'{k}: {v}' for k, v in dropped_rows.items() if v)})",
                file=sys.stderr,
            )
        res = _run_trackeval(
            gt_folder,
            gt_loc_format,
            staging / "trackers",
            staging,
            {s.name: s.seq_length for s in sequences},
            benchmark,
        )

    return {
        "sequences": {s.name: _convert(res[s.name][_CLASS]) for s in sequences},
        "combined": _convert(res["COMBINED_SEQ"][_CLASS]),
        "benchmark": benchmark,
        "split": split,
        "dropped_rows": dropped_rows,
    }
