"""The stream API requires a bearer token in every overlay: the token comes from a Secret."""

from __future__ import annotations

import pytest
from k8s_helpers import OVERLAYS, one

from serving.sidecar.app import create_app
from serving.sidecar.settings import Settings


def _sidecar(objects: list[dict]) -> dict:
    deployment = one(objects, "Deployment", "qdtrack-serving")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "sidecar")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_auth_is_on_with_the_token_from_a_secret(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    sidecar = _sidecar(objects)
    token = next(e for e in sidecar["env"] if e["name"] == "SIDECAR_AUTH_TOKEN")
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "qdtrack-sidecar-auth" and ref["key"] == "token"
    assert not ref.get("optional", False), "a missing Secret must stop the pod, not disable auth"
    config = one(objects, "ConfigMap", sidecar["envFrom"][0]["configMapRef"]["name"])["data"]
    assert config["SIDECAR_REQUIRE_AUTH"] == "true"
    # no token committed to git: the Secret is created out of band
    assert not [o for o in objects if o["metadata"]["name"].startswith("qdtrack-sidecar-auth")]


def test_a_sidecar_that_requires_auth_refuses_to_start_without_a_token() -> None:
    with pytest.raises(ValueError, match="SIDECAR_AUTH_TOKEN"):
        create_app(Settings(require_auth=True))
    create_app(Settings(require_auth=True, auth_token="long-enough-token"))
