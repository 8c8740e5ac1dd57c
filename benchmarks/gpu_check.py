"""One-call GPU check: GPU tests, TensorRT FP16 engine + parity, GPU speeds, AMP training.

On a machine with a CUDA GPU, in at most about 8 minutes (``--budget-s``, default 480):

1. **GPU tests**: ``pytest -m gpu`` (AMP training and inference, the TensorRT plan export);
2. **TensorRT FP16 engine** of the reference R-50 model (``configs/qdtrack_r50_mot17_half.yaml``)
   exported for 1088x608 frames (a 1920x1080 frame after the reference resize), built with
   ``qdtrack.export.tensorrt_engine.build_engine``; **parity**: its detections on a frame
   against ONNX Runtime float32 (paired detections, box and score differences);
3. **frames/s** at batch 1 and 8 of PyTorch eager (float32), ONNX Runtime CUDA (the
   single-frame graph at batch 1, the batched graph at batch 8) and TensorRT FP16 (the
   plan at batch 1; at batch 8 the batched graph under ONNX Runtime's TensorRT provider in
   FP16, as ``--trt-fp16`` serves it, when this ONNX Runtime has that provider);
4. **AMP training** iterations/s at the paper configuration (R-50, 1088x608, 2 pairs per
   GPU, float16 autocast), as ``bench_model_speed`` times it.

Random weights with BatchNorm statistics set from a frame (``bench_export``): speeds are
those of a trained model; detections are not meaningful but parity is. Every section runs
even if another fails; its error is recorded. Writes one JSON with the card's name
(``benchmarks/results/gpu_check.json``) and prints a summary.

    python benchmarks/gpu_check.py [--budget-s 480] [--out benchmarks/results/gpu_check.json]

Exit codes: 0 every section passed; 1 a section failed (see the JSON); 3 **no CUDA GPU**:
nothing was checked, no JSON is written, and a one-line message on stderr says so (so a CI
job on a CPU runner can tell "skipped" from "passed").
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NO_GPU_EXIT = 3
R50_CONFIG = "configs/qdtrack_r50_mot17_half.yaml"
FRAME_WH = (1920, 1080)  # resized to 1088x612 (padded 1088x640 in the graph)
BATCHES = (1, 8)
TIMED_RUNS = 10


def gpu_unavailable_reason() -> str | None:
    """Why this machine cannot run the check (``None`` when torch sees a CUDA GPU)."""
    import torch

    visible = torch.cuda.is_available()
    return None if visible else "no CUDA GPU is visible to PyTorch (torch.cuda.is_available())"


class Check:
    """Runs named sections within a time budget; records results or errors."""

    def __init__(self, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s
        self.sections: dict[str, Any] = {}
        self.failed: list[str] = []

    def run(self, name: str, section: Callable[[], Any]) -> Any:
        if time.monotonic() > self.deadline:
            self.sections[name] = {"status": "skipped", "reason": "time budget spent"}
            self.failed.append(name)
            return None
        began = time.monotonic()
        try:
            value = section()
        except Exception as exc:  # every section is reported, none aborts the check
            self.sections[name] = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=6),
                "seconds": round(time.monotonic() - began, 1),
            }
            self.failed.append(name)
            return None
        self.sections[name] = {
            "status": "ok",
            "seconds": round(time.monotonic() - began, 1),
            **(value if isinstance(value, dict) else {}),
        }
        return value


# ----------------------------------------------------------------------- 1. tests
def gpu_tests(timeout_s: float) -> dict:
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode not in (0, 5):
        raise RuntimeError(f"pytest -m gpu exited {done.returncode}: {summary}")
    return {"summary": summary}


# ----------------------------------------------------------------------- 2. export + engine
def frame() -> np.ndarray:
    width, height = FRAME_WH
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def r50_exports(folder: Path) -> dict:
    """The R-50 model (random, sane statistics) and its single-frame and batched graphs."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_export import _build

    from qdtrack.config import load_config
    from qdtrack.export.batched import export_batched_onnx
    from qdtrack.export.onnx_export import export_onnx, typical_input_hw

    img_scale = tuple(load_config(REPO / R50_CONFIG).model.img_scale)
    model = _build("r50", frame())
    export_onnx(model, folder / "single.onnx", img_scale=img_scale)
    export_batched_onnx(model, folder / "batched.onnx", img_scale=img_scale)
    return {"model": model, "img_scale": img_scale, "input_hw": typical_input_hw(img_scale)}


def build_plan(folder: Path, exports: dict) -> dict:
    from qdtrack.export.tensorrt_engine import build_engine

    build_engine(
        folder / "single.onnx",
        folder / "model.plan",
        fp16=True,
        opt_hw=exports["input_hw"],
        max_side=max(exports["img_scale"]),
    )
    return {"plan_mb": round((folder / "model.plan").stat().st_size / 2**20, 1)}


class PlanRunner:
    """The TensorRT plan on one resized frame; outputs as numpy arrays by name."""

    def __init__(self, plan: Path) -> None:
        import tensorrt as trt
        import torch

        self.torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(plan.read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        output = trt.TensorIOMode.OUTPUT
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == output]
        self.input = next(n for n in names if n not in self.outputs)
        self.dtypes = {n: trt.nptype(self.engine.get_tensor_dtype(n)) for n in names}

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        tensor = torch.from_numpy(np.ascontiguousarray(image)).cuda()
        self.context.set_input_shape(self.input, tuple(image.shape))
        self.context.set_tensor_address(self.input, tensor.data_ptr())
        buffers = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.zeros(1, self.dtypes[name])).dtype
            buffers[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, buffers[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return {name: value.cpu().numpy() for name, value in buffers.items()}


def plan_parity(folder: Path, exports: dict) -> dict:
    from qdtrack.export.parity import BOX_RTOL, compare_detections
    from qdtrack.export.runtime import OnnxDetector, prepare_frame, unpack_detections

    image, scale = prepare_frame(frame(), exports["img_scale"])
    plan = unpack_detections(PlanRunner(folder / "model.plan")(image), scale)
    reference = OnnxDetector(folder / "single.onnx", img_scale=exports["img_scale"])
    expected = unpack_detections(reference.infer(image), scale)
    report = compare_detections(plan, expected).to_dict()
    # FP16 moves scores near the thresholds: a few unpaired detections are expected.
    allowed = max(2, len(expected) // 10)
    passed = report["unmatched"] <= allowed and report["max_box_rel_diff"] <= 50 * BOX_RTOL
    if not passed:
        raise RuntimeError(f"TensorRT FP16 disagrees with ONNX Runtime float32: {report}")
    return {"report": report, "allowed_unmatched": allowed}


# ----------------------------------------------------------------------- 3. speeds
def _rate(run: Callable[[], Any], frames_per_run: int, sync: Callable[[], None]) -> float:
    for _ in range(2):
        run()
    sync()
    began = time.perf_counter()
    for _ in range(TIMED_RUNS):
        run()
    sync()
    return round(TIMED_RUNS * frames_per_run / (time.perf_counter() - began), 2)


def speeds(folder: Path, exports: dict) -> dict:
    import onnxruntime as ort
    import torch

    from qdtrack.export.runtime import prepare_frame

    sync = torch.cuda.synchronize
    raw = frame()
    image, _ = prepare_frame(raw, exports["img_scale"])
    batch = np.stack([image] * max(BATCHES))
    model = exports["model"].cuda().eval()
    out: dict[str, Any] = {"eager_float32": {}, "onnxruntime_cuda": {}, "tensorrt_fp16": {}}
    for size in BATCHES:
        frames = [raw] * size
        eager = out["eager_float32"]
        eager[f"batch_{size}"] = _rate(lambda f=frames: model.predict(f), size, sync)
    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        cuda = ["CUDAExecutionProvider"]
        single = ort.InferenceSession(str(folder / "single.onnx"), providers=cuda)
        batched = ort.InferenceSession(str(folder / "batched.onnx"), providers=cuda)
        ort_cuda = out["onnxruntime_cuda"]
        ort_cuda["batch_1"] = _rate(lambda: single.run(None, {"image": image}), 1, sync)
        ort_cuda["batch_8"] = _rate(lambda: batched.run(None, {"image": batch}), 8, sync)
    else:
        out["onnxruntime_cuda"] = {"skipped": f"no CUDAExecutionProvider in {providers}"}
    plan = PlanRunner(folder / "model.plan")
    out["tensorrt_fp16"]["batch_1"] = _rate(lambda: plan(image), 1, sync)
    if "TensorrtExecutionProvider" in providers:
        options = {"trt_fp16_enable": True, "trt_engine_cache_enable": False}
        session = ort.InferenceSession(
            str(folder / "batched.onnx"),
            providers=[("TensorrtExecutionProvider", options), "CUDAExecutionProvider"],
        )
        out["tensorrt_fp16"]["batch_8_ort_trt"] = _rate(
            lambda: session.run(None, {"image": batch}), 8, sync
        )
    else:
        out["tensorrt_fp16"]["batch_8_ort_trt"] = "skipped: no TensorrtExecutionProvider"
    out["frame"] = f"{FRAME_WH[0]}x{FRAME_WH[1]} resized to {image.shape[1]}x{image.shape[0]}"
    return out


# ----------------------------------------------------------------------- 4. training
def amp_training() -> dict:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_model_speed import measure

    from qdtrack.config import load_config

    model_cfg = load_config(REPO / R50_CONFIG).model
    row = measure("r50 paper config", model_cfg, 1088, 608, 2, 10, 2, "cuda")
    return {
        "iterations_per_s": round(1.0 / row["train_step_s"], 2),
        "pairs_per_iteration": row["batch_pairs"],
        "precision": row["train_precision"],
        "peak_memory_mb": row["peak_memory_mb"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=480.0, help="whole check, seconds")
    default_out = REPO / "benchmarks" / "results" / "gpu_check.json"
    parser.add_argument("--out", default=str(default_out), help="the JSON to write")
    args = parser.parse_args(argv)
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(
            f"gpu_check: skipped, nothing was checked: {reason}. Run it on a machine with a "
            f"CUDA GPU (exit code {NO_GPU_EXIT} = no GPU).",
            file=sys.stderr,
        )
        return NO_GPU_EXIT
    import torch

    check = Check(args.budget_s)
    check.run("gpu_tests", lambda: gpu_tests(timeout_s=min(240.0, args.budget_s / 2)))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as name:
        folder = Path(name)
        exports = check.run("r50_export", lambda: r50_exports(folder))
        if exports is not None:
            check.run("tensorrt_engine", lambda: build_plan(folder, exports))
            check.run("tensorrt_parity", lambda: plan_parity(folder, exports))
            check.run("speeds", lambda: speeds(folder, exports))
    check.run("amp_training", amp_training)
    sections = {
        name: {k: v for k, v in value.items() if k != "model"}
        for name, value in check.sections.items()
    }
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "host": platform.node(),
        "sections": sections,
        "failed": check.failed,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for name, value in sections.items():
        print(f"{name:16} {value['status']:8} {value.get('seconds', '')}")
    print(f"wrote {out} ({result['gpu']})")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
