"""Score tracker results with TrackEval (MOTChallenge: HOTA, CLEAR, Identity) and gate on them.

``evaluate_mot`` stages TrackEval's inputs in a temporary folder (nothing is written into the
gt or result folders), checks the result files first so that bad input fails with a message
naming the file and line, runs TrackEval 1.3.0's ``MotChallenge2DBox`` with the benchmark's
official preprocessing, and returns the metrics as plain JSON-ready numbers.
``check_gate`` turns a metrics dict into a list of failed criteria. Rules and formats:
``spec/data-formats.md`` §2.3 (gt handling), §4 (result format), §5 (half split), §7 (TrackEval).
TAO (Track AP) and COCO box AP live in ``qdtrack.evaluate_tao``; ``main`` (``qdtrack
evaluate``) dispatches on ``evaluate.benchmark`` and writes the same table and outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import operator
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdtrack.config import GateConfig, stage_config
from qdtrack.data.mot import half_frames, read_seqinfo
from qdtrack.evaluate_tao import (
    BOX_METRIC_NAMES,
    BOX_SUMMARY_METRICS,
    COCO_BENCHMARK,
    TAO_BENCHMARK,
    TAO_SUMMARY_METRICS,
    TRACK_METRIC_NAMES,
    evaluate_box_ap,
    evaluate_tao,
)
from qdtrack.io_utils import atomic_write, write_json

BENCHMARKS = ("MOT17", "MOT16", "MOT15", "MOT20")
"""MOTChallenge benchmarks (``evaluate_mot``); ``qdtrack evaluate`` also takes TAO and COCO."""
CLI_BENCHMARKS = (*BENCHMARKS, TAO_BENCHMARK, COCO_BENCHMARK)
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

GATE_METRIC_NAMES: tuple[str, ...] = METRIC_NAMES + TRACK_METRIC_NAMES + BOX_METRIC_NAMES
"""Names a gate or max-drop may use: MOTChallenge, TAO Track AP and box AP metrics."""

# Metrics where smaller is better: a --max-drop allows baseline + drop for them.
LOWER_IS_BETTER = frozenset(
    {"IDSW", "FP", "FN", "Frag", "ML", "MLR", "CLR_FP", "CLR_FN", "IDFP", "IDFN"}
)

TABLE_COLUMNS = (
    "HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
    "IDSW", "FP", "FN", "Frag", "MT", "ML",
)  # fmt: skip

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_METRIC = r"[A-Za-z_][A-Za-z0-9_()]*"
_GATE_RE = re.compile(rf"^\s*({_METRIC})\s*(>=|<=|==|>|<)\s*({_NUMBER})\s*$")
_DROP_RE = re.compile(rf"^\s*({_METRIC})\s*=\s*({_NUMBER})\s*$")


# --------------------------------------------------------------------------- staging


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


# --------------------------------------------------------------------------- TrackEval


def quiet_eval_config(staging: Path) -> dict[str, Any]:
    """TrackEval's evaluator config: one process, no printing, no files but an error log."""
    import trackeval  # imported here: slow import, only needed when evaluating

    config: dict[str, Any] = trackeval.Evaluator.get_default_eval_config()
    config.update(
        {
            "USE_PARALLEL": False,
            "BREAK_ON_ERROR": True,
            "LOG_ON_ERROR": str(staging / "trackeval_error.log"),
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
    )
    return config


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


# --------------------------------------------------------------------------- public API


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

    with _staging_dir() as staging:
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


@contextlib.contextmanager
def _staging_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="qdtrack-eval-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _parse_items(text: str, pattern: re.Pattern[str], what: str) -> list[tuple[str, ...]]:
    items = []
    for part in text.split(","):
        match = pattern.match(part)
        if match is None:
            raise ValueError(f"bad {what} criterion {part.strip()!r} in {text!r}")
        if match.group(1) not in GATE_METRIC_NAMES:
            raise ValueError(
                f"unknown metric {match.group(1)!r} in {what} {text!r}; "
                f"known: {', '.join(GATE_METRIC_NAMES)}"
            )
        items.append(match.groups())
    return items


def _metric_value(metrics: dict[str, Any], name: str, source: str) -> float:
    value = metrics.get(name)
    if not isinstance(value, int | float):
        raise ValueError(f"metric {name} missing or not a number in the {source} metrics")
    return float(value)


def check_gate(
    combined: dict[str, Any],
    *,
    gate: str | None = None,
    baseline: dict[str, Any] | None = None,
    max_drop: str | None = None,
) -> list[str]:
    """Check combined metrics against absolute bounds and against a baseline.

    Args:
        combined: the candidate's combined metrics (``evaluate_mot(...)["combined"]``).
        gate: comma-separated ``METRIC OP VALUE`` with OP in ``>= > <= < ==``,
            e.g. ``"HOTA>=55,IDSW<=100"``.
        baseline: the baseline's combined metrics (required with ``max_drop``).
        max_drop: comma-separated ``METRIC=DROP``: the candidate must reach
            ``baseline - DROP`` (for lower-is-better counts such as IDSW/FP/FN/Frag: stay
            within ``baseline + DROP``).

    Returns:
        One human-readable message per failed criterion; empty when everything passes.

    Raises:
        ValueError: bad syntax, an unknown metric, a negative drop, or ``baseline`` and
            ``max_drop`` not given together.
    """
    failures: list[str] = []
    if gate:
        for name, op, bound_text in _parse_items(gate, _GATE_RE, "gate"):
            value, bound = _metric_value(combined, name, "candidate"), float(bound_text)
            if not _OPERATORS[op](value, bound):
                failures.append(f"{name} = {value:g} fails {name} {op} {bound:g}")
    if (baseline is None) != (max_drop is None):
        raise ValueError("--baseline and --max-drop must be given together")
    if baseline is not None and max_drop:
        for name, drop_text in _parse_items(max_drop, _DROP_RE, "max-drop"):
            drop = float(drop_text)
            if drop < 0:
                raise ValueError(f"max-drop for {name} must be >= 0, got {drop_text}")
            value = _metric_value(combined, name, "candidate")
            base = _metric_value(baseline, name, "baseline")
            if name in LOWER_IS_BETTER:
                if value > base + drop:
                    failures.append(
                        f"{name} = {value:g} exceeds baseline {base:g} + {drop:g} = {base + drop:g}"
                    )
            elif value < base - drop:
                failures.append(
                    f"{name} = {value:g} below baseline {base:g} - {drop:g} = {base - drop:g}"
                )
    return failures


def _table_rows(
    metrics: dict[str, Any],
) -> tuple[str, list[tuple[str, dict[str, Any]]], tuple[str, ...]]:
    """Row label, rows (sequences or TAO classes, then COMBINED) and columns of a metrics dict."""
    combined = metrics["combined"]
    benchmark = metrics.get("benchmark")
    if benchmark == TAO_BENCHMARK:
        box = BOX_SUMMARY_METRICS if "BoxAP" in combined else ()
        rows = [*metrics["classes"].items(), ("COMBINED", combined)]
        return "class", rows, TRACK_METRIC_NAMES + box
    if benchmark == COCO_BENCHMARK:
        return "", [("COMBINED", combined)], BOX_METRIC_NAMES
    return "sequence", [*metrics["sequences"].items(), ("COMBINED", combined)], TABLE_COLUMNS


def _cell(values: dict[str, Any], column: str, width: int) -> str:
    if column not in values:  # e.g. box AP on a TAO class row
        return f"{'-':>{width}}"
    value = values[column]
    if value is None:
        return f"{'nan':>{width}}"
    if isinstance(value, int):
        return f"{value:>{width}d}"
    return f"{value:>{width}.3f}"


def format_table(metrics: dict[str, Any]) -> str:
    """Per-sequence (TAO: per-class) rows plus COMBINED; MOTChallenge columns ``TABLE_COLUMNS``."""
    label, rows, columns = _table_rows(metrics)
    width = max(len(label), *(len(name) for name, _ in rows))
    widths = {column: max(9, len(column) + 1) for column in columns}
    lines = [f"{label:<{width}}" + "".join(f"{c:>{widths[c]}}" for c in columns)]
    for name, values in rows:
        cells = "".join(_cell(values, c, widths[c]) for c in columns)
        lines.append(f"{name:<{width}}" + cells)
    return "\n".join(lines)


SUMMARY_METRICS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


def summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of the combined row (what ``dvc metrics show`` displays).

    MOTChallenge: ``SUMMARY_METRICS``; TAO: TrackAP/50/75 (and BoxAP/50/75 when detections
    were scored); COCO: all ``Box*`` metrics.
    """
    combined = metrics["combined"]
    benchmark = metrics.get("benchmark")
    names: tuple[str, ...] = SUMMARY_METRICS
    if benchmark == TAO_BENCHMARK:
        names = TAO_SUMMARY_METRICS + (BOX_SUMMARY_METRICS if "BoxAP" in combined else ())
    elif benchmark == COCO_BENCHMARK:
        names = BOX_METRIC_NAMES
    return {name: combined[name] for name in names}


PER_SEQUENCE_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW")


def write_per_sequence_csv(path: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    """One row per sequence (and ``COMBINED``) of the headline metrics, for ``dvc plots``.

    TAO: one row per class (first column ``class``) with TrackAP/50/75; COCO: the
    ``COMBINED`` row of BoxAP/50/75.
    """
    benchmark = metrics.get("benchmark")
    label = "sequence"
    columns: tuple[str, ...] = PER_SEQUENCE_COLUMNS
    rows = [*metrics["sequences"].items(), ("COMBINED", metrics["combined"])]
    if benchmark == TAO_BENCHMARK:
        label, columns = "class", TAO_SUMMARY_METRICS
        rows = [*metrics["classes"].items(), ("COMBINED", metrics["combined"])]
    elif benchmark == COCO_BENCHMARK:
        columns = BOX_SUMMARY_METRICS
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow((label, *columns))
        for name, values in rows:
            cells = [name]
            for column in columns:
                value = values.get(column)
                cells.append("" if value is None else f"{value:.4f}".rstrip("0").rstrip("."))
            writer.writerow(cells)


def benchmark_metric_names(benchmark: str) -> tuple[str, ...]:
    """Metrics ``benchmark`` can report (TAO: box AP too, when detections are saved)."""
    if benchmark == COCO_BENCHMARK:
        return BOX_METRIC_NAMES
    if benchmark == TAO_BENCHMARK:
        return TRACK_METRIC_NAMES + BOX_METRIC_NAMES
    return METRIC_NAMES


def check_gate_names(gate: GateConfig, names: tuple[str, ...], where: str) -> None:
    """Raise ``ValueError`` unless the gate's criteria parse and use only ``names``."""
    zeros = dict.fromkeys(names, 0.0)
    try:
        check_gate(zeros, gate=gate.criteria or None, baseline=zeros, max_drop=gate.max_drop or "")
    except ValueError as exc:
        raise ValueError(f"{where}: gate: {exc}") from exc


def evaluate_results(
    gt: str | os.PathLike[str],
    results: str | os.PathLike[str],
    *,
    benchmark: str,
    split: str,
) -> dict[str, Any]:
    """Score ``results`` against ``gt`` with ``benchmark`` (``split``: MOTChallenge only)."""
    if benchmark in (TAO_BENCHMARK, COCO_BENCHMARK):
        if split != "full":
            raise ValueError(
                f"data.val_split {split} applies to MOTChallenge benchmarks only; "
                f"{benchmark} is scored on the whole gt file"
            )
        if benchmark == TAO_BENCHMARK:
            return evaluate_tao(gt, results)
        return evaluate_box_ap(gt, results)
    return evaluate_mot(gt, results, benchmark=benchmark, split=split)


def main(args: argparse.Namespace) -> int:
    """``qdtrack evaluate``: score the results; 0 = evaluated."""
    config = stage_config(args.config, args.set)
    benchmark, split = config.evaluate.benchmark, config.data.val_split
    # A gate that names metrics this benchmark does not report would only fail after the
    # evaluation (or in the next stage): check it first.
    names = benchmark_metric_names(benchmark)
    check_gate_names(config.gate, names, str(args.config or "config"))
    metrics = evaluate_results(args.gt, args.results, benchmark=benchmark, split=split)
    print(format_table(metrics))
    if args.out:
        write_json(args.out, metrics)
        print(f"wrote {args.out}")
    if getattr(args, "summary", None):
        write_json(args.summary, summary_metrics(metrics))
        print(f"wrote {args.summary}")
    if getattr(args, "per_sequence_csv", None):
        write_per_sequence_csv(args.per_sequence_csv, metrics)
        print(f"wrote {args.per_sequence_csv}")
    return 0
