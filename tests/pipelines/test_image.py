"""The Dockerfile the pipeline steps run in: plausible without building it (no engine here)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
IGNORED = [
    line.strip()
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def _copied() -> list[str]:
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return [s.rstrip("/") for s in sources]


def _excluded(path: str) -> bool:
    excluded = False
    for pattern in IGNORED:
        negate = pattern.startswith("!")
        if fnmatch.fnmatch(path, pattern.lstrip("!")) or path.startswith(pattern.lstrip("!") + "/"):
            excluded = not negate
    return excluded


def test_cuda_base_and_the_project_python() -> None:
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-cudnn-runtime-\S+$", DOCKERFILE, re.M)
    assert "FROM ${CUDA_IMAGE}" in DOCKERFILE
    requires = (REPO_ROOT / "pyproject.toml").read_text()
    assert ">=3.11,<3.12" in requires and "python3.11 -m venv" in DOCKERFILE


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    for source in _copied():
        assert (REPO_ROOT / source).exists(), source
        assert not _excluded(source), f"{source} is excluded by .dockerignore"
    assert {"qdtrack", "components", "params.yaml", "dvc.lock", ".dvc/config"} <= set(_copied())


def test_no_git_data_or_caches_in_the_image() -> None:
    for heavy in (".git", "data", "runs", ".dvc/cache", ".venv", "model_repository"):
        assert _excluded(heavy), heavy
    run_lines = [
        line for line in DOCKERFILE.splitlines() if "apt-get install" in line or "pip" in line
    ]
    assert not any(re.search(r"\bgit\b", line) for line in run_lines)
    assert "requirements.txt" in DOCKERFILE and "dvc-s3" in DOCKERFILE
