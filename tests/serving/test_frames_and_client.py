"""Frame decoding limits, the client's retry policy and the launcher's Prometheus config."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import cv2
import httpx
import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from serving.client import SidecarClient, SidecarError, encode_frame, tracks_from_result
from serving.launch import prometheus_config
from serving.sidecar.errors import (
    BadFrame,
    PayloadTooLarge,
    TritonBadResponse,
    TritonTimeout,
    TritonUnavailable,
)
from serving.sidecar.frames import (
    RAW,
    RawShape,
    decode_frame,
    jpeg_size,
    png_size,
    resize_for_model,
)
from serving.sidecar.triton_client import TritonDetector


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_size_reads_the_frame_header(progressive: bool) -> None:
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    body = cv2.imencode(".jpg", image, params)[1].tobytes()
    assert jpeg_size(body) == (53, 37)
    assert png_size(cv2.imencode(".png", image)[1].tobytes()) == (53, 37)


def test_size_limit_applies_before_decoding() -> None:
    body = cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))[1].tobytes()
    with pytest.raises(PayloadTooLarge):
        decode_frame(body, "image/png", RawShape(None, None), max_pixels=100 * 99)
    with pytest.raises(BadFrame):
        jpeg_size(b"\xff\xd8\xff\xd9")  # start and end of image, no frame


def test_raw_pixels_in_both_channel_orders() -> None:
    bgr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rgb = bgr[:, :, ::-1].copy()
    from_bgr = decode_frame(bgr.tobytes(), RAW, RawShape(3, 2, "bgr24"), 100)
    from_rgb = decode_frame(rgb.tobytes(), RAW, RawShape(3, 2, "rgb24"), 100)
    np.testing.assert_array_equal(from_bgr, bgr)
    np.testing.assert_array_equal(from_rgb, bgr)


def test_decoded_frames_get_the_model_resize_rule() -> None:
    from qdtrack.resize import resize_frame

    image = np.random.default_rng(1).integers(0, 255, (360, 640, 3), np.uint8)
    body, _ = encode_frame(image, "png")
    decoded = decode_frame(body, "image/png", RawShape(None, None), 10**7)
    frame = resize_for_model(decoded, (160, 160))
    expected, factor = resize_frame(image, (160, 160))
    np.testing.assert_array_equal(frame.image, expected)
    np.testing.assert_array_equal(frame.scale_factor, factor)
    assert frame.original_size == (360, 640)


def _client(handler) -> SidecarClient:
    client = SidecarClient("http://sidecar", retry_deadline_s=2.0, backoff_s=0.001)
    client._http = httpx.Client(base_url="http://sidecar", transport=httpx.MockTransport(handler))
    return client


def test_client_retries_the_same_index_on_503_and_connection_errors() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": "x"})
        return httpx.Response(200, json={"frame_index": 7, "tracks": []})

    client = _client(handler)
    assert client.push("s", 7, b"x", {"Content-Type": "image/jpeg"})["frame_index"] == 7
    assert calls == ["/v1/streams/s/frames/7"] * 3 and client.retries == 2


def test_client_does_not_retry_client_errors() -> None:
    client = _client(lambda request: httpx.Response(409, json={"error": "out_of_order"}))
    with pytest.raises(SidecarError) as info:
        client.push("s", 1, b"x", {"Content-Type": "image/jpeg"})
    assert info.value.status == 409 and client.retries == 0


def test_tracks_from_result() -> None:
    result = {"tracks": [{"track_id": 4, "box_xyxy": [1, 2, 3, 4], "score": 0.9, "label": 0}]}
    tracks = tracks_from_result(result)
    assert tracks.track_ids.tolist() == [4] and tracks.boxes_xyxy.shape == (1, 4)
    assert len(tracks_from_result({"tracks": []})) == 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_config_passes_promtool(tmp_path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(prometheus_config({"qdtrack-sidecar": "127.0.0.1:8080"}, 0.5))
    run = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        ("StatusCode.UNAVAILABLE", TritonUnavailable, 3),
        ("StatusCode.NOT_FOUND", TritonUnavailable, 3),  # model unloaded during a restart
        ("StatusCode.INTERNAL", TritonUnavailable, 3),  # call cut inside a restarting server
        ("StatusCode.DEADLINE_EXCEEDED", TritonTimeout, 1),
        ("StatusCode.INVALID_ARGUMENT", TritonBadResponse, 1),
    ],
)
def test_triton_errors_map_to_retryable_statuses(status: str, error: type, attempts: int) -> None:
    detector = TritonDetector("127.0.0.1:1", retries=2, backoff_s=0.001)
    calls = []

    async def failing() -> None:
        calls.append(1)
        raise InferenceServerException("server-side text", status=status)

    with pytest.raises(error) as info:
        asyncio.run(detector._call(failing))
    assert len(calls) == attempts
    assert "server-side text" not in info.value.detail  # in the log, not in the answer
    assert info.value.status in (503, 504, 502)


@pytest.mark.parametrize(("width", "height"), [(400, 1), (1, 400), (4096, 1), (1, 1), (3, 7)])
def test_resize_never_rounds_a_side_to_zero(width: int, height: int) -> None:
    from qdtrack.resize import rescale_size, resize_frame

    new_w, new_h, _ = rescale_size(width, height, (160, 160))
    assert min(new_w, new_h) >= 1 and max(new_w, new_h) == 160
    resized, factor = resize_frame(np.zeros((height, width, 3), np.uint8), (160, 160))
    assert resized.shape == (new_h, new_w, 3) and np.all(factor > 0)


def test_serve_says_how_to_require_a_token() -> None:
    from serving.launch import auth_hint

    assert "SIDECAR_AUTH_TOKEN=$(openssl rand -hex 24) make serve" in auth_hint({})
    assert auth_hint({"SIDECAR_AUTH_TOKEN": "x" * 10}).startswith("auth: on")
