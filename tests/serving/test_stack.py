"""The serving stack for real: PyTriton + Redis + sidecar processes (and Prometheus).

The tiny model is exported with the ``qdtrack export`` code, served by PyTriton from its
``config.pbtxt``, and tracked by sidecar processes; the reference is the same export run
in-process with ONNX Runtime and the same tracker settings.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from stack_helpers import export_info, require_triton_venv, sidecar_env, sidecar_url

from qdtrack.export.runtime import OnnxDetector, prepare_frame, unpack_detections
from qdtrack.trackers import build_tracker, tracker_settings
from serving.client import SidecarClient
from serving.launch import Service, start_prometheus, start_pytriton, start_sidecar

pytestmark = pytest.mark.integration
JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module", autouse=True)
def prometheus(sidecar: Service, triton: Service, service_logs: Path) -> Iterator[Service]:
    """Prometheus scraping the session sidecar and Triton, from the module's first test on.

    Started early because Prometheus hands new targets to its scrapers only every 5 s.
    """
    targets = {
        "qdtrack-sidecar": f"127.0.0.1:{sidecar.ports['http']}",
        "triton": f"127.0.0.1:{triton.ports['metrics']}",
    }
    service = start_prometheus(service_logs, targets, scrape_interval_s=0.5)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def frame_files(tiny_workspace: Path) -> list[Path]:
    """The JPEG files of the synthetic validation sequence (16 frames)."""
    seq = next(p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir())
    return sorted((seq / "img1").glob("*.jpg"))


@pytest.fixture(scope="module")
def reference(tiny_repository: Path, frame_files: list[Path]) -> list[list[dict]]:
    """Per frame, the tracks of the same export run in-process (ONNX Runtime + tracker)."""
    import cv2

    info = export_info(tiny_repository)
    detector = OnnxDetector.from_repository(tiny_repository, intra_op_threads=1)
    tracker = build_tracker(tracker_settings({"type": info["tracker"], **info["tracker_config"]}))
    per_frame = []
    for index, path in enumerate(frame_files):
        image, scale = prepare_frame(
            np.asarray(cv2.imread(str(path)), np.uint8), detector.img_scale
        )
        tracks = tracker.update(unpack_detections(detector.infer(image), scale), index)
        per_frame.append(
            [
                {"track_id": int(t), "box_xyxy": np.round(b.astype(np.float64), 2).tolist()}
                for t, b in zip(tracks.track_ids, tracks.boxes_xyxy, strict=True)
            ]
        )
    assert sum(len(f) for f in per_frame) > len(frame_files), "the tiny model should track"
    return per_frame


def _ids_and_boxes(result: dict) -> list[dict]:
    return [{"track_id": t["track_id"], "box_xyxy": t["box_xyxy"]} for t in result["tracks"]]


def _assert_same_tracks(got: list[dict], want: list[dict]) -> None:
    assert [t["track_id"] for t in got] == [t["track_id"] for t in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g["box_xyxy"], w["box_xyxy"], atol=0.02)


def test_stack_tracks_like_the_offline_pipeline(
    sidecar: Service, tiny_repository: Path, frame_files: list[Path], reference: list[list[dict]]
) -> None:
    url = sidecar_url(sidecar)
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["triton_model_ready"] is True
    version = export_info(tiny_repository)["model_version"]
    with httpx.Client(base_url=url) as client:
        assert client.put("/v1/streams/parity").status_code == 201
        for index, path in enumerate(frame_files):
            response = client.post(
                f"/v1/streams/parity/frames/{index}", content=path.read_bytes(), headers=JPEG
            )
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["model_version"] == version  # the config.pbtxt parameter
            _assert_same_tracks(_ids_and_boxes(result), reference[index])
        assert client.delete("/v1/streams/parity").status_code == 204


def test_qdtrack_stream_command(
    sidecar: Service, frame_files: list[Path], reference: list[list[dict]], tmp_path: Path
) -> None:
    from qdtrack.cli import main as cli
    from qdtrack.data.mot import read_mot_txt

    sequence = frame_files[0].parent.parent  # a MOTChallenge folder: frames numbered from 1
    video, results = tmp_path / "tracks.mp4", tmp_path / "res.txt"
    argv = ["stream", str(sequence), "--url", sidecar_url(sidecar), "--stream-id", "cli"]
    argv += ["--format", "png"]  # lossless: the very pixels the reference saw
    assert cli([*argv, "--render", str(video), "--out", str(results)]) == 0
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frame_files)
    capture.release()
    table = read_mot_txt(results, kind="results")
    for index, want in enumerate(reference):
        got = sorted(table.ids[table.frames == index + 1].tolist())
        assert got == sorted(t["track_id"] + 1 for t in want)  # MOT ids are 1-based
    assert httpx.get(f"{sidecar_url(sidecar)}/v1/streams/cli").status_code == 404  # closed


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not exported")


def test_kill_9_mid_stream_keeps_every_id(
    triton: Service,
    redis_server: Service,
    tiny_repository: Path,
    service_logs: Path,
    frame_files: list[Path],
    reference: list[list[dict]],
) -> None:
    env = sidecar_env(tiny_repository, redis_prefix="kill9:")
    ports = {"triton_grpc_port": triton.ports["grpc"], "redis_port": redis_server.ports["redis"]}
    first = start_sidecar(service_logs, env=env, **ports)
    url = sidecar_url(first)
    streams = [f"cam-{i}" for i in range(3)]
    results: dict[str, list[dict]] = {s: [] for s in streams}
    errors: list[BaseException] = []

    def run(stream: str) -> None:
        client = SidecarClient(url, retry_deadline_s=60)
        try:
            client.open(stream)
            for index, path in enumerate(frame_files):
                results[stream].append(client.push(stream, index, path.read_bytes(), JPEG))
                time.sleep(0.02)  # a camera, not a flood: the kill lands mid-stream
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            client.close_client()

    threads = [threading.Thread(target=run, args=(s,)) for s in streams]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while min(len(r) for r in results.values()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.kill()  # SIGKILL: no shutdown, requests in flight are lost
    done_at_kill = {s: len(r) for s, r in results.items()}
    second = start_sidecar(service_logs, port=first.ports["http"], env=env, **ports)
    try:
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert all(5 <= n < len(frame_files) for n in done_at_kill.values()), done_at_kill
        for stream in streams:
            assert len(results[stream]) == len(frame_files)
            for index, result in enumerate(results[stream]):
                _assert_same_tracks(_ids_and_boxes(result), reference[index])
        assert _metric(url, "qdtrack_sidecar_state_restores_total") == len(streams)
    finally:
        second.stop()


def test_triton_down_then_model_rollout(
    redis_server: Service,
    tiny_repository: Path,
    other_repository: Path,
    service_logs: Path,
    frame_files: list[Path],
    reference: list[list[dict]],
) -> None:
    require_triton_venv()
    triton = start_pytriton(tiny_repository, service_logs)
    grpc_port = triton.ports["grpc"]
    env = sidecar_env(
        tiny_repository, redis_prefix="down:", triton_timeout_s=2, readiness_cache_s=0
    )
    sidecar = start_sidecar(
        service_logs, triton_grpc_port=grpc_port, redis_port=redis_server.ports["redis"], env=env
    )
    url = sidecar_url(sidecar)
    client = httpx.Client(base_url=url)

    def push(index: int) -> httpx.Response:
        body = frame_files[index].read_bytes()
        return client.post(f"/v1/streams/s/frames/{index}", content=body, headers=JPEG)

    try:
        client.put("/v1/streams/s")
        for index in range(4):
            _assert_same_tracks(_ids_and_boxes(push(index).json()), reference[index])
        triton.kill()
        down = push(4)
        assert down.status_code == 503 and down.json()["error"] == "triton_unavailable"
        assert down.headers["retry-after"] == "1"
        assert client.get("/readyz").status_code == 503
        assert client.get("/v1/streams/s").json()["last_frame_index"] == 3  # untouched
        triton = start_pytriton(tiny_repository, service_logs, grpc_port=grpc_port)
        assert client.get("/readyz").status_code == 200
        for index in range(4, 8):
            _assert_same_tracks(_ids_and_boxes(push(index).json()), reference[index])
        # roll out other weights (version 2): the stream restarts its tracker, ids go on
        triton.kill()
        triton = start_pytriton(other_repository, service_logs, grpc_port=grpc_port)
        rolled = push(8).json()
        assert rolled["stream_reset"] is True
        assert rolled["model_version"] == export_info(other_repository)["model_version"]
        max_old_id = max(t["track_id"] for f in reference[:8] for t in f)
        assert all(t["track_id"] > max_old_id for t in rolled["tracks"])
        assert not push(9).json()["stream_reset"]
        assert _metric(url, 'qdtrack_sidecar_state_resets_total{reason="model_version"}') == 1
    finally:
        client.close()
        sidecar.stop()
        triton.kill()


def _promql(prometheus: Service, query: str) -> list[dict]:
    url = f"http://127.0.0.1:{prometheus.ports['http']}/api/v1/query?"
    with urllib.request.urlopen(url + urllib.parse.urlencode({"query": query}), timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    result: list[dict] = body["data"]["result"]
    return result


def test_prometheus_scrapes_the_sidecar(
    sidecar: Service, prometheus: Service, frame_files: list[Path]
) -> None:
    deadline = time.monotonic() + 15
    while not _promql(prometheus, 'up{job="qdtrack-sidecar"} == 1'):
        assert time.monotonic() < deadline, "Prometheus never scraped the sidecar"
        time.sleep(0.2)
    with httpx.Client(base_url=sidecar_url(sidecar)) as client:
        client.put("/v1/streams/prom")
        for index in range(12):  # frames over several scrapes (0.5 s apart)
            body = frame_files[index % len(frame_files)].read_bytes()
            client.post(f"/v1/streams/prom/frames/{index}", content=body, headers=JPEG)
            client.post("/v1/streams/prom/frames/0", content=b"", headers=JPEG)  # 400
            time.sleep(0.1)
    time.sleep(1.0)  # one more scrape after the last frame
    stages = _promql(
        prometheus,
        "histogram_quantile(0.99, sum by (le, stage) "
        "(rate(qdtrack_sidecar_frame_stage_seconds_bucket[5s])))",
    )
    assert {s["metric"]["stage"] for s in stages} == {
        "receive",
        "decode",
        "inference",
        "association",
        "persistence",
        "total",
    }
    rejected = _promql(prometheus, "sum by (reason) (qdtrack_sidecar_frames_rejected_total)")
    by_reason = {r["metric"]["reason"]: float(r["value"][1]) for r in rejected}
    assert by_reason["empty_body"] >= 12 and by_reason["bad_image"] == 0
    assert float(_promql(prometheus, "qdtrack_sidecar_active_streams")[0]["value"][1]) >= 1
    assert _promql(prometheus, "qdtrack_sidecar_new_tracks_total > 0")
    assert _promql(prometheus, "rate(qdtrack_sidecar_triton_request_seconds_count[5s]) > 0")
    triton_ok = _promql(prometheus, 'nv_inference_request_success{model="qdtrack"} > 0')
    assert triton_ok
