"""The state store on a real Redis (started by the tests): compare-and-set, TTL, outages."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sidecar_fakes import FakeDetector, make_settings, png

from serving.launch import Service, start_redis
from serving.sidecar.app import create_app
from serving.sidecar.errors import StoreUnavailable
from serving.sidecar.state import RedisStore, SaveOutcome, StreamRecord, Version

pytestmark = pytest.mark.integration
PNG = {"Content-Type": "image/png"}


def _record(last: int | None, state: bytes = b"state", generation: str = "a" * 32) -> StreamRecord:
    return StreamRecord(
        tracker="qdtrack", state=state, last_index=last, model_version="1", generation=generation
    )


def test_compare_and_set_on_generation_and_index(redis_url: str) -> None:
    async def run() -> None:
        store = RedisStore(redis_url, timeout_s=0.5, retries=0)
        try:
            assert await store.create("s", _record(None), ttl_s=30)
            assert not await store.create("s", _record(None), ttl_s=30)  # exists: no write
            first = _record(0, b"\x00\x01 binary")
            first.results = [(0, b'{"frame_index":0,"tracks":[]}')]
            opened = Version("a" * 32, "")
            assert await store.save("s", first, opened, 30) is SaveOutcome.SAVED
            assert await store.save("s", _record(1), opened, 30) is SaveOutcome.CONFLICT
            other_generation = Version("b" * 32, "0")  # same index, another generation
            assert await store.save("s", _record(1), other_generation, 30) is SaveOutcome.CONFLICT
            loaded = await store.load("s", 30)
            assert loaded is not None and loaded.version == Version("a" * 32, "0")
            assert (loaded.last_index, loaded.state, loaded.model_version) == (0, first.state, "1")
            assert loaded.results == [(0, b'{"frame_index":0,"tracks":[]}')]
            # closing leaves a tombstone: a replica still holding the stream cannot write it
            assert await store.delete("s", 30) and await store.load("s", 30) is None
            assert await store.save("s", _record(1), loaded.version, 30) is SaveOutcome.CLOSED
            assert not await store.delete("s", 30)
            reopened = _record(None, generation="c" * 32)
            assert await store.create("s", reopened, 30)  # a tombstone does not block opening
            # a key the store lost is written anew by the next save
            assert await store.save("gone", _record(5), Version("d" * 32, "4"), 30) is (
                SaveOutcome.RECREATED
            )
            assert (await store.load("gone", 30)).last_index == 5
            assert await store.ping()
        finally:
            await store.close()

    asyncio.run(run())


def test_load_and_create_refresh_the_ttl(redis_url: str) -> None:
    import redis

    raw = redis.Redis.from_url(redis_url)

    async def run() -> None:
        store = RedisStore(redis_url)
        try:
            await store.create("s", _record(None), ttl_s=0.3)
            for _ in range(4):  # polled for longer than its TTL: still there
                await asyncio.sleep(0.15)
                assert await store.load("s", 0.3) is not None
            assert 0 < raw.pttl("qdtrack:stream:s") <= 300
            await asyncio.sleep(0.5)
            assert await store.load("s", 0.3) is None  # idle for a TTL: gone
        finally:
            await store.close()

    asyncio.run(run())


def test_restarted_sidecar_continues_from_redis(redis_url: str) -> None:
    settings = make_settings(redis_url=redis_url)
    with TestClient(create_app(make_settings(), detector=FakeDetector())) as single:
        single.put("/v1/streams/s")
        expected = [
            single.post(f"/v1/streams/s/frames/{i}", content=png(i), headers=PNG).json()
            for i in range(6)
        ]
    with TestClient(create_app(settings, detector=FakeDetector())) as first:
        first.put("/v1/streams/s")
        got = [
            first.post(f"/v1/streams/s/frames/{i}", content=png(i), headers=PNG).json()
            for i in range(3)
        ]
    with TestClient(create_app(settings, detector=FakeDetector())) as second:
        # the response to frame 2 was "lost": its retry is answered from Redis
        retry = second.post("/v1/streams/s/frames/2", content=png(2), headers=PNG).json()
        assert retry["replayed"] and retry["tracks"] == got[2]["tracks"]
        got += [
            second.post(f"/v1/streams/s/frames/{i}", content=png(i), headers=PNG).json()
            for i in range(3, 6)
        ]
    assert [g["tracks"] for g in got] == [e["tracks"] for e in expected]


@pytest.fixture
def own_redis(service_logs) -> Iterator[Service]:
    """A Redis of this test only (it gets stopped and killed)."""
    service = start_redis(service_logs)
    yield service
    if service.alive():
        os.killpg(service.pid, signal.SIGCONT)
    service.stop()


def _unpersisted(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("qdtrack_sidecar_unpersisted_streams "):
            return float(line.split()[-1])
    raise AssertionError("no unpersisted gauge")


def test_hung_and_dead_redis_keep_held_streams_going(own_redis: Service) -> None:
    url = f"redis://127.0.0.1:{own_redis.ports['redis']}/0"
    settings = make_settings(
        redis_url=url, redis_timeout_s=0.2, redis_retries=1, sweep_interval_s=0.1
    )
    with TestClient(create_app(settings, detector=FakeDetector())) as client:
        client.put("/v1/streams/s")
        before = client.post("/v1/streams/s/frames/0", content=png(0), headers=PNG).json()
        os.killpg(own_redis.pid, signal.SIGSTOP)  # hung: connections open, no answers
        start = time.monotonic()
        hung = client.post("/v1/streams/s/frames/1", content=png(1), headers=PNG)
        assert hung.status_code == 200, hung.text  # committed in memory
        assert time.monotonic() - start < 3.0  # bounded by timeout x retries
        start = time.monotonic()
        assert client.post("/v1/streams/s/frames/2", content=png(2), headers=PNG).is_success
        assert time.monotonic() - start < 0.5  # the store is known down: no waiting
        assert _unpersisted(client) == 1
        other = client.put("/v1/streams/other")
        assert other.status_code == 503 and other.json()["error"] == "redis_unavailable"
        assert client.get("/readyz").status_code == 200
        os.killpg(own_redis.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while _unpersisted(client) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _unpersisted(client) == 0  # written back
        after = client.post("/v1/streams/s/frames/3", content=png(3), headers=PNG)
        assert after.status_code == 200
        assert [t["track_id"] for t in after.json()["tracks"]] == [
            t["track_id"] for t in before["tracks"]
        ]
        own_redis.kill()  # dead: connection refused
        dead = client.post("/v1/streams/s/frames/4", content=png(4), headers=PNG)
        assert dead.status_code == 200 and _unpersisted(client) == 1
        assert client.put("/v1/streams/other").status_code == 503


def test_store_errors_map_to_store_unavailable() -> None:
    async def run() -> None:
        store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", timeout_s=0.2, retries=0)
        try:
            with pytest.raises(StoreUnavailable):
                await store.load("s", 1.0)
            assert not await store.ping()
        finally:
            await store.close()

    asyncio.run(run())


def _closed_port() -> int:
    from serving.launch import free_port

    return free_port()
