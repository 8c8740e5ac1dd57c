"""perf_analyzer against the exported model served by PyTriton.

For each model (the tiny 160 px model with random weights that detect, and the trained
CPU configuration that ``make run`` exports to ``runs/export``), PyTriton serves it and
``perf_analyzer`` (from ``tritonclient[all]`` in ``.venv-triton``) drives it over gRPC at
concurrency 1, 2 and 4 with one resized 640x360 frame per request.

    python benchmarks/bench_triton_perf.py [--interval-ms 3000] [--threads 1]

Needs ``make setup-serving``. Writes ``benchmarks/results/triton_perf.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sidecar import TINY_MODEL, WORK, tiny_repository

from serving.launch import TRITON_VENV, start_pytriton

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = "1:4:1"
FRAME_W, FRAME_H = 640, 360


def trained_repository() -> Path | None:
    """The export of ``make run`` (the trained CPU configuration), if it exists."""
    repository = REPO / "runs" / "export"
    return repository if (repository / "qdtrack" / "1" / "model.onnx").exists() else None


def input_shape(repository: Path) -> tuple[int, int]:
    """(h, w) of a 640x360 frame after the model's resize."""
    from qdtrack.resize import rescale_size

    info = json.loads((repository / "qdtrack" / "1" / "export.json").read_text())
    new_w, new_h, _ = rescale_size(FRAME_W, FRAME_H, tuple(info["img_scale"]))
    return new_h, new_w


def perf_analyzer(grpc_port: int, shape: tuple[int, int], interval_ms: int) -> list[dict]:
    """Run perf_analyzer; one row per concurrency from its CSV report."""
    binary = TRITON_VENV / "bin" / "perf_analyzer"
    cuda_lib = (
        TRITON_VENV / "lib" / "python3.11" / "site-packages" / "nvidia" / "cuda_runtime" / "lib"
    )
    env = dict(os.environ, LD_LIBRARY_PATH=str(cuda_lib))
    report = WORK / "perf_analyzer.csv"
    argv = [str(binary), "-m", "qdtrack", "-u", f"127.0.0.1:{grpc_port}", "-i", "grpc"]
    argv += ["--shape", f"image:{shape[0]},{shape[1]},3", "--concurrency-range", CONCURRENCY]
    argv += ["--measurement-interval", str(interval_ms), "-f", str(report)]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    if run.returncode != 0:
        raise RuntimeError(f"perf_analyzer failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    rows = []
    for row in csv.DictReader(io.StringIO(report.read_text())):
        rows.append(
            {
                "concurrency": int(row["Concurrency"]),
                "infer_per_s": round(float(row["Inferences/Second"]), 1),
                "p50_ms": round(int(row["p50 latency"]) / 1000, 1),
                "p99_ms": round(int(row["p99 latency"]) / 1000, 1),
                "server_queue_ms": round(int(row["Server Queue"]) / 1000, 1),
                "server_compute_ms": round(int(row["Server Compute Infer"]) / 1000, 1),
            }
        )
    return sorted(rows, key=lambda r: r["concurrency"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval-ms", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--out", default="benchmarks/results/triton_perf.json")
    args = parser.parse_args()
    models = {"tiny (R-18, FPN 32, 160 px), random": tiny_repository(WORK)}
    trained = trained_repository()
    if trained is not None:
        models["make run model (R-18, FPN 128, 384 px)"] = trained
    else:
        print("runs/export not found (run `make run`): only the tiny model is measured")
    results: list[dict[str, Any]] = []
    for name, repository in models.items():
        shape = input_shape(repository)
        triton = start_pytriton(repository, WORK / "logs", threads=args.threads)
        try:
            rows = perf_analyzer(triton.ports["grpc"], shape, args.interval_ms)
        finally:
            triton.stop()
        results.append({"model": name, "input_hw": list(shape), "rows": rows})
    print(f"\nperf_analyzer, gRPC, PyTriton + onnxruntime ({args.threads} thread), 2-core CPU")
    print(f"{'model':<40}{'input':>9}{'conc':>6}{'infer/s':>9}{'p50 ms':>8}{'p99 ms':>8}")
    for result in results:
        for r in result["rows"]:
            hw = "x".join(str(v) for v in result["input_hw"])
            print(
                f"{result['model']:<40}{hw:>9}{r['concurrency']:>6}{r['infer_per_s']:>9.1f}"
                f"{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "gpu": None}
    payload = {
        "machine": machine,
        "server": "PyTriton 0.7.0 (tritonserver 2.51.0), onnxruntime 1.32.0, "
        f"{args.threads} thread(s)",
        "client": "perf_analyzer (tritonclient[all] 2.51.0), gRPC, random uint8 input",
        "models": results,
        "tiny_model_overrides": TINY_MODEL,
        "trained_model_version": None
        if trained is None
        else json.loads((trained / "qdtrack" / "1" / "export.json").read_text())["model_version"],
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
