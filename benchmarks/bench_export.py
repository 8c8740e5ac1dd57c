"""Frames per second of the exported graph under ONNX Runtime vs PyTorch eager, on the CPU.

    python benchmarks/bench_export.py [--frames 5] [--rounds 2] [--out ...]

Rows: the CPU configuration (params.yaml) at its input size (384x224) and the reference
R-50 configuration (configs/qdtrack_r50_mot17_half.yaml) at 1088x608, the size of a MOT17
frame after the reference resize. Both paths do the whole per-frame work of ``predict``:
resize, network, detections with embeddings in original-frame pixels. Each engine runs in
its own process: PyTorch with ``torch.set_num_threads(cores)``, ONNX Runtime with the default
graph optimisation (``ORT_ENABLE_ALL``) and ``intra_op_num_threads = cores``; median of
``--frames`` after two warm-up frames; ``--rounds`` alternating processes per engine, the best
median kept. Random weights (seed 0) with BatchNorm statistics set from the frame (see
:func:`_build`): the frame yields 1000 proposals and 100 detections, the worst case for
post-processing. The goal is ONNX Runtime at least 1.3x eager at 1088x608.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from qdtrack.config import ModelConfig, load_config
from qdtrack.export.onnx_export import export_onnx
from qdtrack.export.runtime import OnnxDetector
from qdtrack.model.qdtrack import QDTrack, build_qdtrack
from qdtrack.structures import Detections

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.3
CORES = os.cpu_count() or 1
CONFIGS = {"cpu": "params.yaml", "r50": "configs/qdtrack_r50_mot17_half.yaml"}


def _load_model_config(name: str) -> ModelConfig:
    return load_config(REPO / CONFIGS[name]).model


def _frame(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _build(config_name: str, frame: np.ndarray) -> QDTrack:
    """Random weights (seed 0), BatchNorm statistics set from ``frame``.

    Through a random ResNet whose BatchNorm is the identity (frozen or never trained),
    activations grow by orders of magnitude; the RPN then decodes boxes tens of thousands
    of pixels wide, and RoIAlign's adaptive sampling (``sampling_ratio 0``: about
    (box side / 7)^2 points per bin) dominates the time. Setting each BatchNorm's running
    mean and variance from its input on one frame (one forward, in order) gives unit-scale
    features and boxes of anchor size, as a trained model has. The same frame and seed give
    the same weights in the exporting process and in the eager worker.
    """
    torch.manual_seed(0)
    model = build_qdtrack(_load_model_config(config_name)).eval()

    def set_statistics(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        module.running_mean.copy_(inputs[0].mean((0, 2, 3)))  # type: ignore[operator]
        module.running_var.copy_(inputs[0].var((0, 2, 3)))  # type: ignore[operator]

    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d | nn.BatchNorm2d)]
    hooks = [m.register_forward_pre_hook(set_statistics) for m in norms]
    model.predict([frame])
    for hook in hooks:
        hook.remove()
    return model


def worker(
    engine: str, config_name: str, onnx_path: str, width: int, height: int, frames: int
) -> dict:
    """Time one engine in this (fresh) process: median of ``frames`` after 2 warm-ups."""
    torch.set_flush_denormal(True)
    torch.set_num_threads(CORES)
    frame = _frame(width, height)
    if engine == "eager":
        model = _build(config_name, frame)

        def run() -> list[Detections]:
            return model.predict([frame])
    else:
        img_scale = _load_model_config(config_name).img_scale
        detector = OnnxDetector(onnx_path, img_scale=img_scale, intra_op_threads=CORES)

        def run() -> list[Detections]:
            return detector.predict([frame])

    times = []
    for _ in range(frames + 2):
        began = time.perf_counter()
        (detections,) = run()
        times.append(time.perf_counter() - began)
    return {"seconds": float(np.median(times[2:])), "detections": len(detections)}


def _run_worker(*args: object) -> dict:
    """Each engine runs alone in its own process: ONNX Runtime's and PyTorch's thread pools
    both spin after a call, and sharing 2 cores in one process slows whichever runs next."""
    command = [sys.executable, __file__, "--worker", *(str(a) for a in args)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(name: str, config_name: str, width: int, height: int, frames: int, rounds: int) -> dict:
    """Eager and ONNX Runtime timings of one configuration on one frame size."""
    model = _build(config_name, _frame(width, height))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        began = time.perf_counter()
        export_onnx(model, path, img_scale=model.detector.img_scale)
        export_s = time.perf_counter() - began
        del model
        # Alternate the engines' processes and keep each one's best median: other load on
        # a shared machine then biases neither side.
        runs: dict[str, list[dict]] = {"eager": [], "ort": []}
        for _ in range(rounds):
            for engine, results in runs.items():
                results.append(_run_worker(engine, config_name, path, width, height, frames))
        eager = min(runs["eager"], key=lambda r: r["seconds"])
        ort = min(runs["ort"], key=lambda r: r["seconds"])
        onnx_mb = path.stat().st_size / 2**20
    return {
        "name": name,
        "config": CONFIGS[config_name],
        "input": f"{width}x{height}",
        "eager_ms_per_frame": round(eager["seconds"] * 1e3, 1),
        "ort_ms_per_frame": round(ort["seconds"] * 1e3, 1),
        "eager_fps": round(1 / eager["seconds"], 2),
        "ort_fps": round(1 / ort["seconds"], 2),
        "ort_over_eager": round(eager["seconds"] / ort["seconds"], 2),
        "detections_eager": eager["detections"],
        "detections_ort": ort["detections"],
        "export_s": round(export_s, 1),
        "onnx_mb": round(onnx_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5, help="timed frames per row (median)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "export_speed.json"))
    parser.add_argument("--rounds", type=int, default=2, help="processes per engine (best kept)")
    parser.add_argument("--worker", nargs=6, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, config_name, onnx_path, width, height, frames = args.worker
        result = worker(engine, config_name, onnx_path, int(width), int(height), int(frames))
        print(json.dumps(result))
        return
    torch.set_flush_denormal(True)
    side = int(max(_load_model_config("cpu").img_scale))
    rows = [
        measure("CPU config (ResNet-18)", "cpu", side, side * 7 // 12, args.frames, args.rounds),
        measure("reference R-50", "r50", 1088, 608, args.frames, args.rounds),
    ]
    cols = [
        "name",
        "input",
        "eager_fps",
        "ort_fps",
        "ort_over_eager",
        "eager_ms_per_frame",
        "ort_ms_per_frame",
        "detections_eager",
        "detections_ort",
    ]
    print("  ".join(f"{c:>18}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]!s:>18}" for c in cols))
    ratio = rows[-1]["ort_over_eager"]
    verdict = "meets" if ratio >= GOAL_RATIO else "misses"
    print(f"R-50 at 1088x608: ONNX Runtime {ratio}x eager ({verdict} the {GOAL_RATIO}x goal)")
    report = {
        "rows": rows,
        "goal_ort_over_eager_at_1088x608": GOAL_RATIO,
        "frames": args.frames,
        "rounds": args.rounds,
        "machine": {
            "machine": platform.machine(),
            "cpu_cores": CORES,
            "threads": CORES,
            "processor": platform.processor() or None,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
