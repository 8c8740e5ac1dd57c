"""Triton killed and restarted under a running stream: the sidecar answers 503 + Retry-After
(never 502), ``qdtrack stream``'s client retries the same frame, and every frame ends with
the ids of an uninterrupted run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from stack_helpers import (
    JPEG,
    require_triton_venv,
    same_tracks,
    sidecar_env,
    sidecar_metric,
    sidecar_url,
    uninterrupted_run,
)

from serving.client import SidecarClient
from serving.launch import Service, start_pytriton, start_sidecar

pytestmark = pytest.mark.integration


def test_triton_restart_mid_stream_keeps_every_id(
    redis_server: Service, tiny_repository: Path, service_logs: Path, frame_files: list[Path]
) -> None:
    require_triton_venv()
    triton = start_pytriton(tiny_repository, service_logs)
    grpc_port = triton.ports["grpc"]
    env = sidecar_env(tiny_repository, redis_prefix="triton-restart:", readiness_cache_s=0)
    sidecar = start_sidecar(
        service_logs, triton_grpc_port=grpc_port, redis_port=redis_server.ports["redis"], env=env
    )
    url = sidecar_url(sidecar)
    client = SidecarClient(url, retry_deadline_s=60)
    results: list[dict] = []
    errors: list[BaseException] = []

    def stream() -> None:
        try:
            client.open("cam")
            for index, frame in enumerate(frame_files):
                results.append(client.push("cam", index, frame.read_bytes(), JPEG))
                time.sleep(0.05)
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        reference = uninterrupted_run(url, "cam-reference", frame_files)
        thread = threading.Thread(target=stream)
        thread.start()
        deadline = time.monotonic() + 30
        while len(results) < 4 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)
        triton.kill()  # SIGKILL: frames in flight are cut
        done_at_kill = len(results)
        triton = start_pytriton(tiny_repository, service_logs, grpc_port=grpc_port)
        thread.join(60)
        assert not errors, errors
        assert 4 <= done_at_kill < len(frame_files)
        assert len(results) == len(frame_files)
        for got, want in zip(results, reference, strict=True):
            same_tracks(got, want)
        assert client.retries > 0
        rejected = "qdtrack_sidecar_frames_rejected_total"
        assert sidecar_metric(url, rejected, reason="triton_unavailable") > 0
        assert sidecar_metric(url, rejected, reason="triton_bad_response") == 0
    finally:
        client.close_client()
        sidecar.stop()
        triton.kill()
