"""Tracking sidecar: overhead over Triton, memory of idle streams, snapshot cost per frame.

Starts the real local stack (Redis + PyTriton serving an exported model + the sidecar
process, as ``make serve`` does) and measures, on this machine:

1. **overhead** at 1, 8 and 32 concurrent streams (each stream its own keep-alive
   connection, sending its next frame when the previous answer arrives; 640x360 JPEG
   frames): client end-to-end latency minus the Triton call time that the sidecar reports
   in ``Server-Timing`` — goal p99 < 10 ms. Also split into the sidecar's handler time
   minus Triton ("in sidecar") and the rest (HTTP transport, waiting for a CPU);
2. **idle streams**: RSS growth of a fresh sidecar process after opening 1,000 streams
   and tracking one frame on each (real stack; they stay open during step 1), and of the
   stream manager in-process with 30 tracks x 256-d embeddings per stream (synthetic
   detections) — goal < 200 MB;
3. **snapshot cost** per frame: ``tracker.to_bytes()`` plus the compare-and-set write
   to Redis, for 10 / 30 / 100 tracks with 256-d embeddings — goal < 1 ms.

    python benchmarks/bench_sidecar.py [--repository REPO] [--seconds 15]

Without ``--repository`` a tiny model (ResNet-18, FPN 32, 160 px input, random weights
widened so that it detects) is exported to ``runs/bench_serving/``. On 2+ cores Triton is
pinned to core 0 and the sidecar, Redis and the load generator to core 1 (``--no-pin`` to
share both). Needs ``make setup-serving``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from serving.launch import local_stack, sidecar_env_for, start_redis

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "runs" / "bench_serving"
CONCURRENCY = (1, 8, 32)
OVERHEAD_GOAL_MS = 10.0
IDLE_GOAL_MB = 200.0
SNAPSHOT_GOAL_MS = 1.0
FRAME_W, FRAME_H = 640, 360
WARMUP_S = 3.0  # per concurrency level, not measured
TINY_MODEL = [
    "model.depth=18",
    "model.img_scale=[160, 160]",
    "model.fpn_channels=32",
    "model.representation_size=64",
    "model.roi_sampling_ratio=2",
    "model.embed_conv_channels=32",
    "model.embed_num_convs=1",
    "model.embed_fc_channels=64",
    "model.embed_channels=32",
    "tracker.init_score_thr=0.3",
    "tracker.obj_score_thr=0.2",
]


# ----------------------------------------------------------------------- model and frames
def tiny_repository(folder: Path) -> Path:
    """Export the tiny model once (a checkpoint of random weights that detect)."""
    repository = folder / "repository"
    if (repository / "qdtrack" / "1" / "export.json").exists():
        return repository
    import torch

    from qdtrack.checkpoint import checkpoint_state, save_checkpoint
    from qdtrack.config import load_config
    from qdtrack.export.repository import export_repository
    from qdtrack.model.qdtrack import build_qdtrack

    folder.mkdir(parents=True, exist_ok=True)
    config = load_config(REPO / "params.yaml", TINY_MODEL)
    torch.manual_seed(0)
    model = build_qdtrack(config.model)
    with torch.no_grad():  # as tests/serving: spread the scores, separate the embeddings
        model.detector.roi_heads.box_predictor.cls_score.weight.normal_(0.0, 1.0)
        model.track_head.embed_head.fc_embed.weight.normal_(0.0, 0.3)
    checkpoint = folder / "tiny.pt"
    save_checkpoint(checkpoint, checkpoint_state(model, config))
    export_repository(checkpoint, repository, force=True)
    return repository


def synthetic_frames(count: int = 60, seed: int = 0) -> list[bytes]:
    """640x360 JPEGs of a textured background with 8 figures walking across."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 255, (FRAME_H, FRAME_W, 3), np.uint8), (0, 0), 3)
    start = rng.uniform([0, 60], [FRAME_W - 60, FRAME_H - 140], size=(8, 2))
    speed = rng.uniform(-4, 4, size=(8, 2))
    colours = rng.integers(0, 255, (8, 3))
    frames = []
    for index in range(count):
        image = background.copy()
        for (x, y), colour in zip(start + speed * index, colours, strict=True):
            x0, y0 = int(x) % (FRAME_W - 40), int(y) % (FRAME_H - 100)
            cv2.rectangle(image, (x0, y0), (x0 + 40, y0 + 100), [int(c) for c in colour], -1)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        frames.append(buf.tobytes())
    return frames


# ----------------------------------------------------------------------- 1. overhead
def _server_timing(header: str) -> dict[str, float]:
    stages = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            stages[name] = float(duration)
    return stages


class Camera:
    """One stream's client: a keep-alive HTTP/1.1 connection writing pre-built requests.

    A minimal client on purpose: the load generator shares the 2 cores with the sidecar
    and Triton, and httpx's per-request CPU cost would show up as sidecar overhead.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "image/jpeg"
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        assert self.reader is not None
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        payload = await self.reader.readexactly(int(headers.get("content-length", 0)))
        return int(status_line.split()[1]), headers, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _open_cameras(url: str, names: list[str]) -> list[tuple[Camera, str]]:
    host, port = url.removeprefix("http://").split(":")
    cameras = [(Camera(host, int(port)), name) for name in names]
    for camera, name in cameras:  # one by one, before any frame is timed
        status, _, payload = await camera.request("PUT", f"/v1/streams/{name}")
        if status not in (200, 201):
            raise RuntimeError(f"open {name}: {status} {payload[:200]!r}")
    return cameras


async def _stream_load(
    camera: Camera, stream: str, frames: list[bytes], stop_at: float, rows: list
) -> None:
    index = 0
    try:
        while time.monotonic() < stop_at:
            body = frames[index % len(frames)]
            start = time.perf_counter()
            status, headers, payload = await camera.request(
                "POST", f"/v1/streams/{stream}/frames/{index}", body
            )
            e2e_ms = (time.perf_counter() - start) * 1e3
            if status != 200:
                raise RuntimeError(f"{stream} frame {index}: {status} {payload[:200]!r}")
            stages = _server_timing(headers["server-timing"])
            rows.append((e2e_ms, stages, len(json.loads(payload)["tracks"]), start))
            index += 1
        await camera.request("DELETE", f"/v1/streams/{stream}")
    finally:
        await camera.close()


async def _run_streams(
    url: str, names: list[str], frames: list[bytes], warmup: float, seconds: float
) -> tuple[list, float]:
    """Run the streams for ``warmup + seconds``; the rows after the warm-up, and their span.

    Streams start together, so their first frames arrive as one burst; the warm-up lets
    them spread out over Triton's queue as independent cameras would be.
    """
    cameras = await _open_cameras(url, names)
    rows: list = []
    begin = time.perf_counter()
    stop_at = time.monotonic() + warmup + seconds
    await asyncio.gather(*(_stream_load(c, n, frames, stop_at, rows) for c, n in cameras))
    measured = [r for r in rows if r[3] >= begin + warmup]
    return measured, time.perf_counter() - begin - warmup


async def overhead_run(
    url: str, concurrency: int, frames: list[bytes], seconds: float, warmup: float = WARMUP_S
) -> dict:
    """``concurrency`` streams for ``seconds`` (after ``warmup``); latency percentiles.

    Each stream has its own keep-alive connection (one camera, one client); streams are
    opened before the timed frames (opening 32 at once is a burst of its own).
    """
    # The load generator's own collector pauses (tens of ms over its imported libraries)
    # would land in the measured latency: freeze what exists, as the sidecar does.
    gc.collect()
    gc.freeze()
    names = [f"c{concurrency}-{i}" for i in range(concurrency)]
    rows, elapsed = await _run_streams(url, names, frames, warmup, seconds)
    e2e = np.array([r[0] for r in rows])
    inference = np.array([r[1]["inference"] for r in rows])
    server = np.array([r[1]["total"] - r[1]["inference"] for r in rows])
    outside = e2e - np.array([r[1]["total"] for r in rows])  # HTTP, queues, both event loops

    def pct(values: np.ndarray, q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    stages = ("receive", "decode", "association", "persistence")
    stage_p50 = {stage: pct(np.array([r[1][stage] for r in rows]), 50) for stage in stages}
    stage_p99 = {stage: pct(np.array([r[1][stage] for r in rows]), 99) for stage in stages}
    return {
        "streams": concurrency,
        "frames": len(rows),
        "frames_per_s": round(len(rows) / elapsed, 1),
        "e2e_p50_ms": pct(e2e, 50),
        "e2e_p99_ms": pct(e2e, 99),
        "triton_p50_ms": pct(inference, 50),
        "overhead_p50_ms": pct(e2e - inference, 50),
        "overhead_p99_ms": pct(e2e - inference, 99),
        "server_p50_ms": pct(server, 50),
        "server_p99_ms": pct(server, 99),
        "outside_handler_p50_ms": pct(outside, 50),
        "outside_handler_p99_ms": pct(outside, 99),
        "stage_p50_ms": stage_p50,
        "stage_p99_ms": stage_p99,
        "tracks_per_frame": round(float(np.mean([r[2] for r in rows])), 1),
    }


# ----------------------------------------------------------------------- 2. idle streams
def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def idle_streams_real(url: str, pid: int, frame: bytes, count: int) -> dict:
    """Open ``count`` streams on the real sidecar, one frame each, then measure its RSS."""
    before = rss_mb(pid)
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> int:
            async with gate:
                await client.put(f"/v1/streams/idle-{i}")
                r = await client.post(
                    f"/v1/streams/idle-{i}/frames/0",
                    content=frame,
                    headers={"Content-Type": "image/jpeg"},
                )
                return len(r.json()["tracks"])

        tracks = await asyncio.gather(*(one(i) for i in range(count)))
        metrics = (await client.get("/metrics")).text
    active = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("qdtrack_sidecar_active_streams ")
    )
    after = rss_mb(pid)
    return {
        "where": "sidecar process, real stack (tiny model, 32-d embeddings)",
        "streams": int(active),
        "tracks_per_stream": round(float(np.mean(tracks)), 1),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(after - before, 1),
        "kb_per_stream": round((after - before) * 1024 / count, 1),
    }


def idle_streams_synthetic(count: int, tracks: int = 30, dim: int = 256) -> dict:
    """Stream manager in-process: ``count`` streams holding ``tracks`` x ``dim`` each."""
    from qdtrack.export.serving_contract import ServingContract
    from qdtrack.structures import Detections
    from serving.sidecar.metrics import SidecarMetrics
    from serving.sidecar.settings import Settings
    from serving.sidecar.state import SaveOutcome, StreamRecord
    from serving.sidecar.streams import StreamManager
    from serving.sidecar.triton_client import Inference

    rng = np.random.default_rng(0)
    x = np.arange(tracks, dtype=np.float32) * 50
    boxes = np.stack([x, np.zeros_like(x), x + 40, np.full_like(x, 100)], axis=1)
    embeds = rng.normal(size=(tracks, dim)).astype(np.float32)

    contract = ServingContract(
        model_version="1",
        img_scale=(64, 64),
        class_names=("pedestrian",),
        tracker={"type": "qdtrack"},
        embedding_dim=dim,
        max_detections=100,
    )

    class Detector:
        async def detect(self, image: np.ndarray) -> Inference:
            dets = Detections(
                boxes, np.full(tracks, 0.95, np.float32), np.zeros(tracks, np.int64), embeds
            )
            return Inference(dets, "1", 0.0, contract)

        async def model_ready(self) -> bool:
            return True

        async def close(self) -> None:
            return None

    class NullStore:  # state goes to Redis in production; here we measure the process only
        async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
            return True

        async def save(self, *args: Any) -> SaveOutcome:
            return SaveOutcome.SAVED

    frame = np.zeros((4, 4, 3), np.uint8)  # decoded pixels; the fake detector ignores them

    async def run() -> float:
        manager = StreamManager(
            settings=Settings(max_streams=count + 1),
            store=NullStore(),  # type: ignore[arg-type]
            detector=Detector(),
            metrics=SidecarMetrics(),
        )
        gc.collect()
        before = rss_mb(os.getpid())
        for i in range(count):
            await manager.open(f"s{i}")
            for index in range(3):
                await manager.push(f"s{i}", index, lambda: frame)
        gc.collect()
        return rss_mb(os.getpid()) - before

    growth = asyncio.run(run())
    return {
        "where": f"stream manager in-process ({tracks} tracks x {dim}-d per stream)",
        "streams": count,
        "tracks_per_stream": tracks,
        "growth_mb": round(growth, 1),
        "kb_per_stream": round(growth * 1024 / count, 1),
    }


# ----------------------------------------------------------------------- 3. snapshot
def snapshot_cost(redis_port: int, repeats: int = 500, dim: int = 256) -> list[dict]:
    """Serialise a tracker with N tracks and compare-and-set it into Redis, per frame."""
    from qdtrack.structures import Detections
    from qdtrack.trackers import QuasiDenseTracker
    from serving.sidecar.state import RedisStore, SaveOutcome, StreamRecord, Version

    rows = []
    for tracks in (10, 30, 100):
        rng = np.random.default_rng(tracks)
        x = (np.arange(tracks) % 40) * 50.0
        y = (np.arange(tracks) // 40) * 120.0
        boxes = np.stack([x, y, x + 40, y + 100], axis=1)
        tracker = QuasiDenseTracker()
        for frame_id in range(2):
            emb = rng.normal(size=(tracks, dim)).astype(np.float32)
            scores = np.full(tracks, 0.95, np.float32)
            dets = Detections(boxes.astype(np.float32), scores, np.zeros(tracks, np.int64), emb)
            tracker.update(dets, frame_id)
        result = (
            b'{"tracks":[' + b",".join([b'{"track_id":1,"box_xyxy":[1,2,3,4]}'] * tracks) + b"]}"
        )

        async def run(tracker: QuasiDenseTracker = tracker, result: bytes = result) -> tuple:
            store = RedisStore(f"redis://127.0.0.1:{redis_port}/0")
            first = StreamRecord("qdtrack", tracker.to_bytes())
            await store.create("bench", first, 60)
            serialise, total = [], []
            for index in range(repeats):
                start = time.perf_counter()
                record = StreamRecord(
                    "qdtrack",
                    tracker.to_bytes(),
                    index,
                    "1",
                    results=[(i, result) for i in range(max(0, index - 7), index + 1)],
                    generation=first.generation,
                )
                middle = time.perf_counter()
                expected = Version.of(first.generation, index - 1 if index else None)
                outcome = await store.save("bench", record, expected, 60)
                end = time.perf_counter()
                assert outcome is SaveOutcome.SAVED
                serialise.append(middle - start)
                total.append(end - start)
            await store.delete("bench", 60)
            await store.close()
            return np.array(serialise) * 1e3, np.array(total) * 1e3, len(record.state)

        serialise, total, size = asyncio.run(run())
        rows.append(
            {
                "tracks": tracks,
                "embedding_dim": dim,
                "state_kb": round(size / 1024, 1),
                "serialise_p50_ms": round(float(np.median(serialise)), 3),
                "total_p50_ms": round(float(np.median(total)), 3),
                "total_p99_ms": round(float(np.percentile(total, 99)), 3),
            }
        )
    return rows


# ----------------------------------------------------------------------- report
def print_report(result: dict) -> None:
    print(f"\nsidecar overhead = client e2e - Triton, {FRAME_W}x{FRAME_H} JPEG, {result['cpu']}")
    print(f"pinning: {result['pinning']}; ms; 'in sidecar' = handler time - Triton")
    print(
        f"{'streams':>7}{'frames/s':>10}{'e2e p50':>9}{'triton p50':>11}{'ovh p50':>9}"
        f"{'ovh p99':>9}{'in-sc p99':>10}{'rest p99':>9}  stage p50 (decode/assoc/persist)"
    )
    for r in result["overhead"]:
        s = r["stage_p50_ms"]
        print(
            f"{r['streams']:>7}{r['frames_per_s']:>10.1f}{r['e2e_p50_ms']:>9.1f}"
            f"{r['triton_p50_ms']:>11.1f}{r['overhead_p50_ms']:>9.2f}{r['overhead_p99_ms']:>9.2f}"
            f"{r['server_p99_ms']:>10.2f}{r['outside_handler_p99_ms']:>9.2f}  "
            f"{s['decode']}/{s['association']}/{s['persistence']}"
        )
    worst = max(r["overhead_p99_ms"] for r in result["overhead"])
    verdict = "meets" if worst < OVERHEAD_GOAL_MS else "MISSES"
    print(f"goal: overhead p99 < {OVERHEAD_GOAL_MS} ms at every concurrency: {verdict}")
    print("\nidle streams")
    for r in result["idle_streams"]:
        print(
            f"  {r['streams']} streams, {r['where']}: +{r['growth_mb']} MB "
            f"({r['kb_per_stream']} KB/stream, {r['tracks_per_stream']} tracks/stream)"
        )
    worst_mb = max(r["growth_mb"] for r in result["idle_streams"])
    verdict = "meets" if worst_mb < IDLE_GOAL_MB else "MISSES"
    print(f"goal: 1,000 idle streams < {IDLE_GOAL_MB:.0f} MB: {verdict}")
    print("\nsnapshot per frame (to_bytes + compare-and-set in Redis)")
    print(f"{'tracks':>7}{'state KB':>10}{'serialise p50':>15}{'total p50':>11}{'total p99':>11}")
    for r in result["snapshot"]:
        print(
            f"{r['tracks']:>7}{r['state_kb']:>10.1f}{r['serialise_p50_ms']:>15.3f}"
            f"{r['total_p50_ms']:>11.3f}{r['total_p99_ms']:>11.3f}"
        )
    at30 = next(r for r in result["snapshot"] if r["tracks"] == 30)
    verdict = "meets" if at30["total_p50_ms"] < SNAPSHOT_GOAL_MS else "MISSES"
    print(f"goal: snapshot < {SNAPSHOT_GOAL_MS} ms per frame (30 tracks, median): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default=None, help="model repository (default: tiny)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per concurrency level")
    parser.add_argument("--idle-streams", type=int, default=1000)
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--out", default="benchmarks/results/sidecar.json")
    parser.add_argument("--synthetic-idle", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.synthetic_idle is not None:
        print(json.dumps(idle_streams_synthetic(args.synthetic_idle)))
        return
    repository = Path(args.repository) if args.repository else tiny_repository(WORK)
    frames = synthetic_frames()
    logs = WORK / "logs"
    result: dict[str, Any] = {
        "cpu": f"{os.cpu_count()}-core {platform.machine()} CPU, no GPU",
        "model": json.loads((repository / "qdtrack" / "1" / "export.json").read_text()).get(
            "model_version"
        ),
        "frame": f"{FRAME_W}x{FRAME_H} JPEG",
        "triton": "PyTriton 0.7.0 (tritonserver 2.51.0), onnxruntime 1.32.0, 1 thread",
    }
    pins: dict[str, Any] = {}
    if not args.no_pin and (os.cpu_count() or 1) >= 2:
        # Triton on core 0; sidecar, Redis and this load generator on core 1 (as separate
        # containers with CPU limits would be; unpinned, ORT and the sidecar trade places).
        pins = {"triton_cpus": [0], "sidecar_cpus": [1]}
        os.sched_setaffinity(0, {1})
    result["pinning"] = pins or "none"
    env = sidecar_env_for(repository)
    with local_stack(repository, logs, sidecar_env=env, **pins) as services:
        url = f"http://127.0.0.1:{services['sidecar'].ports['http']}"
        asyncio.run(overhead_run(url, 1, frames, 1.0))  # first-call initialisation
        # measured on the fresh process; the streams stay open during the overhead runs
        result["idle_streams"] = [
            asyncio.run(
                idle_streams_real(url, services["sidecar"].pid, frames[0], args.idle_streams)
            )
        ]
        result["overhead"] = [
            asyncio.run(overhead_run(url, c, frames, args.seconds)) for c in CONCURRENCY
        ]
    # in a fresh interpreter: RSS growth in this one depends on what it freed before
    fresh = subprocess.run(
        [sys.executable, __file__, "--synthetic-idle", str(args.idle_streams)],
        capture_output=True,
        text=True,
        check=True,
    )
    result["idle_streams"].append(json.loads(fresh.stdout.strip().splitlines()[-1]))
    redis = start_redis(logs)
    try:
        result["snapshot"] = snapshot_cost(redis.ports["redis"])
    finally:
        redis.stop()
    print_report(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
