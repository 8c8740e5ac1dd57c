"""One TensorRT for the export image and the Triton image; `make images` builds both images.

``versions.env`` names the Triton image of the serving pods and the TensorRT of that
release; the pipeline image (Dockerfile) installs that TensorRT, so a ``model.plan`` built
by the export step loads in the serving Triton. The build goes through whichever of
docker, podman or buildah works; stand-in builders on PATH record what would run (no
container engine here).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from k8s_helpers import K8S, OVERLAYS
from triton_helpers import triton_container

import components

REPO = K8S.parent


def _env_file() -> dict[str, str]:
    pairs = {}
    for line in (REPO / "versions.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def _make_default(name: str) -> str:
    match = re.search(rf"^{name} \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_export_and_triton_images_share_one_tensorrt(rendered: dict) -> None:
    pins = _env_file()
    assert set(pins) == {"TRITON_IMAGE", "TENSORRT_VERSION"}
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG TENSORRT_VERSION={pins['TENSORRT_VERSION']}\n" in dockerfile
    assert 'tensorrt-cu13==${TENSORRT_VERSION}"' in dockerfile
    for overlay in OVERLAYS:
        assert triton_container(rendered[overlay])["image"] == pins["TRITON_IMAGE"], overlay
    makefile = (REPO / "Makefile").read_text()
    assert "include versions.env" in makefile
    assert "TENSORRT_VERSION=$(TENSORRT_VERSION)" in makefile


def test_installed_tensorrt_is_the_pinned_one() -> None:
    """In the export image (WITH_TENSORRT=1) the installed TensorRT is the pinned one."""
    tensorrt = pytest.importorskip("tensorrt")
    assert tensorrt.__version__ == _env_file()["TENSORRT_VERSION"]


def test_make_images_names_the_images_the_pipeline_and_manifests_use(rendered: dict) -> None:
    assert _make_default("PIPELINE_IMAGE") == components.DEFAULT_IMAGE
    spec = next(o for o in rendered["gpu"] if o["kind"] == "Deployment")["spec"]["template"]
    sidecar = next(c for c in spec["spec"]["containers"] if c["name"] == "sidecar")
    assert _make_default("SIDECAR_IMAGE") == sidecar["image"]


def _stub(folder: Path, name: str, info_ok: bool = True) -> None:
    script = folder / name
    info = "exit 0" if info_ok else "echo 'Cannot connect to the daemon' >&2; exit 1"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = info ]; then {info}; fi\necho "{name} $*" >> "{folder}/calls"\n'
    )
    script.chmod(0o755)


def _make_images(stubs: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IMAGE_BUILDER"}
    env["PATH"] = f"{stubs}:/usr/bin:/bin"
    return subprocess.run(
        ["make", "-s", "images"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        ({"podman": True}, "podman"),
        ({"buildah": True}, "buildah"),
        ({"docker": True, "podman": True}, "docker"),
        ({"docker": False, "buildah": True}, "buildah"),  # a docker CLI without its daemon
    ],
)
def test_make_images_uses_the_builder_that_works(
    tmp_path: Path, available: dict[str, bool], expected: str
) -> None:
    for name, works in available.items():
        _stub(tmp_path, name, works)
    done = _make_images(tmp_path)
    assert done.returncode == 0, done.stderr
    calls = [c for c in (tmp_path / "calls").read_text().splitlines() if " build " in c]
    assert [c.split()[0] for c in calls] == [expected, expected]
    pipeline, sidecar = calls
    assert f"-t {components.DEFAULT_IMAGE}" in pipeline and "-f Dockerfile" in pipeline
    assert f"TENSORRT_VERSION={_env_file()['TENSORRT_VERSION']}" in pipeline
    assert "-f serving/Dockerfile" in sidecar
    assert ("--ignorefile serving/Dockerfile.dockerignore" in sidecar) is (expected != "docker")


def test_make_images_without_a_builder_says_so(tmp_path: Path) -> None:
    done = _make_images(tmp_path)
    assert done.returncode != 0
    assert "install docker, podman or buildah" in done.stderr
    _stub(tmp_path, "docker", info_ok=False)
    done = _make_images(tmp_path)
    assert done.returncode != 0 and "daemon running" in done.stderr
