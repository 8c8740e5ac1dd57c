"""Per-frame tracker latency for (detections, memory tracks) sizes with 256-d embeddings.

Each timed call starts from the same snapshot (restored untimed), so the memory really
holds the stated number of tracks. Runs on one core (BLAS threads pinned to 1).

    python benchmarks/bench_tracker.py [--repeats 300] [--out benchmarks/results/tracker.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from qdtrack.structures import Detections  # noqa: E402
from qdtrack.trackers import IoUTracker, QuasiDenseTAOTracker, QuasiDenseTracker  # noqa: E402

SIZES = [(10, 10), (50, 100), (100, 200), (300, 500)]
DIM = 256
GOAL_MS = 1.0  # median at (100, 200), QuasiDenseTracker


def grid_boxes(n: int, offset: float = 0.0) -> np.ndarray:
    """Non-overlapping 20x40 boxes on a grid (so duplicate removal keeps them all)."""
    cols = 40
    i = np.arange(n)
    x, y = (i % cols) * 30.0 + offset, (i // cols) * 50.0
    return np.stack([x, y, x + 20, y + 40], axis=1).astype(np.float32)


def scenario(n_dets: int, n_tracks: int, rng: np.random.Generator):
    """A tracker whose memory holds ``n_tracks`` tracks and a frame of ``n_dets``."""
    identity = rng.normal(size=(n_tracks + n_dets, DIM)).astype(np.float32)
    warm = Detections(
        grid_boxes(n_tracks),
        np.full(n_tracks, 0.95, np.float32),
        np.zeros(n_tracks, np.int64),
        identity[:n_tracks],
    )
    seen = min(n_dets, n_tracks) * 3 // 4  # most detections continue a track
    emb = np.concatenate([identity[:seen], identity[n_tracks : n_tracks + n_dets - seen]])
    emb = emb + rng.normal(0, 0.1, size=emb.shape).astype(np.float32)
    scores = rng.choice(np.asarray([0.97, 0.92, 0.7, 0.4], np.float32), size=n_dets)
    frame = Detections(grid_boxes(n_dets, offset=2.0), scores, np.zeros(n_dets, np.int64), emb)
    return warm, frame


def time_tracker(cls, n_dets: int, n_tracks: int, repeats: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    warm, frame = scenario(n_dets, n_tracks, rng)
    tracker = cls(memo_tracklet_frames=30) if cls is not QuasiDenseTAOTracker else cls()
    tracker.update(warm, 0)
    snapshot = tracker.to_bytes()
    assert tracker.num_tracklets == n_tracks
    times = []
    for _ in range(repeats + 5):
        t = cls.from_bytes(snapshot)
        start = time.perf_counter()
        t.update(frame, 1)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times[5:]) * 1e3
    return {
        "tracker": cls.__name__,
        "detections": n_dets,
        "tracks": n_tracks,
        "median_ms": round(float(np.median(ms)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", default="benchmarks/results/tracker.json")
    args = parser.parse_args()
    rows = [
        time_tracker(cls, n, m, args.repeats)
        for cls in (QuasiDenseTracker, QuasiDenseTAOTracker, IoUTracker)
        for n, m in SIZES
    ]
    print(f"{'tracker':<22}{'dets':>6}{'tracks':>8}{'median ms':>12}{'p99 ms':>10}")
    for r in rows:
        print(
            f"{r['tracker']:<22}{r['detections']:>6}{r['tracks']:>8}"
            f"{r['median_ms']:>12.3f}{r['p99_ms']:>10.3f}"
        )
    goal = next(r for r in rows if r["tracker"] == "QuasiDenseTracker" and r["detections"] == 100)
    verdict = "meets" if goal["median_ms"] < GOAL_MS else "MISSES"
    print(f"goal: QuasiDenseTracker (100, 200) median < {GOAL_MS} ms: {verdict}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "threads": 1}
    out.write_text(json.dumps({"embedding_dim": DIM, "machine": machine, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
