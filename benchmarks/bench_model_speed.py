"""Training throughput, inference frames per second and peak memory of the network.

    python benchmarks/bench_model_speed.py [--steps 10] [--frames 10] [--out ...]

Rows: the CPU configuration (params.yaml) at its input size, and the reference R-50
configuration at 1088x608 (MOT17 frames after the reference resize). On a machine with
CUDA the same rows also run on the GPU, with AMP for training as the configs do.
Random weights; inference timings are therefore a worst case for post-processing
(every image yields the maximum number of proposals and detections).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from qdtrack.config import ModelConfig, load_config
from qdtrack.data.pairs import TrainBatch
from qdtrack.model.preprocess import batch_images
from qdtrack.model.qdtrack import build_qdtrack

REPO = Path(__file__).resolve().parents[1]


def synthetic_batch(size: int, width: int, height: int, rng: np.random.Generator) -> TrainBatch:
    """A batch of random key/reference pairs with 8 matched boxes each."""

    def images() -> list[torch.Tensor]:
        return [
            torch.from_numpy(rng.uniform(0, 255, (3, height, width)).astype(np.float32))
            for _ in range(size)
        ]

    boxes, ids = [], []
    for _ in range(size):
        xy = rng.uniform(0, [width - 80, height - 160], size=(8, 2))
        boxes.append(
            torch.from_numpy(np.hstack([xy, xy + np.array([40.0, 100.0])]).astype(np.float32))
        )
        ids.append(torch.arange(1, 9))
    labels = [torch.zeros(8, dtype=torch.int64) for _ in range(size)]
    return TrainBatch(
        key_images=batch_images(images()),
        ref_images=batch_images(images()),
        key_boxes_xyxy=boxes,
        key_labels=labels,
        key_instance_ids=ids,
        ref_boxes_xyxy=[b + 3 for b in boxes],
        ref_labels=labels,
        ref_instance_ids=ids,
        gt_match_indices=[torch.arange(8) for _ in range(size)],
        origins=[None] * size,  # type: ignore[list-item]
    )


def measure(
    name: str,
    model_cfg: ModelConfig,
    width: int,
    height: int,
    batch: int,
    steps: int,
    frames: int,
    device: str,
) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_qdtrack(model_cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    amp = device == "cuda"
    scaler = torch.amp.GradScaler(device, enabled=amp)
    data = synthetic_batch(batch, width, height, rng).to(device)
    model.train()
    times = []
    for _ in range(steps + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device, dtype=torch.float16, enabled=amp):
            loss = sum(model(data, torch.Generator().manual_seed(0)).values())
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    step = float(np.median(times[2:]))
    model.eval()
    frame = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    infer = []
    for _ in range(frames + 2):
        t = time.perf_counter()
        model.predict([frame])
        if device == "cuda":
            torch.cuda.synchronize()
        infer.append(time.perf_counter() - t)
    per_frame = float(np.median(infer[2:]))
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "name": name,
        "device": device,
        "input": f"{width}x{height}",
        "batch_pairs": batch,
        "train_step_s": round(step, 3),
        "train_pairs_per_s": round(batch / step, 2),
        "infer_ms_per_frame": round(per_frame * 1e3, 1),
        "infer_fps": round(1 / per_frame, 2),
        "peak_memory_mb": round(peak, 0),
        "peak_memory_kind": "CUDA allocated" if device == "cuda" else "process max RSS",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "model_speed.json"))
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    cpu_cfg = load_config(REPO / "params.yaml").model
    ref_cfg = ModelConfig()
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        side = int(max(cpu_cfg.img_scale))
        rows.append(
            measure(
                "CPU config (ResNet-18)",
                cpu_cfg,
                side,
                side * 7 // 12,
                4,
                args.steps,
                args.frames,
                device,
            )
        )
        steps = args.steps if device == "cuda" else 2
        rows.append(
            measure(
                "reference R-50",
                replace(ref_cfg),
                1088,
                608,
                2 if device == "cuda" else 1,
                steps,
                args.frames,
                device,
            )
        )
    cols = [
        "name",
        "device",
        "input",
        "batch_pairs",
        "train_pairs_per_s",
        "infer_fps",
        "infer_ms_per_frame",
        "peak_memory_mb",
    ]
    print("  ".join(f"{c:>18}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]!s:>18}" for c in cols))
    report = {
        "rows": rows,
        "machine": {
            "machine": platform.machine(),
            "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
