"""Shared steps of the quality benchmarks: train (timed), track, re-track with IoU, evaluate."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from qdtrack.associate import run_association
from qdtrack.checkpoint import model_from_checkpoint
from qdtrack.config import QDTrackConfig
from qdtrack.data.mot import write_mot_results
from qdtrack.evaluation.mot import evaluate_mot
from qdtrack.evaluation.report import summary_metrics
from qdtrack.inference.detections_file import Frame, detections_record
from qdtrack.inference.loop import track_source
from qdtrack.io_utils import write_json
from qdtrack.trackers import (
    IoUTracker,
    QuasiDenseTracker,
    QuasiDenseTrackerSettings,
    iou_baseline_settings,
)
from qdtrack.train import run_training


def timed_training(config: QDTrackConfig, out_dir: Path) -> tuple[Path, float]:
    """Train and return (checkpoint, seconds)."""
    start = time.perf_counter()
    checkpoint = run_training(config, out_dir, device="cpu")
    return checkpoint, time.perf_counter() - start


def track_sequences(
    checkpoint: Path,
    sequences: list[Path],
    out_dir: Path,
    *,
    start: int = 1,
    render: bool = True,
) -> dict[str, Any]:
    """Track each sequence with QDTrack and, on the same detections, with the IoU tracker.

    Writes ``out_dir/{qdtrack,iou}/<seq>.txt`` (and ``<seq>.mp4`` when ``render``).
    Returns the frames per second of the network + tracker.
    """
    torch.set_flush_denormal(True)
    model, config = model_from_checkpoint(checkpoint)
    settings = config.tracker
    if not isinstance(settings, QuasiDenseTrackerSettings):
        raise ValueError(
            f"the MOT quality benchmarks need the MOT17 tracker, not {settings.tracker_type!r}"
        )
    fps_values = []
    for seq in sequences:
        results, detections, fps = track_source(
            model,
            QuasiDenseTracker(settings),
            seq,
            start=start,
            render=out_dir / f"{seq.name}.mp4" if render else None,
            keep_detections=True,
        )
        fps_values.append(fps)
        write_mot_results(out_dir / "qdtrack" / f"{seq.name}.txt", results)
        frames = [Frame(i, det) for i, det in enumerate(detections)]
        iou = run_association(IoUTracker(iou_baseline_settings(settings)), frames)
        numbers = [n for n, _ in results]  # MOT frame numbers of the tracked frames
        write_mot_results(
            out_dir / "iou" / f"{seq.name}.txt",
            ((numbers[i], t) for i, (_, t) in enumerate(iou.frames)),
        )
        records = [detections_record(i, det) for i, det in enumerate(detections)]
        write_json(out_dir / "detections" / f"{seq.name}.json", {"frames": records}, indent=None)
    return {"fps": sum(fps_values) / max(len(fps_values), 1)}


def evaluate_both(
    gt_dir: Path, out_dir: Path, *, benchmark: str, split: str
) -> dict[str, dict[str, Any]]:
    """Headline metrics of the QDTrack and the IoU results."""
    return {
        name: summary_metrics(
            evaluate_mot(gt_dir, out_dir / name, benchmark=benchmark, split=split)
        )
        for name in ("qdtrack", "iou")
    }


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Rows of {name, HOTA, MOTA, IDF1, IDSW, ...} as a fixed-width table."""
    cols = ["HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN"]
    print(f"{'tracker':<28}" + "".join(f"{c:>9}" for c in cols))
    for row in rows:
        cells = "".join(
            f"{row[c]:>9.2f}" if isinstance(row[c], float) else f"{row[c]:>9}" for c in cols
        )
        print(f"{row['name']:<28}{cells}")


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON report and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
