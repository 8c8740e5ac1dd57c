"""Time ``qdtrack.evaluation.mot.evaluate_mot`` on the 7 MOT17 train sequences (full and half-val).

The tracker output is a seeded perturbation of the gt pedestrians (box jitter, 5% of boxes
dropped, a few identity swaps), so every metric family has work to do. Goal: the full split
in under 30 s on 2 cores.

    .venv/bin/python benchmarks/bench_evaluate.py [--gt DIR] [--out FILE] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qdtrack.evaluation.mot import evaluate_mot
from qdtrack.io_utils import write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GT = REPO_ROOT.parent / "shared" / "data" / "MOT17-train-gt"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "evaluate.json"

DROP_FRACTION = 0.05
JITTER_STD = 0.03  # of box width / height
SWAPS_PER_SEQUENCE = 3


def perturbed_results(gt_file: Path, rng: np.random.Generator) -> np.ndarray:
    """(N, 6) ``frame, id, x, y, w, h``: jittered gt pedestrians, some dropped, some ids swapped."""
    gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    rows = gt[(gt[:, 7] == 1) & (gt[:, 6] == 1), :6].copy()
    rows[:, 2:4] += rng.normal(0.0, JITTER_STD, size=(len(rows), 2)) * rows[:, 4:6]
    for _ in range(SWAPS_PER_SEQUENCE):
        frame = rng.choice(np.unique(rows[:, 0]))
        ids = np.unique(rows[rows[:, 0] == frame, 1])
        if len(ids) < 2:
            continue
        a, b = rng.choice(ids, size=2, replace=False)
        late = rows[:, 0] >= frame
        is_a, is_b = late & (rows[:, 1] == a), late & (rows[:, 1] == b)
        rows[is_a, 1], rows[is_b, 1] = b, a
    return rows[rng.random(len(rows)) >= DROP_FRACTION]


def write_results(path: Path, rows: np.ndarray) -> None:
    """MOTChallenge 10-column result file, as mmtracking writes it."""
    with path.open("w") as handle:
        for frame, tid, x, y, w, h in rows:
            handle.write(
                f"{int(frame)},{int(tid)},{x:.3f},{y:.3f},{w:.3f},{h:.3f},1.000,-1,-1,-1\n"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", type=Path, default=DEFAULT_GT, help="MOT17-train-gt folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.gt.is_dir():
        print(f"bench_evaluate: gt folder not found: {args.gt}", file=sys.stderr)
        return 2

    rng = np.random.default_rng(args.seed)
    rows_per_split = []
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        results_dir = Path(tmp)
        sequences = sorted(p.name for p in args.gt.iterdir() if (p / "seqinfo.ini").is_file())
        for seq in sequences:
            rows = perturbed_results(args.gt / seq / "gt" / "gt.txt", rng)
            write_results(results_dir / f"{seq}.txt", rows)
        for split in ("full", "half-val"):
            start = time.perf_counter()
            metrics = evaluate_mot(args.gt, results_dir, benchmark="MOT17", split=split)
            seconds = time.perf_counter() - start
            combined = metrics["combined"]
            rows_per_split.append(
                {
                    "split": split,
                    "seconds": round(seconds, 3),
                    "sequences": len(metrics["sequences"]),
                    **{k: combined[k] for k in ("HOTA", "MOTA", "IDF1", "IDSW", "GT_Dets")},
                }
            )

    print(f"{'split':<9}{'seconds':>9}{'HOTA':>9}{'MOTA':>9}{'IDF1':>9}{'IDSW':>7}{'GT_Dets':>9}")
    for r in rows_per_split:
        print(
            f"{r['split']:<9}{r['seconds']:>9.2f}{r['HOTA']:>9.3f}{r['MOTA']:>9.3f}"
            f"{r['IDF1']:>9.3f}{r['IDSW']:>7d}{r['GT_Dets']:>9d}"
        )
    report = {
        "benchmark": "evaluate_mot on MOT17-train-gt (7 sequences), perturbed gt as tracker",
        "gt": os.path.relpath(args.gt.resolve(), REPO_ROOT),
        "seed": args.seed,
        "perturbation": {
            "drop_fraction": DROP_FRACTION,
            "jitter_std_of_size": JITTER_STD,
            "id_swaps_per_sequence": SWAPS_PER_SEQUENCE,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goal_full_seconds": 30.0,
        "results": rows_per_split,
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
