"""The sidecar's HTTP API on a fake Triton: contract, ordering, retries, failures, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sidecar_fakes import (
    NUM_OBJECTS,
    FakeDetector,
    FlakyStore,
    frame_pixels,
    jpeg,
    make_settings,
    png,
)

from serving.sidecar.app import create_app
from serving.sidecar.errors import TritonTimeout, TritonUnavailable

REPO = Path(__file__).resolve().parents[2]
PNG = {"Content-Type": "image/png"}


def push(client: TestClient, stream: str, index: int, body: bytes | None = None, **headers: str):
    return client.post(
        f"/v1/streams/{stream}/frames/{index}",
        content=png(index) if body is None else body,
        headers=headers or PNG,
    )


def ids(response: httpx.Response) -> list[int]:
    return [t["track_id"] for t in response.json()["tracks"]]


def metric(client: TestClient, name: str, **labels: str) -> float:
    """Value of one sample of the sidecar's /metrics."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{want} not in /metrics")


def test_open_track_close_lifecycle(client: TestClient) -> None:
    assert client.put("/v1/streams/cam-1").status_code == 201
    again = client.put("/v1/streams/cam-1")
    assert again.status_code == 200 and again.json()["last_frame_index"] is None
    first = push(client, "cam-1", 0)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["frame_index"] == 0 and body["model_version"] == "1" and not body["replayed"]
    assert ids(first) == [0, 1, 2]
    assert "inference;dur=" in first.headers["server-timing"]
    for index in (1, 2, 5):  # gaps are fine: indices only have to increase
        assert ids(push(client, "cam-1", index)) == [0, 1, 2]
    info = client.get("/v1/streams/cam-1").json()
    assert info["last_frame_index"] == 5 and info["active_tracks"] == NUM_OBJECTS
    assert info["next_track_id"] == NUM_OBJECTS
    assert client.delete("/v1/streams/cam-1").status_code == 204
    gone = push(client, "cam-1", 6)
    assert gone.status_code == 404 and gone.json()["error"] == "unknown_stream"
    assert client.delete("/v1/streams/cam-1").status_code == 404


def test_body_formats_give_the_same_tracks(client: TestClient) -> None:
    client.put("/v1/streams/a")
    client.put("/v1/streams/b")
    client.put("/v1/streams/c")
    raw = frame_pixels(7).tobytes()
    raw_headers = {
        "Content-Type": "application/octet-stream",
        "X-Frame-Width": "64",
        "X-Frame-Height": "48",
    }
    r_png = push(client, "a", 7)
    r_jpeg = push(client, "b", 7, jpeg(7), **{"Content-Type": "image/jpeg"})
    r_raw = push(client, "c", 7, raw, **raw_headers)
    for r in (r_png, r_jpeg, r_raw):
        assert r.status_code == 200, r.text
    assert r_png.json()["tracks"] == r_raw.json()["tracks"]
    assert ids(r_png) == ids(r_jpeg)
    # boxes come back in the frame's own pixels (the fake answers in 64x48 resized pixels)
    assert r_png.json()["tracks"][0]["box_xyxy"] == [0.7, 4.0, 12.7, 40.0]


def test_retry_replays_and_older_index_is_refused(client: TestClient, detector) -> None:
    client.put("/v1/streams/s")
    first = push(client, "s", 3)
    calls = detector.calls
    retry = push(client, "s", 3)
    assert retry.status_code == 200 and retry.json()["replayed"] is True
    assert retry.json()["tracks"] == first.json()["tracks"]
    assert detector.calls == calls  # no inference, no state change
    assert client.get("/v1/streams/s").json()["last_frame_index"] == 3
    older = push(client, "s", 2)
    assert older.status_code == 409 and older.json()["error"] == "out_of_order"
    assert metric(client, "qdtrack_sidecar_frames_replayed_total") == 1
    assert metric(client, "qdtrack_sidecar_frames_rejected_total", reason="out_of_order") == 1


def test_retried_index_outside_the_result_window_is_refused(detector, store) -> None:
    app = create_app(make_settings(result_window=2), detector=detector, store=store)
    with TestClient(app) as client:
        client.put("/v1/streams/s")
        for index in range(4):
            push(client, "s", index)
        assert push(client, "s", 2).json()["replayed"] is True
        assert push(client, "s", 1).status_code == 409


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"\x89PNG\r\n\x1a\nnot really", PNG, 400, "bad_image"),
        (png(1)[:40], PNG, 400, "bad_image"),  # truncated after the header
        (b"\xff\xd8\xff\xe0garbage", {"Content-Type": "image/jpeg"}, 400, "bad_image"),
        (jpeg(1), PNG, 400, "bad_image"),  # JPEG bytes declared as PNG
        (b"", PNG, 400, "empty_body"),
        (png(1), {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (png(1), {"Content-Type": "image/gif"}, 415, "unsupported_media_type"),
        (b"\x00" * (65 * 1024), PNG, 413, "too_large"),
        (png(1, width=5000, height=4000), PNG, 413, "too_large"),  # 20 MP > 16.7 MP
        (b"\x00" * 10, {"Content-Type": "application/octet-stream"}, 400, "bad_image"),
        (
            b"\x00" * 10,
            {
                "Content-Type": "application/octet-stream",
                "X-Frame-Width": "4",
                "X-Frame-Height": "4",
            },
            400,
            "bad_image",
        ),
    ],
)
def test_bad_inputs_are_refused_without_touching_state(
    client: TestClient, detector, body: bytes, headers: dict, status: int, reason: str
) -> None:
    client.put("/v1/streams/s")
    push(client, "s", 0)
    calls = detector.calls
    response = push(client, "s", 1, body, **headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == reason
    assert detector.calls == calls
    assert client.get("/v1/streams/s").json()["last_frame_index"] == 0
    assert ids(push(client, "s", 1)) == [0, 1, 2]  # the stream goes on unharmed


def test_decompression_bomb_is_refused_before_decoding(client: TestClient) -> None:
    # a valid PNG header claiming 100000 x 100000 pixels, nothing behind it
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + (100000).to_bytes(4, "big") * 2
    client.put("/v1/streams/s")
    response = push(client, "s", 0, header + b"\x08\x02\x00\x00\x00")
    assert response.status_code == 413


def test_unknown_stream_and_invalid_ids(client: TestClient) -> None:
    response = push(client, "never-opened", 0)
    assert response.status_code == 404 and response.json()["error"] == "unknown_stream"
    assert client.get("/v1/streams/never-opened").status_code == 404
    assert client.put("/v1/streams/bad%20id").status_code == 422
    assert push(client, "s", -1).status_code == 422
    assert metric(client, "qdtrack_sidecar_frames_rejected_total", reason="unknown_stream") == 1


@pytest.mark.parametrize(
    ("error", "status"),
    [(TritonUnavailable("Triton down"), 503), (TritonTimeout("slow"), 504)],
)
def test_triton_failure_is_a_clear_error_and_leaves_state(
    client: TestClient, detector, error, status: int
) -> None:
    client.put("/v1/streams/s")
    push(client, "s", 0)
    detector.error = error
    response = push(client, "s", 1)
    assert response.status_code == status
    assert response.headers["retry-after"] == "1"
    assert client.get("/v1/streams/s").json()["last_frame_index"] == 0
    detector.error = None
    assert ids(push(client, "s", 1)) == [0, 1, 2]  # the same index succeeds on retry


def test_store_outage_serves_held_streams_from_memory(detector, store) -> None:
    app = create_app(
        make_settings(sweep_interval_s=0.05, readiness_cache_s=0), detector=detector, store=store
    )
    with TestClient(app) as client:
        client.put("/v1/streams/s")
        push(client, "s", 0)
        store.down = True
        for index in (1, 2, 3):
            response = push(client, "s", index)
            assert response.status_code == 200 and ids(response) == [0, 1, 2]
        assert metric(client, "qdtrack_sidecar_unpersisted_streams") == 1
        assert metric(client, "qdtrack_sidecar_store_available") == 0
        assert client.get("/v1/streams/s").json()["persisted"] is False
        other = client.put("/v1/streams/other")  # not held here: needs the store
        assert other.status_code == 503 and other.json()["error"] == "redis_unavailable"
        assert other.headers["retry-after"] == "1"
        ready = client.get("/readyz")  # the store is shared: this pod still serves
        assert ready.status_code == 200 and ready.json()["store_ok"] is False
        assert store.raw("s")[b"last_index"] == b"0"
        store.down = False
        deadline = time.monotonic() + 5
        while metric(client, "qdtrack_sidecar_unpersisted_streams") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.raw("s")[b"last_index"] == b"3"  # written back by the sweeper
        assert metric(client, "qdtrack_sidecar_store_available") == 1
        assert client.get("/v1/streams/s").json()["persisted"] is True
        assert ids(push(client, "s", 4)) == [0, 1, 2]


def test_model_version_change_resets_the_stream(client: TestClient, detector) -> None:
    client.put("/v1/streams/s")
    push(client, "s", 0)
    detector.version = "2"
    changed = push(client, "s", 1)
    assert changed.json()["stream_reset"] is True and changed.json()["model_version"] == "2"
    assert ids(changed) == [3, 4, 5]  # fresh tracks, ids above the old ones
    assert ids(push(client, "s", 2)) == [3, 4, 5]
    assert metric(client, "qdtrack_sidecar_state_resets_total", reason="model_version") == 1
    assert metric(client, "qdtrack_sidecar_new_tracks_total") == 6


def test_the_served_contract_chooses_the_tracker(client: TestClient, detector) -> None:
    detector.contract = dataclasses.replace(detector.contract, tracker={"type": "tao"})
    client.put("/v1/streams/s")
    assert client.get("/v1/streams/s").json()["tracker"] is None  # no frame yet
    push(client, "s", 0)
    assert client.get("/v1/streams/s").json()["tracker"] == "tao"
    detector.version = "2"  # a version exported with the IoU tracker
    detector.contract = dataclasses.replace(detector.contract, tracker={"type": "iou"})
    changed = push(client, "s", 1)
    assert changed.json()["stream_reset"] is True
    assert client.get("/v1/streams/s").json()["tracker"] == "iou"


def test_restart_continues_with_the_same_ids(detector) -> None:
    shared = FlakyStore()  # the "Redis" both processes see
    reference = []
    with TestClient(create_app(make_settings(), detector=detector)) as client:
        client.put("/v1/streams/s")
        reference = [push(client, "s", i).json()["tracks"] for i in range(8)]
    with TestClient(create_app(make_settings(), detector=detector, store=shared)) as before:
        before.put("/v1/streams/s")
        got = [push(before, "s", i).json()["tracks"] for i in range(4)]
    with TestClient(create_app(make_settings(), detector=detector, store=shared)) as after:
        got += [push(after, "s", i).json()["tracks"] for i in range(4, 8)]
        assert metric(after, "qdtrack_sidecar_state_restores_total") == 1
    assert got == reference


def test_two_replicas_writing_one_stream_keep_ids(detector) -> None:
    shared = FlakyStore()
    settings = make_settings()
    with (
        TestClient(create_app(settings, detector=detector)) as single,
        TestClient(create_app(settings, detector=detector, store=shared)) as a,
        TestClient(create_app(settings, detector=detector, store=shared)) as b,
    ):
        single.put("/v1/streams/s")
        a.put("/v1/streams/s")
        b.get("/v1/streams/s")  # b holds the stream in memory too
        for i in range(6):
            expected = push(single, "s", i).json()["tracks"]
            replica = a if i % 2 == 0 else b
            response = push(replica, "s", i)
            assert response.status_code == 200 and response.json()["tracks"] == expected
        assert metric(b, "qdtrack_sidecar_state_restores_total") >= 1  # a CAS conflict reload


def test_idle_streams_expire(detector) -> None:
    app = create_app(make_settings(stream_ttl_s=0.2, sweep_interval_s=0.05), detector=detector)
    with TestClient(app) as client:
        client.put("/v1/streams/s")
        push(client, "s", 0)
        assert metric(client, "qdtrack_sidecar_active_streams") == 1
        time.sleep(0.5)
        assert metric(client, "qdtrack_sidecar_active_streams") == 0
        assert metric(client, "qdtrack_sidecar_streams_expired_total") == 1
        assert push(client, "s", 1).status_code == 404


def test_bearer_token(detector) -> None:
    app = create_app(make_settings(auth_token="s3cret-token"), detector=detector)
    with TestClient(app) as client:
        denied = client.put("/v1/streams/s")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        wrong = client.put("/v1/streams/s", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.put("/v1/streams/s", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 201
        assert client.get("/healthz").status_code == 200  # probes stay open


def test_probes_and_metrics(client: TestClient, detector) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    client.put("/v1/streams/s")
    push(client, "s", 0)
    text = client.get("/metrics").text
    for name in (
        'qdtrack_sidecar_frame_stage_seconds_bucket{le="0.005",stage="association"}',
        'qdtrack_sidecar_frame_stage_seconds_count{stage="persistence"}',
        "qdtrack_sidecar_active_streams 1.0",
        "qdtrack_sidecar_active_tracks 3.0",
        "qdtrack_sidecar_new_tracks_total 3.0",
        'qdtrack_sidecar_frames_rejected_total{reason="too_large"} 0.0',
        'qdtrack_sidecar_state_resets_total{reason="model_version"} 0.0',
        "qdtrack_sidecar_state_restores_total 0.0",
    ):
        assert name in text, name


def test_readiness_follows_triton(detector, store) -> None:
    app = create_app(make_settings(readiness_cache_s=0), detector=detector, store=store)
    with TestClient(app) as client:
        detector.ready = False
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"ready": False, "triton_model_ready": False, "store_ok": True}


def test_concurrent_frames_of_one_stream_are_tracked_in_index_order() -> None:
    slow = FakeDetector(delay_s=0.0)
    settings = make_settings(max_pending_per_stream=16)
    app = create_app(settings, detector=slow)
    order = list(range(12))
    random.Random(0).shuffle(order)

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                await client.put("/v1/streams/s")

                async def send(i: int) -> httpx.Response:
                    await asyncio.sleep(0.002 * order.index(i))  # arrive shuffled
                    return await client.post(
                        f"/v1/streams/s/frames/{i}", content=png(i), headers=PNG
                    )

                slow.delay_s = 0.3  # all arrive before the first inference returns
                return list(await asyncio.gather(*(send(i) for i in range(12))))

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 12
    with TestClient(create_app(settings, detector=FakeDetector())) as client:
        client.put("/v1/streams/s")
        expected = [push(client, "s", i).json()["tracks"] for i in range(12)]
    assert [r.json()["tracks"] for r in responses] == expected


def test_overload_is_refused_with_retry_after() -> None:
    slow = FakeDetector(delay_s=0.5)
    app = create_app(make_settings(max_inflight_frames=2, max_pending_per_stream=1), detector=slow)

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                for name in ("a", "b", "c"):
                    await client.put(f"/v1/streams/{name}")

                async def send(stream: str, i: int, wait: float) -> httpx.Response:
                    await asyncio.sleep(wait)
                    return await client.post(
                        f"/v1/streams/{stream}/frames/{i}", content=png(i), headers=PNG
                    )

                return list(
                    await asyncio.gather(
                        send("a", 0, 0.0),
                        send("a", 1, 0.1),  # second frame of a busy stream: 429
                        send("b", 0, 0.2),
                        send("c", 0, 0.3),  # third frame in flight: 503
                    )
                )

    a0, a1, b0, c0 = asyncio.run(run())
    assert a0.status_code == 200 and b0.status_code == 200
    assert a1.status_code == 429 and a1.json()["error"] == "stream_busy"
    assert c0.status_code == 503 and c0.json()["error"] == "overloaded"
    assert a1.headers["retry-after"] == c0.headers["retry-after"] == "1"


def test_published_openapi_schema_is_current(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {
        "/v1/streams/{stream_id}",
        "/v1/streams/{stream_id}/frames/{frame_index}",
        "/healthz",
        "/readyz",
    }
    body = paths["/v1/streams/{stream_id}/frames/{frame_index}"]["post"]["requestBody"]
    assert set(body["content"]) == {"image/jpeg", "image/png", "application/octet-stream"}
    published = json.loads((REPO / "serving" / "openapi.json").read_text())
    assert published == schema, "regenerate with: python -m serving.sidecar --print-openapi"


def test_model_version_and_quality_gauges(detector, tmp_path) -> None:
    record = tmp_path / "champion.json"
    record.write_text(json.dumps({"version": 3, "metrics": {"HOTA": 45.4, "IDF1": 48.4}}))
    app = create_app(make_settings(model_quality_file=str(record)), detector=detector)
    with TestClient(app) as client:
        assert metric(client, "qdtrack_model_quality", metric="HOTA") == 45.4
        assert metric(client, "qdtrack_model_quality", metric="IDF1") == 48.4
        client.put("/v1/streams/s")
        push(client, "s", 0)
        assert metric(client, "qdtrack_model_version_info", version="1") == 1
        detector.version = "2"
        push(client, "s", 1)
        text = client.get("/metrics").text
        assert 'qdtrack_model_version_info{version="2"} 1.0' in text
        assert 'version="1"' not in text  # one series: the version served now
        # the quality gauge follows the served version when its config carries metrics
        detector.version, detector.quality = "3", {"HOTA": 50.5, "MOTA": 61.0}
        push(client, "s", 2)
        assert metric(client, "qdtrack_model_quality", metric="HOTA") == 50.5
        assert 'metric="IDF1"' not in client.get("/metrics").text  # not version 3's


def test_a_bug_answers_500_without_its_text_and_logs_it_once(detector, caplog) -> None:
    class Broken(FakeDetector):
        async def detect(self, frame):
            raise RuntimeError("secret internals /etc/passwd")

    app = create_app(make_settings(), detector=Broken())
    with TestClient(app, raise_server_exceptions=False) as client:
        client.put("/v1/streams/s")
        response = push(client, "s", 0)
        assert response.status_code == 500
        body = response.json()
        assert body["error"] == "internal" and "secret" not in response.text
        assert body["request_id"] == response.headers["x-request-id"]
        assert metric(client, "qdtrack_sidecar_frames_rejected_total", reason="internal") == 1
        assert push(client, "s", 0).status_code == 500  # the stream is untouched
        assert client.get("/v1/streams/s").json()["last_frame_index"] is None
    tracebacks = [r for r in caplog.records if r.exc_info and "secret" in str(r.exc_info[1])]
    assert len(tracebacks) == 2  # one per failed request


def test_a_record_the_store_lost_is_written_again_from_memory(detector, store) -> None:
    with TestClient(create_app(make_settings(), detector=detector, store=store)) as client:
        for stream in ("get", "put"):
            client.put(f"/v1/streams/{stream}")
            push(client, stream, 0)
            store.forget(stream)  # Redis restarted empty, or evicted the key
        assert client.get("/v1/streams/get").json()["last_frame_index"] == 0
        assert client.put("/v1/streams/put").status_code == 200  # still open, not new
        for stream in ("get", "put"):
            assert store.raw(stream)[b"last_index"] == b"0"
            assert ids(push(client, stream, 1)) == [0, 1, 2]
        assert metric(client, "qdtrack_sidecar_records_recreated_total") == 2


def test_a_stream_closed_through_another_replica_is_closed_here(detector, store) -> None:
    settings = make_settings()
    with (
        TestClient(create_app(settings, detector=detector, store=store)) as a,
        TestClient(create_app(settings, detector=detector, store=store)) as b,
    ):
        a.put("/v1/streams/s")
        push(a, "s", 0)
        first = a.get("/v1/streams/s").json()["generation"]
        assert b.delete("/v1/streams/s").status_code == 204
        assert push(a, "s", 1).status_code == 404  # a tombstone, not a resurrection
        reopened = a.put("/v1/streams/s")
        assert reopened.status_code == 201 and reopened.json()["generation"] != first
        assert reopened.json()["last_frame_index"] is None


def test_get_of_a_held_stream_resets_it_when_its_record_is_unreadable(detector, store) -> None:
    with TestClient(create_app(make_settings(), detector=detector, store=store)) as client:
        client.put("/v1/streams/s")
        push(client, "s", 0)
        before = client.get("/v1/streams/s").json()
        store.raw("s")[b"meta"] = b"{broken"
        after = client.get("/v1/streams/s").json()  # consults the store: resets, once
        assert after["generation"] != before["generation"] and after["last_frame_index"] == 0
        assert client.get("/v1/streams/s").json()["generation"] == after["generation"]
        reset = push(client, "s", 1)
        assert reset.json()["stream_reset"] is True and ids(reset) == [3, 4, 5]
        assert push(client, "s", 2).json()["stream_reset"] is False
        assert metric(client, "qdtrack_sidecar_state_resets_total", reason="corrupt_meta") == 1
