"""Quality on the embedded synthetic data: train the CPU config, track val, compare with IoU.

    python benchmarks/bench_synthetic.py [--config params.yaml] [--work runs/bench_synthetic]

Goals (2-core CPU): training within 15 minutes; HOTA >= 80 on the synthetic val sequences;
QDTrack association at least 5 IDF1 points above the IoU tracker on the same detections.

The same checkpoint also tracks the *training* sequences ("train" rows in the report): a
model that scores little better there than on val is underfit (more training helps), one
that scores far better is overfit (more data helps). ``--set train.epochs=12 --set
'train.lr_steps=[11]' --out benchmarks/results/synthetic_12ep.json`` trains two epochs more
than the 15-minute budget allows.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _quality import (
    evaluate_both,
    machine,
    print_table,
    timed_training,
    track_sequences,
    write_report,
)

from qdtrack.config import load_config
from qdtrack.data.mot import list_sequences
from qdtrack.data.synth import SynthConfig, generate

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "params.yaml"))
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_synthetic"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "synthetic.json"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, as for qdtrack train (repeatable)",
    )
    args = parser.parse_args()
    work = Path(args.work)
    os.chdir(REPO)  # the source paths in params.yaml are relative to the repository
    config = load_config(args.config, args.set)
    data = REPO / "data" / "synth"
    if not (data / "manifest.json").is_file():
        generate(data, SynthConfig(), seed=0)
    checkpoint, train_seconds = timed_training(config, work / "train")
    val = list_sequences(data / "val")
    speed = track_sequences(checkpoint, val, work / "track")
    metrics = evaluate_both(data / "val", work / "track", benchmark="MOT17", split="full")
    track_sequences(checkpoint, list_sequences(data / "train"), work / "track_train", render=False)
    train_metrics = evaluate_both(
        data / "train", work / "track_train", benchmark="MOT17", split="full"
    )
    rows = [
        {"name": "QDTrack (CPU config)", **metrics["qdtrack"]},
        {"name": "IoU tracker, same detections", **metrics["iou"]},
        {"name": "QDTrack on train sequences", **train_metrics["qdtrack"]},
    ]
    print(f"training: {train_seconds / 60:.1f} min; tracking: {speed['fps']:.1f} frames/s")
    print_table(rows)
    gap = metrics["qdtrack"]["IDF1"] - metrics["iou"]["IDF1"]
    goals = {
        "train_minutes_le_15": train_seconds <= 15 * 60,
        "hota_ge_80": metrics["qdtrack"]["HOTA"] >= 80,
        "idf1_gap_ge_5": gap >= 5,
    }
    print(f"IDF1 gap {gap:+.2f}; goals: {goals}")
    write_report(
        Path(args.out),
        {
            "config": os.path.relpath(args.config, REPO),
            "overrides": args.set,
            "train_seconds": round(train_seconds, 1),
            "track_fps": round(speed["fps"], 2),
            "epochs": config.train.epochs,
            "metrics": metrics,
            "train_sequence_metrics": train_metrics,
            "idf1_gap": round(gap, 3),
            "goals": goals,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
