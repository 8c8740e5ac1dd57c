"""The sidecar process at the edges of HTTP, with real PyTriton and Redis: oversized and slow
requests are cut by the configured limits (bounded raw-socket clients), a client that leaves
is counted apart, extreme aspect ratios are tracked, indices are strictly decimal, and every
error body is the documented JSON with a request id.
"""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from stack_helpers import sidecar_env, sidecar_metric, sidecar_url

from serving.launch import Service, start_sidecar

pytestmark = pytest.mark.integration
HEADER_TIMEOUT_S = BODY_TIMEOUT_S = 1.0
MAX_HEADER_BYTES = 8192


@pytest.fixture(scope="module")
def edge(
    triton: Service, redis_server: Service, tiny_repository: Path, service_logs: Path
) -> Iterator[Service]:
    """A sidecar with short HTTP limits, logging at info level."""
    env = sidecar_env(
        tiny_repository,
        redis_prefix="edge:",
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        max_header_bytes=MAX_HEADER_BYTES,
    )
    service = start_sidecar(
        service_logs,
        triton_grpc_port=triton.ports["grpc"],
        redis_port=redis_server.ports["redis"],
        env=env,
        log_level="info",
    )
    yield service
    service.stop()


def _connect(service: Service) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.ports["http"]), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _until_closed(socks: list[socket.socket], limit_s: float) -> list[tuple[bytes, float | None]]:
    """Read every socket until the server closes it, for at most ``limit_s`` in all.

    Returns, per socket, what it received and after how many seconds it was closed
    (None: still open at the limit).
    """
    start = time.monotonic()
    got = [b""] * len(socks)
    closed: list[float | None] = [None] * len(socks)
    selector = selectors.DefaultSelector()
    for i, sock in enumerate(socks):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
    while selector.get_map() and time.monotonic() - start < limit_s:
        for key, _ in selector.select(timeout=0.05):
            i = key.data
            try:
                chunk = socks[i].recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[i] += chunk
            else:
                closed[i] = time.monotonic() - start
                selector.unregister(socks[i])
    selector.close()
    for sock in socks:
        sock.close()
    return list(zip(got, closed, strict=True))


def _error_of(raw: bytes) -> tuple[int, dict, dict[str, str]]:
    """Status, JSON body and headers of one raw HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), json.loads(body), headers


def _cut(url: str, reason: str) -> float:
    return sidecar_metric(url, "qdtrack_sidecar_connections_cut_total", reason=reason)


def test_oversized_headers_are_refused_with_431(edge: Service) -> None:
    url = sidecar_url(edge)
    before = _cut(url, "header_too_large")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    socks = []
    # one endless header line (never finished), and a finished header block just too big
    endless = _connect(edge)
    endless.sendall(request + b"X-Big: " + b"a" * 64 * 1024)
    socks.append(endless)
    block = _connect(edge)
    block.sendall(
        request + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 500) for i in range(20)) + b"\r\n"
    )
    socks.append(block)
    for raw, closed in _until_closed(socks, 5.0):
        assert closed is not None and closed < 2.0
        status, body, headers = _error_of(raw)
        assert status == 431 and body["error"] == "header_too_large"
        assert body["request_id"] == headers["x-request-id"]
    # 8 MiB of header: cut long before it is all sent
    flood = _connect(edge)
    sent, chunk = 0, b"c" * 65536
    with pytest.raises(OSError):  # broken pipe or reset once the server has closed
        flood.sendall(request + b"X-Flood: ")
        while sent < 8 * 1024 * 1024:
            flood.sendall(chunk)
            sent += len(chunk)
    flood.close()
    assert sent < 8 * 1024 * 1024
    # a header block under the limit is served
    small = httpx.get(f"{url}/healthz", headers={f"X-{i}": "d" * 500 for i in range(10)})
    assert small.status_code == 200
    assert _cut(url, "header_too_large") == before + 3


def test_slow_headers_and_bodies_are_cut_by_the_timeouts(edge: Service) -> None:
    url = sidecar_url(edge)
    header_cuts, body_cuts = _cut(url, "header_timeout"), _cut(url, "body_timeout")
    timeouts = sidecar_metric(
        url, "qdtrack_sidecar_frames_rejected_total", reason="request_timeout"
    )
    silent = [_connect(edge) for _ in range(30)]  # connect and say nothing
    unfinished = [_connect(edge) for _ in range(30)]  # headers never end
    for sock in unfinished:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow_body = [_connect(edge) for _ in range(30)]  # body never ends
    for sock in slow_body:
        sock.sendall(
            b"POST /v1/streams/s/frames/0 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 100000\r\n\r\n" + b"\xff" * 100
        )
    dribble = _connect(edge)  # one byte at a time: still cut (the timeout is not per byte)
    start = time.monotonic()
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":
        if time.monotonic() - start > 3:
            break
        try:
            dribble.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
    dribble_closed = time.monotonic() - start
    results = _until_closed([*silent, *unfinished, *slow_body, dribble], 6.0)
    assert all(closed is not None for _, closed in results), "a slow client was not cut"
    assert dribble_closed < HEADER_TIMEOUT_S + 1.5
    # everyone is cut close to the timeout: not before, and not much after
    elapsed = [closed for _, closed in results[:-1]]
    assert max(elapsed) < max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 1.5
    for raw, _ in results[:-1]:
        status, body, headers = _error_of(raw)
        assert status == 408 and body["error"] == "request_timeout"
        assert body["request_id"] == headers["x-request-id"]
    assert _cut(url, "header_timeout") == header_cuts + 61
    assert _cut(url, "body_timeout") == body_cuts + 30
    assert (
        sidecar_metric(url, "qdtrack_sidecar_frames_rejected_total", reason="request_timeout")
        == timeouts + 30
    )
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_a_client_leaving_mid_body_is_counted_apart_and_logged_once(edge: Service) -> None:
    url = sidecar_url(edge)

    def rejected(reason: str) -> float:
        return sidecar_metric(url, "qdtrack_sidecar_frames_rejected_total", reason=reason)

    internal, left = rejected("internal"), rejected("client_disconnect")
    sock = _connect(edge)
    sock.sendall(
        b"POST /v1/streams/leaver/frames/0 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        b"X-Request-Id: leaver-1\r\nContent-Length: 50000\r\n\r\n" + b"\xff" * 1000
    )
    time.sleep(0.2)
    sock.close()
    deadline = time.monotonic() + 5
    while rejected("client_disconnect") == left and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rejected("client_disconnect") == left + 1
    assert rejected("internal") == internal
    lines = [line for line in edge.log_tail(500).splitlines() if "leaver-1" in line]
    assert len(lines) == 1 and "client disconnected" in lines[0], lines
    assert "Traceback" not in edge.log_tail(2000)


def _raw_frame(width: int, height: int) -> tuple[bytes, dict[str, str]]:
    pixels = np.arange(width * height * 3, dtype=np.uint32).astype(np.uint8)
    headers = {
        "Content-Type": "application/octet-stream",
        "X-Frame-Width": str(width),
        "X-Frame-Height": str(height),
    }
    return pixels.tobytes(), headers


def test_extreme_aspect_ratios_are_tracked_on_one_connection(edge: Service) -> None:
    sizes = [(n, 1) for n in range(1, 9)] + [(1, n) for n in range(1, 9)] + [(4096, 1), (1, 4096)]
    bodies = [_raw_frame(w, h) for w, h in sizes]
    ok, png = cv2.imencode(".png", np.full((1, 4096, 3), 200, np.uint8))
    assert ok
    bodies.append((png.tobytes(), {"Content-Type": "image/png"}))
    assert httpx.put(f"{sidecar_url(edge)}/v1/streams/thin").status_code == 201
    connection = http.client.HTTPConnection("127.0.0.1", edge.ports["http"], timeout=30)
    try:
        first_socket = None
        for index, (body, headers) in enumerate(bodies):
            connection.request("POST", f"/v1/streams/thin/frames/{index}", body, headers)
            response = connection.getresponse()
            text = response.read()
            assert response.status == 200, (sizes[index : index + 1], text)
            result = json.loads(text)
            assert result["frame_index"] == index
            assert all(np.isfinite(t["box_xyxy"]).all() for t in result["tracks"])
            first_socket = first_socket or connection.sock
            assert connection.sock is first_socket, "the keep-alive connection was dropped"
    finally:
        connection.close()


@pytest.mark.parametrize(
    "index", ["1_0", "+56", "%2056", "0x1f", "1e3", "5.0", "%D9%A3", "-1", "99999999999999999"]
)
def test_frame_indices_are_decimal_digits_only(edge: Service, index: str) -> None:
    url = sidecar_url(edge)
    httpx.put(f"{url}/v1/streams/grammar")
    response = httpx.post(
        f"{url}/v1/streams/grammar/frames/{index}",
        content=_raw_frame(4, 4)[0],
        headers=_raw_frame(4, 4)[1],
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert httpx.get(f"{url}/v1/streams/grammar").json()["last_frame_index"] is None


def test_leading_zeros_and_strict_headers(edge: Service) -> None:
    url = sidecar_url(edge)
    httpx.put(f"{url}/v1/streams/zeros")
    body, headers = _raw_frame(4, 4)
    assert (
        httpx.post(f"{url}/v1/streams/zeros/frames/007", content=body, headers=headers).json()[
            "frame_index"
        ]
        == 7
    )
    signed = dict(headers, **{"X-Frame-Width": "+4"})
    refused = httpx.post(f"{url}/v1/streams/zeros/frames/8", content=body, headers=signed)
    assert refused.status_code == 422


def test_every_error_is_the_documented_json_with_a_request_id(edge: Service) -> None:
    url = sidecar_url(edge)
    answers = [
        httpx.get(f"{url}/nowhere"),
        httpx.post(f"{url}/v1/streams/x"),  # method not allowed
        httpx.get(f"{url}/v1/streams/never-opened", headers={"X-Request-Id": "mine-42"}),
        httpx.put(f"{url}/v1/streams/bad%20id"),
    ]
    assert [a.status_code for a in answers] == [404, 405, 404, 422]
    for answer in answers:
        body = answer.json()
        assert set(body) == {"error", "detail", "request_id"}
        assert body["request_id"] == answer.headers["x-request-id"]
    assert answers[2].json()["request_id"] == "mine-42"  # the client's own id is kept
    garbage = _connect(edge)
    garbage.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    [(raw, closed)] = _until_closed([garbage], 3.0)
    status, body, _ = _error_of(raw)
    assert status == 400 and body["error"] == "bad_request" and closed is not None
