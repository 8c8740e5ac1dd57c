"""Redis faults under a real sidecar process and PyTriton: Redis restarted empty, a stream kept
alive by polling only, and Redis stopped for 10 s under a running stream.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from stack_helpers import (
    post_frame,
    same_tracks,
    sidecar_env,
    sidecar_metric,
    sidecar_url,
    uninterrupted_run,
)

from serving.launch import Service, start_redis, start_sidecar

pytestmark = pytest.mark.integration
PREFIX = "outage:"
TTL_S = 3.0


@dataclass
class RedisBox:
    """This module's own Redis, which the tests pause, resume and restart empty."""

    service: Service
    logs: Path

    @property
    def port(self) -> int:
        return self.service.ports["redis"]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def restart_empty(self) -> None:
        self.service.kill()  # no persistence: everything is gone
        self.service = start_redis(self.logs, port=self.port)

    def signal(self, which: signal.Signals) -> None:
        os.killpg(self.service.pid, which)


@pytest.fixture(scope="module")
def box(service_logs: Path) -> Iterator[RedisBox]:
    box = RedisBox(start_redis(service_logs), service_logs)
    yield box
    if box.service.alive():
        box.signal(signal.SIGCONT)
    box.service.stop()


@pytest.fixture(scope="module")
def outage_sidecar(
    triton: Service, box: RedisBox, tiny_repository: Path, service_logs: Path
) -> Iterator[Service]:
    """A sidecar on ``box``: short store timeouts, a 3 s stream TTL, write-back every 0.2 s."""
    env = sidecar_env(
        tiny_repository,
        redis_prefix=PREFIX,
        stream_ttl_s=TTL_S,
        sweep_interval_s=0.2,
        redis_timeout_s=0.2,
        redis_retries=1,
        readiness_cache_s=0,
    )
    service = start_sidecar(
        service_logs, triton_grpc_port=triton.ports["grpc"], redis_port=box.port, env=env
    )
    yield service
    service.stop()


def _stored_index(box: RedisBox, stream: str) -> bytes | None:
    with box.client() as client:
        value: bytes | None = client.hget(PREFIX + stream, "last_index")  # type: ignore[assignment]
        return value


def test_redis_restarted_empty_loses_no_held_stream(
    outage_sidecar: Service, box: RedisBox, frame_files: list[Path]
) -> None:
    url = sidecar_url(outage_sidecar)
    reference = uninterrupted_run(url, "restart-reference", frame_files[:6])
    recreated = sidecar_metric(url, "qdtrack_sidecar_records_recreated_total")
    with httpx.Client(base_url=url) as client:
        for stream in ("polled", "reopened"):
            client.put(f"/v1/streams/{stream}")
            for index in range(4):
                same_tracks(
                    post_frame(client, stream, index, frame_files[index]).json(), reference[index]
                )
        box.restart_empty()
        assert _stored_index(box, "polled") is None
        # GET and PUT consult the store, find the record lost and write it anew from memory
        info = client.get("/v1/streams/polled")
        assert info.status_code == 200 and info.json()["last_frame_index"] == 3
        assert _stored_index(box, "polled") == b"3"
        opened = client.put("/v1/streams/reopened")
        assert opened.status_code == 200 and opened.json()["last_frame_index"] == 3
        assert _stored_index(box, "reopened") == b"3"
        for stream in ("polled", "reopened"):
            for index in (4, 5):
                response = post_frame(client, stream, index, frame_files[index])
                assert response.status_code == 200, response.text
                same_tracks(response.json(), reference[index])
    assert sidecar_metric(url, "qdtrack_sidecar_records_recreated_total") == recreated + 2


def test_a_stream_only_polled_stays_in_redis(
    outage_sidecar: Service, box: RedisBox, frame_files: list[Path]
) -> None:
    url = sidecar_url(outage_sidecar)
    with httpx.Client(base_url=url) as client:
        client.put("/v1/streams/watched")
        post_frame(client, "watched", 0, frame_files[0])
        start = time.monotonic()
        while time.monotonic() - start < TTL_S * 1.7:  # polled for longer than its TTL
            time.sleep(0.4)
            assert client.get("/v1/streams/watched").status_code == 200
            with box.client() as raw:
                assert 0 < raw.pttl(PREFIX + "watched") <= TTL_S * 1000
        assert post_frame(client, "watched", 1, frame_files[1]).status_code == 200


def test_redis_stopped_for_10_s_under_a_running_stream(
    outage_sidecar: Service, box: RedisBox, frame_files: list[Path]
) -> None:
    url = sidecar_url(outage_sidecar)
    unpersisted: list[float] = []

    def gauge() -> float:
        unpersisted.append(sidecar_metric(url, "qdtrack_sidecar_unpersisted_streams"))
        return unpersisted[-1]

    results: list[httpx.Response] = []
    stopped_at = resumed_at = None
    resumed_index = 0
    with httpx.Client(base_url=url, timeout=30) as client:  # no retries: any 5xx shows
        client.put("/v1/streams/live")
        index = 0
        while resumed_at is None or index < resumed_index + 6:
            results.append(post_frame(client, "live", index, frame_files[index % 16]))
            gauge()
            now = time.monotonic()
            if index == 4:
                box.signal(signal.SIGSTOP)  # hung: connections stay open, nothing answers
                stopped_at = now
            elif stopped_at is not None and resumed_at is None and now - stopped_at >= 10:
                box.signal(signal.SIGCONT)
                resumed_at, resumed_index = now, index
            index += 1
            time.sleep(0.1)
        last = index - 1
        deadline = time.monotonic() + 5
        while gauge() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [r.status_code for r in results] == [200] * len(results)
    assert max(unpersisted) == 1 and unpersisted[-1] == 0  # went up, and down again
    assert _stored_index(box, "live") == str(last).encode()  # persisted again
    assert sidecar_metric(url, "qdtrack_sidecar_store_available") == 1
    reference = uninterrupted_run(
        url, "live-reference", [frame_files[i % 16] for i in range(last + 1)]
    )
    for got, want in zip(results, reference, strict=True):
        same_tracks(got.json(), want)
