"""The Triton command line of the manifests, run by a real ``tritonserver``.

PyTriton's bundled server (2.51.0) takes the rendered args of both overlays (ports and the
repository path substituted, ``$(VAR)`` expanded from the container's env as the kubelet
does) against an **empty** model repository, as on a first install: every flag is
recognised, the server starts and stays live and ready (the sidecar's readiness is the one
that waits for a model), and its model-control API answers only with the deployer's key.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from k8s_helpers import OVERLAYS
from triton_helpers import MODEL_CONTROL_KEY, require_tritonserver, start_replica

from qdtrack.rollout import MODEL_CONTROL_HEADER

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_starts_live_on_an_empty_repository(
    rendered: dict, overlay: str, tmp_path: Path
) -> None:
    require_tritonserver()
    repository = tmp_path / "models"
    repository.mkdir()
    server = start_replica(rendered[overlay], repository, tmp_path / "work")
    try:
        url = f"http://127.0.0.1:{server.ports['http']}"
        log = server.log_tail(200)
        assert "unrecognized option" not in log, log
        assert httpx.get(f"{url}/v2/health/live").status_code == 200
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200  # the startup probe
        assert httpx.get(f"{url}/v2/models/qdtrack/ready").status_code != 200  # no model yet
        index = httpx.post(
            f"{url}/v2/repository/index", json={}, headers={MODEL_CONTROL_HEADER: MODEL_CONTROL_KEY}
        )
        assert index.status_code == 200 and index.json() == []
        refused = httpx.post(f"{url}/v2/repository/index", json={})
        assert refused.status_code == 403
        assert server.alive()
    finally:
        server.stop()
