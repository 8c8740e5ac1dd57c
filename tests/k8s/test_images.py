"""The sidecar image (serving/Dockerfile): slim, non-root, pinned, only the sidecar's needs.

No Docker engine on the test machines: the Dockerfile is checked as text, and the slow test
replays its install steps in a fresh virtual environment and starts the app from it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_helpers import K8S

REPO = K8S.parent
DOCKERFILE = REPO / "serving" / "Dockerfile"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(\[[a-z,]+\])?==([0-9][0-9A-Za-z.+-]*)$")


def _lines() -> list[str]:
    """Dockerfile instructions with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _pip_pins() -> list[str]:
    run = next(ln for ln in _lines() if ln.startswith("RUN pip install") and "==" in ln)
    return [t.strip('"') for t in run.split()[3:]]


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = PIN.match(line.split("#")[0].strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def test_base_image_is_an_exact_python_311_slim_tag() -> None:
    arg = next(ln for ln in _lines() if ln.startswith("ARG PYTHON_IMAGE="))
    image = arg.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-bookworm)?(@sha256:[0-9a-f]{64})?", image), image
    froms = [ln for ln in _lines() if ln.startswith("FROM ")]
    assert len(froms) == 2 and all("${PYTHON_IMAGE}" in ln for ln in froms)


def test_runs_as_the_non_root_user_the_deployment_expects() -> None:
    from k8s_helpers import render

    user = [ln for ln in _lines() if ln.startswith("USER ")][-1].split()[1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), "numeric, so runAsNonRoot can check it"
    deployment = next(o for o in render(K8S / "base") if o["kind"] == "Deployment")
    sidecar = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar"
    )
    assert sidecar["securityContext"]["runAsUser"] == int(uid)
    assert sidecar["securityContext"]["runAsGroup"] == int(gid)
    entrypoint = next(ln for ln in _lines() if ln.startswith("ENTRYPOINT"))
    assert entrypoint == 'ENTRYPOINT ["python", "-m", "serving.sidecar"]'


def test_dependencies_are_pinned_like_requirements_txt() -> None:
    pins = _pip_pins()
    required = _requirements()
    assert pins
    for pin in pins:
        match = PIN.match(pin)
        assert match, f"{pin} is not pinned with =="
        name = match.group(1).lower().replace("_", "-")
        if name in required:
            assert match.group(3) == required[name], f"{name}: {match.group(3)} vs requirements.txt"
    names = {PIN.match(p).group(1).lower() for p in pins}  # type: ignore[union-attr]
    assert not names & {"torch", "torchvision", "onnx", "onnxruntime", "trackeval", "dvc", "kfp"}
    assert "opencv-python-headless" in names and "opencv-python" not in names


def test_build_context_keeps_only_what_the_image_copies() -> None:
    text = (REPO / "serving" / "Dockerfile.dockerignore").read_text()
    ignore = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*"
    copied = {ln.split()[1] for ln in _lines() if ln.startswith("COPY ") and "--from" not in ln}
    copied |= {p for ln in _lines() if ln.startswith("COPY pyproject") for p in ln.split()[1:-1]}
    for path in copied:
        assert f"!{path}" in ignore, f"{path} is copied but ignored"


@pytest.mark.slow
def test_the_image_install_runs_the_sidecar(tmp_path: Path) -> None:
    """Replays the Dockerfile's install steps in a new venv (downloads ~100 MB of wheels)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO / name).read_bytes())
    for package in ("qdtrack", "serving"):
        subprocess.run(["cp", "-r", str(REPO / package), str(source / package)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, *_pip_pins()], check=True, timeout=600)
    subprocess.run([*pip, "--no-deps", str(source)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    result = subprocess.run(
        [python, "-m", "serving.sidecar", "--print-openapi"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"title": "qdtrack tracking sidecar"' in result.stdout
    frozen = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    assert "torch" not in frozen and "trackeval" not in frozen
