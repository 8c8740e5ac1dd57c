"""The model tells the sidecar how to use it: one repository, a MOT and a TAO model.

A MOT-config model (version 1) and a TAO-config model (version 2, three classes, the TAO
tracker, another resize rule) are exported into one model repository. Two PyTriton
servers stand in for two replicas during a rollout: one still serves version 1, the
other version 2. A sidecar in front of each runs with **no model settings at all**; each
must track like the offline pipeline run with *its* version's contract, which it can only
know from the version in each response.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from stack_helpers import detecting_checkpoint, require_triton_venv, sidecar_url

from qdtrack.deploy import publish_version
from qdtrack.export.repository import export_repository
from qdtrack.export.runtime import OnnxDetector, prepare_frame, unpack_detections
from qdtrack.export.serving_contract import ServingContract, repository_contracts
from qdtrack.gate import decide
from qdtrack.trackers import build_tracker
from serving.launch import Service, start_pytriton, start_sidecar

pytestmark = pytest.mark.integration
FRAMES = 6
#: What each version was deployed with (the gate's metrics; made up, distinct).
QUALITY = {"mot": {"HOTA": 41.5, "IDF1": 50.25}, "tao": {"HOTA": 12.75}}
#: The TAO-config model: three classes, the TAO tracker, another resize rule.
TAO_OVERRIDES = [
    "model.num_classes=3",
    "model.classes=[person,car,dog]",
    "model.img_scale=[224,128]",
    "tracker.type=tao",
    "tracker.init_score_thr=0.3",
    "tracker.obj_score_thr=0.2",
]


@pytest.fixture(scope="module")
def repository(tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two-models")
    mot = detecting_checkpoint(tiny_workspace, root / "mot.pt", seed=0)
    # three classes saturate at a smaller spread of the class weights
    tao = detecting_checkpoint(
        tiny_workspace, root / "tao.pt", seed=1, overrides=TAO_OVERRIDES, cls_std=0.002
    )
    for name, checkpoint in (("mot", mot), ("tao", tao)):  # export, then deploy: as shipped
        export_repository(checkpoint, root / f"export-{name}")
        metrics = QUALITY[name]
        passed = decide(metrics, champion=None, gate=None, max_drop=None)
        publish_version(root / f"export-{name}", root / "repo", metrics=metrics, decision=passed)
    return root / "repo"


@pytest.fixture(scope="module")
def contracts(repository: Path) -> dict[int, ServingContract]:
    found = repository_contracts(repository / "qdtrack")
    assert found[1].tracker["type"] == "qdtrack" and found[2].tracker["type"] == "tao"
    assert found[1].img_scale != found[2].img_scale
    return found


@pytest.fixture(scope="module")
def frames(tiny_workspace: Path) -> list[np.ndarray]:
    seq = next(p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir())
    files = sorted((seq / "img1").glob("*.jpg"))[:FRAMES]
    return [np.asarray(cv2.imread(str(path)), np.uint8) for path in files]


@pytest.fixture(scope="module")
def replicas(repository: Path, service_logs: Path) -> Iterator[dict[int, Service]]:
    """One sidecar per served version, each in front of its own PyTriton; no settings."""
    require_triton_venv()
    services: list[Service] = []
    sidecars = {}
    try:
        for version in (1, 2):
            triton = start_pytriton(repository, service_logs, model_version=version)
            services.append(triton)
            sidecar = start_sidecar(
                service_logs, triton_grpc_port=triton.ports["grpc"], redis_port=None
            )
            services.append(sidecar)
            sidecars[version] = sidecar
        yield sidecars
    finally:
        for service in reversed(services):
            service.kill()


def _offline(
    repository: Path, version: int, contract: ServingContract, frames: list[np.ndarray]
) -> list[list[dict]]:
    """Tracks of one version run in-process with ONNX Runtime and its contract."""
    detector = OnnxDetector.from_repository(repository, version=version, intra_op_threads=1)
    tracker = build_tracker(contract.tracker_settings())
    out = []
    for index, image in enumerate(frames):
        resized, scale = prepare_frame(image, contract.img_scale)
        tracks = tracker.update(unpack_detections(detector.infer(resized), scale), index)
        out.append(
            [
                {"track_id": int(t), "box_xyxy": np.round(b.astype(np.float64), 2).tolist()}
                for t, b in zip(tracks.track_ids, tracks.boxes_xyxy, strict=True)
            ]
        )
    return out


def _served(sidecar: Service, frames: list[np.ndarray]) -> tuple[list[dict], dict]:
    url = sidecar_url(sidecar)
    results = []
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.put("/v1/streams/cam").status_code == 201
        for index, image in enumerate(frames):
            _, png = cv2.imencode(".png", image)  # lossless: the pixels the reference saw
            response = client.post(
                f"/v1/streams/cam/frames/{index}",
                content=png.tobytes(),
                headers={"Content-Type": "image/png"},
            )
            assert response.status_code == 200, response.text
            results.append(response.json())
        info = client.get("/v1/streams/cam").json()
    return results, info


@pytest.mark.parametrize("version", [1, 2])
def test_each_replica_tracks_with_the_contract_of_the_version_it_serves(
    version: int,
    repository: Path,
    contracts: dict[int, ServingContract],
    replicas: dict[int, Service],
    frames: list[np.ndarray],
) -> None:
    contract = contracts[version]
    want = _offline(repository, version, contract, frames)
    assert sum(len(f) for f in want) > FRAMES, "the tiny model should track"
    results, info = _served(replicas[version], frames)
    # the version that answered, in every response: a replica still on version 1 while
    # the repository's newest contract is version 2's is visible frame by frame
    assert {r["model_version"] for r in results} == {contract.model_version}
    assert info["tracker"] == contract.tracker["type"]
    # the quality gauge shows what the served version was deployed with
    text = httpx.get(f"{sidecar_url(replicas[version])}/metrics").text
    quality = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("qdtrack_model_quality{")
    }
    assert quality == QUALITY["mot" if version == 1 else "tao"]
    for got, expected in zip(results, want, strict=True):
        assert [t["track_id"] for t in got["tracks"]] == [t["track_id"] for t in expected]
        for g, w in zip(got["tracks"], expected, strict=True):
            np.testing.assert_allclose(g["box_xyxy"], w["box_xyxy"], atol=0.02)


def test_the_other_versions_contract_would_track_differently(
    repository: Path, contracts: dict[int, ServingContract], frames: list[np.ndarray]
) -> None:
    """The test above can fail: version 2 tracked with version 1's contract differs."""
    wrong = ServingContract(**{**contracts[1].__dict__, "model_version": "x"})
    assert _offline(repository, 2, wrong, frames) != _offline(repository, 2, contracts[2], frames)
