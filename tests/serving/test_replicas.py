"""Two sidecar processes on one Redis, real PyTriton: a stale replica never wins, and a stored
record it cannot read resets its stream (counted, logged) instead of failing every frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from stack_helpers import (
    post_frame,
    same_tracks,
    sidecar_metric,
    sidecar_url,
    start_stack_sidecar,
    track_ids,
    uninterrupted_run,
)

from serving.launch import Service

pytestmark = pytest.mark.integration
PREFIX = "session:"  # the session sidecar's keys: both replicas share them


@pytest.fixture(scope="module")
def replica_b(
    triton: Service, redis_server: Service, sidecar: Service, tiny_repository: Path, service_logs
) -> Iterator[Service]:
    """A second sidecar process beside the session one, on the same Redis keys."""
    service = start_stack_sidecar(
        triton, redis_server, tiny_repository, service_logs, redis_prefix=PREFIX
    )
    yield service
    service.stop()


@pytest.fixture
def raw_redis(redis_server: Service) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.ports["redis"])
    yield client
    client.close()


def test_a_stale_replica_cannot_commit_over_a_reopened_stream(
    sidecar: Service, replica_b: Service, frame_files: list[Path]
) -> None:
    reference = uninterrupted_run(sidecar_url(sidecar), "reopen-reference", frame_files[:6])
    with (
        httpx.Client(base_url=sidecar_url(sidecar)) as a,
        httpx.Client(base_url=sidecar_url(replica_b)) as b,
    ):
        # first life, through A: other frames (the end of the sequence, back and forth)
        assert a.put("/v1/streams/reopen").status_code == 201
        for index, frame in enumerate([15, 8, 15, 8]):
            assert post_frame(a, "reopen", index, frame_files[frame]).status_code == 200
        first = a.get("/v1/streams/reopen").json()
        # B closes and reopens it, then tracks frames 0-3; A still holds the first life
        assert b.delete("/v1/streams/reopen").status_code == 204
        assert b.put("/v1/streams/reopen").status_code == 201
        for index in range(4):
            same_tracks(post_frame(b, "reopen", index, frame_files[index]).json(), reference[index])
        # frame 4 through the stale replica: committed over the reopened stream's state
        stale = post_frame(a, "reopen", 4, frame_files[4])
        assert stale.status_code == 200, stale.text
        same_tracks(stale.json(), reference[4])
        same_tracks(post_frame(b, "reopen", 5, frame_files[5]).json(), reference[5])
        # GET and PUT through A consult the store: the second life, not A's memory
        info = a.get("/v1/streams/reopen").json()
        assert info["generation"] != first["generation"]
        assert info["last_frame_index"] == 5
        assert info["next_track_id"] == b.get("/v1/streams/reopen").json()["next_track_id"]
        again = a.put("/v1/streams/reopen")
        assert again.status_code == 200 and again.json()["generation"] == info["generation"]
        # closed through B: A, which still holds it, answers 404 (a tombstone), not 200
        assert b.delete("/v1/streams/reopen").status_code == 204
        gone = post_frame(a, "reopen", 6, frame_files[6])
        assert gone.status_code == 404 and gone.json()["error"] == "unknown_stream"


#: One unreadable value per field of the stored hash (``None``: the field is deleted).
CORRUPTIONS = [
    ("generation", b"not-a-generation"),
    ("last_index", b"1_0"),
    ("last_index", b"-3"),
    ("state", b"not an npz"),
    ("meta", b"{not json"),
    ("meta", b'{"tracker": 5}'),
    ("meta", None),
    ("results", b'{"frame_index": 1}'),
    ("results", b'[{"frame_index": "x", "tracks": []}]'),
]


@pytest.mark.parametrize(("field", "value"), CORRUPTIONS)
def test_a_corrupt_field_resets_the_stream_once(
    sidecar: Service,
    replica_b: Service,
    raw_redis: redis.Redis,
    frame_files: list[Path],
    field: str,
    value: bytes | None,
) -> None:
    stream = f"corrupt-{field}-{CORRUPTIONS.index((field, value))}"
    key = PREFIX + stream
    reason = f"corrupt_{field}"
    url_b = sidecar_url(replica_b)
    resets_before = sidecar_metric(url_b, "qdtrack_sidecar_state_resets_total", reason=reason)

    def corrupt() -> None:
        if value is None:
            raw_redis.hdel(key, field)
        else:
            raw_redis.hset(key, field, value)

    with httpx.Client(base_url=sidecar_url(sidecar)) as a, httpx.Client(base_url=url_b) as b:
        a.put(f"/v1/streams/{stream}")
        seen = [post_frame(a, stream, i, frame_files[i]).json() for i in range(3)]
        corrupt()
        # the holder writes over it (or, when the generation or index is unreadable, its
        # compare-and-set fails and it resets the stream): never a 5xx
        held = post_frame(a, stream, 3, frame_files[3])
        assert held.status_code == 200, held.text
        seen.append(held.json())
        corrupt()
        # a replica that has to read it resets the stream: fresh tracker, ids above the old
        restored = post_frame(b, stream, 4, frame_files[4])
        assert restored.status_code == 200, restored.text
        assert restored.json()["stream_reset"] is True
        old_ids = {i for result in seen for i in track_ids(result)}
        assert min(track_ids(restored.json())) > max(old_ids)
        # the reset was written: the holder takes it over, nothing resets again
        after = post_frame(a, stream, 5, frame_files[5])
        assert after.status_code == 200 and after.json()["stream_reset"] is False
        assert set(track_ids(after.json())) & set(track_ids(restored.json()))
        assert post_frame(b, stream, 6, frame_files[6]).status_code == 200
    resets = sidecar_metric(url_b, "qdtrack_sidecar_state_resets_total", reason=reason)
    assert resets == resets_before + 1
    assert f"stream {stream}: stored record unusable (field '{field}'" in replica_b.log_tail(200)
