"""Training throughput, inference frames per second and peak memory of the network.

    python benchmarks/bench_model_speed.py [--steps 10] [--frames 10] [--out ...]

Rows: the CPU configuration (params.yaml) at its input size, and the reference R-50
configuration at 1088x608 (MOT17 frames after the reference resize). On a machine with
CUDA the same rows also run on the GPU, with AMP for training as the configs do. On a CPU
with native bfloat16 the CPU configuration is timed twice, float32 and with the bfloat16
autocast of ``train.cpu_bf16``, and the ratio printed.
Random weights; inference timings are therefore a worst case for post-processing
(every image yields the maximum number of proposals and detections).

A second table times RoIAlign's backward on a training-sized batch of the CPU config
(8 images, 128 channels, P2 of a 384x224 input, 2,048 RoIs, 1 sample per bin):
torchvision's CPU kernel against the vectorised one training uses on a CPU.
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
from torchvision.ops import roi_align

from qdtrack.config import ModelConfig, TrainConfig, load_config
from qdtrack.model.inputs import TrainBatch
from qdtrack.model.preprocess import batch_images
from qdtrack.model.qdtrack import build_qdtrack
from qdtrack.model.roi_extractor import roi_align_cpu_training
from qdtrack.train import autocast_dtype, cpu_bf16_supported

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
    cpu_bf16: bool = False,
) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_qdtrack(model_cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    # the autocast training itself would use: float16 on CUDA, bfloat16 with cpu_bf16
    dtype = autocast_dtype(device, TrainConfig(amp=True, cpu_bf16=cpu_bf16), cpu_bf16_supported())
    scaler = torch.amp.GradScaler(device, enabled=dtype is torch.float16)
    data = synthetic_batch(batch, width, height, rng).to(device)
    model.train()
    times = []
    for _ in range(steps + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
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
        "train_precision": str(dtype).removeprefix("torch.") if dtype else "float32",
        "train_step_s": round(step, 3),
        "train_pairs_per_s": round(batch / step, 2),
        "infer_ms_per_frame": round(per_frame * 1e3, 1),
        "infer_fps": round(1 / per_frame, 2),
        "peak_memory_mb": round(peak, 0),
        "peak_memory_kind": "CUDA allocated" if device == "cuda" else "process max RSS",
    }


def roi_align_backward_times(repeats: int = 5) -> dict:
    """Median seconds of RoIAlign forward + backward: torchvision vs the vectorised CPU one."""
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(8, 128, 56, 96, generator=g).requires_grad_()
    corner = torch.rand(2048, 2, generator=g) * torch.tensor([340.0, 180.0])
    size = torch.rand(2048, 2, generator=g) * torch.tensor([40.0, 100.0]) + 8.0
    image = torch.randint(0, 8, (2048, 1), generator=g).float()
    rois = torch.cat([image, corner, corner + size], dim=1)
    grad = torch.randn(2048, 128, 7, 7, generator=g)

    def torchvision_op() -> torch.Tensor:
        return roi_align(feature, rois, (7, 7), 0.25, 1, True)

    def vectorised_op() -> torch.Tensor:
        return roi_align_cpu_training(feature, rois, 7, 0.25, 1)

    out = {}
    for name, op in (("torchvision", torchvision_op), ("vectorised", vectorised_op)):
        times = []
        for _ in range(repeats + 1):
            t = time.perf_counter()
            torch.autograd.grad(op(), feature, grad)
            times.append(time.perf_counter() - t)
        out[f"{name}_s"] = round(float(np.median(times[1:])), 4)
    out["speedup"] = round(out["torchvision_s"] / out["vectorised_s"], 2)
    return out


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
        # float32, then (on a CPU with native bf16) the bfloat16 autocast of train.cpu_bf16
        precisions = [False, True] if device == "cpu" and cpu_bf16_supported() else [False]
        for cpu_bf16 in precisions:
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
                    cpu_bf16=cpu_bf16,
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
        "train_precision",
        "train_pairs_per_s",
        "infer_fps",
        "infer_ms_per_frame",
        "peak_memory_mb",
    ]
    print("  ".join(f"{c:>18}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]!s:>18}" for c in cols))
    cpu_rows = [r for r in rows if r["device"] == "cpu" and r["name"].startswith("CPU config")]
    bf16_speedup = None
    if len(cpu_rows) == 2:
        bf16_speedup = round(cpu_rows[0]["train_step_s"] / cpu_rows[1]["train_step_s"], 2)
        print(f"CPU config training step, bfloat16 autocast vs float32: {bf16_speedup}x")
    backward = roi_align_backward_times()
    print(
        f"RoIAlign forward + backward (8 x 128 x 56 x 96, 2048 RoIs): torchvision "
        f"{backward['torchvision_s']} s, vectorised {backward['vectorised_s']} s "
        f"({backward['speedup']}x)"
    )
    report = {
        "rows": rows,
        "cpu_bf16_train_speedup": bf16_speedup,
        "roi_align_backward": backward,
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
