"""Helpers of the integration tests: a tiny exported model, the stack's settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.launch import TRITON_VENV, Service, sidecar_env_for, start_sidecar


def detecting_checkpoint(
    workspace: Path,
    out: Path,
    *,
    seed: int,
    overrides: Sequence[str] = (),
    cls_std: float = 1.0,
) -> Path:
    """A tiny checkpoint whose random weights detect and embed (as ``tests/export`` does).

    Random initial weights give near-constant scores around 0.5; widening the classifier
    and embedding weights spreads the scores over (0, 1) and separates the embeddings, so
    the tracker has something to do. Different seeds give different weights, hence
    different exported ``model_version`` strings. ``overrides`` change the tiny config
    (``--set`` syntax); ``cls_std`` keeps the class scores below saturation (scores tied
    at 1.0 make the order of the kept boxes arbitrary; more classes saturate sooner).
    """
    import torch

    from qdtrack.checkpoint import checkpoint_state, save_checkpoint
    from qdtrack.config import load_config
    from qdtrack.model.qdtrack import build_qdtrack

    config = load_config(workspace / "params.yaml", overrides)
    torch.manual_seed(seed)
    model = build_qdtrack(config.model)
    with torch.no_grad():
        model.detector.roi_heads.box_predictor.cls_score.weight.normal_(0.0, cls_std)
        model.track_head.embed_head.fc_embed.weight.normal_(0.0, 0.3)
    save_checkpoint(out, checkpoint_state(model, config))
    return out


def export_tiny(workspace: Path, folder: Path, *, seed: int, version: int) -> Path:
    """A model repository holding one tiny export; returns the repository folder."""
    from qdtrack.export.repository import export_repository

    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = detecting_checkpoint(workspace, folder / f"tiny-{seed}.pt", seed=seed)
    export_repository(checkpoint, folder / "repository", version=version)
    return folder / "repository"


def export_info(repository: Path) -> dict:
    """The ``export.json`` of the repository's latest version."""
    from qdtrack.export.runtime import latest_version_dir, read_metadata

    return read_metadata(latest_version_dir(repository / "qdtrack"))


def require_triton_venv() -> None:
    """Skip when ``.venv-triton`` (``make setup-serving``) is missing."""
    if not (TRITON_VENV / "bin" / "python").exists():
        pytest.skip(f"{TRITON_VENV} missing: run `make setup-serving`")


def sidecar_env(repository: Path, **extra: object) -> dict[str, str]:
    """``SIDECAR_*`` variables for a sidecar in front of ``repository``'s model."""
    env = sidecar_env_for(repository)
    env.update({f"SIDECAR_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def start_stack_sidecar(
    triton: Service, redis_server: Service, repository: Path, log_dir: Path, *, redis_prefix: str
) -> Service:
    """A sidecar process in front of ``triton`` keeping its streams under ``redis_prefix``."""
    return start_sidecar(
        log_dir,
        triton_grpc_port=triton.ports["grpc"],
        redis_port=redis_server.ports["redis"],
        env=sidecar_env(repository, redis_prefix=redis_prefix, readiness_cache_s=0),
    )


def sidecar_url(service: Service) -> str:
    """Base URL of a sidecar service."""
    return f"http://127.0.0.1:{service.ports['http']}"


JPEG = {"Content-Type": "image/jpeg"}


def sidecar_metric(url: str, name: str, **labels: str) -> float:
    """One sample of a sidecar process's ``/metrics`` (labels as written in the exposition)."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{want} not in {url}/metrics")


def post_frame(client: httpx.Client, stream: str, index: int, frame: Path) -> httpx.Response:
    """POST one JPEG file as frame ``index`` of ``stream``."""
    return client.post(
        f"/v1/streams/{stream}/frames/{index}", content=frame.read_bytes(), headers=JPEG
    )


def track_ids(result: dict) -> list[int]:
    """The track ids of a frame result."""
    return [t["track_id"] for t in result["tracks"]]


def same_tracks(got: dict, want: dict) -> None:
    """Two frame results hold the same tracks: ids, and boxes within 0.02 px."""
    assert track_ids(got) == track_ids(want), (track_ids(got), track_ids(want))
    for g, w in zip(got["tracks"], want["tracks"], strict=True):
        np.testing.assert_allclose(g["box_xyxy"], w["box_xyxy"], atol=0.02)


def uninterrupted_run(url: str, stream: str, frames: list[Path]) -> list[dict]:
    """The results of ``frames`` pushed as indices 0, 1, ... through a fresh stream, closed after.

    The reference a run with faults must equal: same model, same tracker, no interruption.
    """
    with httpx.Client(base_url=url) as client:
        assert client.put(f"/v1/streams/{stream}").status_code == 201
        results = []
        for index, frame in enumerate(frames):
            response = post_frame(client, stream, index, frame)
            assert response.status_code == 200, response.text
            results.append(response.json())
        assert client.delete(f"/v1/streams/{stream}").status_code == 204
    return results
