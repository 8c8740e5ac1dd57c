"""Serving throughput: {float32, INT8} x {single-frame, batched} graphs, bare and through the stack.

For each of the four exports of one checkpoint (``qdtrack export`` with ``export.int8`` and
``export.batching`` on or off), on this machine:

1. **bare model**: ONNX Runtime with one thread pinned to one core; N streams each hand
   in a frame at once (N = 1, 8, 32): the single-frame graph runs them one by one, the
   batched graph as one batch. Frames/s and the p99 of the time until a stream has its
   answer; frames/s / 10 = the 10-FPS streams one core sustains.
2. **stack**: Redis + PyTriton (one instance, one ORT thread, core 0) + the sidecar
   (core 1), N streams each sending its next 640x360 JPEG when the previous answer
   arrives (``bench_sidecar``'s load generator): frames/s, per-stream frames/s, p99
   end-to-end latency, and the mean batch Triton formed.

The INT8 export runs its quality gate (HOTA and IDF1 on a small synthetic validation set,
float32 vs INT8 in the same run); its figures are recorded. Without ``--checkpoint`` the
model is the CPU default of ``params.yaml`` (ResNet-18, 384 px) with random weights
widened so that they detect: speed is that of a trained model, the gate's HOTA is not.

    python benchmarks/bench_serving_throughput.py [--checkpoint runs/train/last.pt] [--seconds 8]

Needs ``make setup-serving``. Writes ``benchmarks/results/serving_throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from bench_sidecar import overhead_run, synthetic_frames

from qdtrack.cli import main as qdtrack_cli
from qdtrack.export.repository import export_repository
from qdtrack.export.runtime import OnnxDetector, prepare_frame
from qdtrack.io_utils import write_json
from serving.launch import local_stack, sidecar_env_for

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "runs" / "bench_throughput"
STREAMS = (1, 8, 32)
STREAM_FPS = 10.0
INT8_GOAL = 2.0  # INT8 frames/s >= 2x float32
BATCH_GOAL = 1.3  # batched frames/s >= 1.3x single-frame at 32 streams
VARIANTS = {  # name -> export overrides
    "float32": [],
    "float32-batched": ["export.batching=true"],
    "int8": ["export.int8=true"],
    "int8-batched": ["export.int8=true", "export.batching=true"],
}


# ----------------------------------------------------------------------- models
def random_checkpoint(folder: Path, overrides: list[str]) -> Path:
    """The ``params.yaml`` model, random weights that detect, as a project checkpoint.

    ``bench_export``'s random model (BatchNorm statistics from a frame, so features and
    boxes have a trained model's scale), with the classifier and embedding widened as the
    tests do (spread scores, distinct embeddings: no ties for the export's parity check).
    """
    import torch
    from bench_export import _build, _frame

    from qdtrack.checkpoint import checkpoint_state, save_checkpoint
    from qdtrack.config import load_config

    config = load_config(REPO / "params.yaml", overrides)
    width, height = config.model.img_scale[0], config.model.img_scale[1] * 9 // 16
    model = _build("cpu", _frame(width, height))
    with torch.no_grad():
        model.detector.roi_heads.box_predictor.cls_score.weight.normal_(0.0, 1.0)
        model.track_head.embed_head.fc_embed.weight.normal_(0.0, 0.3)
    path = folder / "random.pt"
    save_checkpoint(path, checkpoint_state(model, config))
    return path


def synthetic_data(folder: Path) -> tuple[list[str], Path]:
    """A small synthetic dataset: ``train.sources`` overrides and the converted val set."""
    data, converted = folder / "data", folder / "converted"
    if not (converted / "val.json").is_file():
        synth = ["data", "synth", "--out", str(data), "--seed", "0", "--frames", "24"]
        synth += ["--train-seqs", "1", "--val-seqs", "1", "--crowdhuman-images", "8"]
        assert qdtrack_cli(synth) == 0
    sources = (
        f"train.sources=[{{kind: mot, path: {data / 'train'}, subset: full}}, "
        f"{{kind: crowdhuman, path: {data / 'crowdhuman'}}}]"
    )
    if not (converted / "val.json").is_file():
        convert = ["data", "convert", "--data", str(data), "--out", str(converted)]
        assert qdtrack_cli([*convert, "--set", sources]) == 0
    return [sources], converted


def export_variants(
    checkpoint: Path, folder: Path, sources: list[str], converted: Path, fresh: bool
) -> dict:
    """One model repository per variant (the INT8 ones pass through their gate).

    An existing export of the variant is reused unless ``fresh``.
    """
    repositories = {}
    for name, overrides in VARIANTS.items():
        repository = folder / name
        repositories[name] = repository
        if not fresh and (repository / "qdtrack" / "1" / "export.json").is_file():
            continue
        export_repository(
            checkpoint,
            repository,
            overrides=[*sources, *overrides],
            force=True,
            val_manifest=converted / "val.json",
            val_gt=converted / "val_gt",
        )
    return repositories


# ----------------------------------------------------------------------- 1. bare model
def bare_run(repository: Path, images: list[np.ndarray], streams: int, seconds: float) -> dict:
    """N streams hand in one frame each, repeatedly, to one ORT thread (this core)."""
    detector = OnnxDetector.from_repository(repository, intra_op_threads=1)
    detector.session.run(None, {"image": _feed(detector, images[:1])})  # warm-up
    done: list[float] = []
    frames = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds or frames == 0:
        batch = [images[(frames + i) % len(images)] for i in range(streams)]
        start = time.perf_counter()
        if detector.batched:
            detector.session.run(None, {"image": _feed(detector, batch)})
            done.extend([time.perf_counter() - start] * streams)
        else:
            for image in batch:
                detector.session.run(None, {"image": image})
                done.append(time.perf_counter() - start)
        frames += streams
    elapsed = time.perf_counter() - began
    return {
        "streams": streams,
        "frames": frames,
        "frames_per_s": round(frames / elapsed, 2),
        "p99_ms": round(float(np.percentile(done, 99)) * 1e3, 1),
    }


def _feed(detector: OnnxDetector, images: list[np.ndarray]) -> np.ndarray:
    return np.stack(images) if detector.batched else images[0]


# ----------------------------------------------------------------------- 2. stack
def triton_counts(http_port: int) -> tuple[int, int]:
    """Triton's (inference_count, execution_count) of the model."""
    url = f"http://127.0.0.1:{http_port}/v2/models/qdtrack/stats"
    with urllib.request.urlopen(url, timeout=5) as response:
        (model,) = json.loads(response.read())["model_stats"]
    return int(model["inference_count"]), int(model["execution_count"])


def stack_runs(repository: Path, frames: list[bytes], seconds: float, bare: list) -> list:
    """The stack on ``repository``: one run per stream count.

    Each run lasts at least ``seconds`` and three rounds of every stream's frame at the
    bare model's rate (``bare``), after one round (+1 s) of warm-up: with 32 streams on one
    core a round takes seconds, and a window of one round would count only the fast ones.
    """
    # a short folder: PyTriton's unix sockets live in its workspace (108-byte path limit)
    logs = Path(tempfile.mkdtemp(prefix="qdtrack-bench-"))
    env = sidecar_env_for(repository)
    env["SIDECAR_TRITON_TIMEOUT_S"] = "120"  # 32 streams queue for seconds on one core
    pins: dict[str, Any] = {}
    if (os.cpu_count() or 1) >= 2:
        pins = {"triton_cpus": [0], "sidecar_cpus": [1]}
        os.sched_setaffinity(0, {1})
    rows = []
    try:
        with local_stack(repository, logs, sidecar_env=env, **pins) as services:
            url = f"http://127.0.0.1:{services['sidecar'].ports['http']}"
            http_port = services["triton"].ports["http"]
            asyncio.run(overhead_run(url, 1, frames, 1.0, warmup=0.5))  # first-call set-up
            for streams, reference in zip(STREAMS, bare, strict=True):
                round_s = streams / reference["frames_per_s"]
                window, warmup = max(seconds, 3 * round_s), round_s + 1.0
                before = triton_counts(http_port)
                run = asyncio.run(overhead_run(url, streams, frames, window, warmup=warmup))
                after = triton_counts(http_port)
                inferences, executions = (a - b for a, b in zip(after, before, strict=True))
                rows.append(
                    {
                        "streams": streams,
                        "frames_per_s": run["frames_per_s"],
                        "frames_per_s_per_stream": round(run["frames_per_s"] / streams, 2),
                        "e2e_p50_ms": run["e2e_p50_ms"],
                        "e2e_p99_ms": run["e2e_p99_ms"],
                        "mean_triton_batch": round(inferences / max(executions, 1), 2),
                    }
                )
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------- report
def ratios(result: dict) -> dict:
    """The goals' ratios, bare and through the stack."""

    def fps(kind: str, variant: str, streams: int) -> float:
        (row,) = [r for r in result[kind][variant] if r["streams"] == streams]
        return float(row["frames_per_s"])

    out = {}
    for kind in ("bare", "stack"):
        out[kind] = {
            "int8_vs_float32_single_32": round(fps(kind, "int8", 32) / fps(kind, "float32", 32), 2),
            "int8_vs_float32_batched_32": round(
                fps(kind, "int8-batched", 32) / fps(kind, "float32-batched", 32), 2
            ),
            "batched_vs_single_float32_32": round(
                fps(kind, "float32-batched", 32) / fps(kind, "float32", 32), 2
            ),
            "batched_vs_single_int8_32": round(
                fps(kind, "int8-batched", 32) / fps(kind, "int8", 32), 2
            ),
        }
    return out


def print_report(result: dict) -> None:
    print(f"\n{result['machine']}; model {result['model']}; frames {result['frame']}")
    header = f"{'variant':16} {'where':6} {'streams':>7} {'frames/s':>9} {'per stream':>10}"
    print(header + f" {'p99 ms':>8} {'batch':>6}")
    for variant in VARIANTS:
        for kind in ("bare", "stack"):
            for row in result[kind][variant]:
                per_stream = row["frames_per_s"] / row["streams"]
                p99 = row.get("e2e_p99_ms", row.get("p99_ms"))
                batch = row.get("mean_triton_batch", "")
                print(
                    f"{variant:16} {kind:6} {row['streams']:>7} {row['frames_per_s']:>9.2f} "
                    f"{per_stream:>10.2f} {p99:>8.0f} {batch!s:>6}"
                )
    print("\n10-FPS streams per core (bare model, best stream count):")
    for variant, value in result["streams_per_core"].items():
        print(f"  {variant:16} {value:.2f}")
    r = result["ratios"]
    for kind in ("bare", "stack"):
        print(
            f"{kind}: INT8/float32 {r[kind]['int8_vs_float32_single_32']}x single, "
            f"{r[kind]['int8_vs_float32_batched_32']}x batched (goal >= {INT8_GOAL}); "
            f"batched/single at 32 streams {r[kind]['batched_vs_single_float32_32']}x float32, "
            f"{r[kind]['batched_vs_single_int8_32']}x INT8 (goal >= {BATCH_GOAL})"
        )
    for variant, gate in result["int8_gate"].items():
        print(
            f"INT8 gate ({variant}): HOTA {gate['int8']['hota']:.2f} vs "
            f"{gate['float32']['hota']:.2f}, IDF1 {gate['int8']['idf1']:.2f} vs "
            f"{gate['float32']['idf1']:.2f} (float32), passed {gate['passed']}"
        )


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (``unknown`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: random params.yaml model")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--bare-seconds", type=float, default=3.0, help="per bare measurement")
    parser.add_argument("--fresh", action="store_true", help="re-export even if exported")
    parser.add_argument("--out", default="benchmarks/results/serving_throughput.json")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    sources, converted = synthetic_data(WORK)
    checkpoint = Path(args.checkpoint) if args.checkpoint else random_checkpoint(WORK, sources)
    began = time.perf_counter()
    repositories = export_variants(
        checkpoint, WORK / "repositories", sources, converted, args.fresh
    )
    export_s = time.perf_counter() - began
    frames = synthetic_frames()
    info = json.loads((repositories["int8"] / "qdtrack" / "1" / "export.json").read_text())
    images = [
        prepare_frame(
            cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR),
            (int(info["img_scale"][0]), int(info["img_scale"][1])),
        )[0]
        for f in frames
    ]
    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu_name()}), no GPU, "
        "shared with other jobs",
        "model": ("random-weight " if not args.checkpoint else "")
        + f"{info['model_config']['depth']}-layer ResNet, img_scale {info['img_scale']}",
        "frame": "640x360 JPEG (resized to the model's scale)",
        "triton": "PyTriton (python backend running onnxruntime), 1 instance, 1 thread",
        "export_seconds_all_four": round(export_s, 1),
        "int8_gate": {
            name: json.loads((repo / "qdtrack" / "1" / "export.json").read_text())["int8"]
            for name, repo in repositories.items()
            if name.startswith("int8")
        },
    }
    os.sched_setaffinity(0, {0})
    result["bare"] = {
        name: [bare_run(repo, images, n, args.bare_seconds) for n in STREAMS]
        for name, repo in repositories.items()
    }
    result["streams_per_core"] = {
        name: round(max(r["frames_per_s"] for r in rows) / STREAM_FPS, 2)
        for name, rows in result["bare"].items()
    }
    result["stack"] = {
        name: stack_runs(repo, frames, args.seconds, result["bare"][name])
        for name, repo in repositories.items()
    }
    result["ratios"] = ratios(result)
    print_report(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
