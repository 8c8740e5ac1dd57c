"""Datasets versioned with DVC: pointers in datasets/, files in data/raw/, a local remote.

Real DVC in scratch git repositories: ``scripts/track_dataset.sh`` versions a folder, the
files go to the default remote of the project's ``.dvc/config`` (a local folder) and come
back with ``dvc pull``; a stage depending on ``datasets/`` (as ``dvc.yaml``'s ``data``
stage does) still runs in a clone that does not have the files, so ``make run`` works
offline on a fresh clone. The committed pointers pin the exact bytes of the real data.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(cwd: Path, *argv: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _project(root: Path) -> Path:
    """A git + DVC repository with the project's DVC config, ignores and script."""
    repo = root / "project"
    (repo / "scripts").mkdir(parents=True)
    (repo / "datasets").mkdir()
    shutil.copy2(REPO / "scripts" / "track_dataset.sh", repo / "scripts")
    shutil.copy2(REPO / ".gitignore", repo / ".gitignore")
    (repo / "datasets" / "README.md").write_text("datasets\n")
    _run(repo, "git", "init", "-q")
    _run(repo, "dvc", "init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    return repo


def _pointer(path: Path) -> dict:
    (out,) = yaml.safe_load(path.read_text())["outs"]
    return dict(out)


def test_the_default_remote_is_a_local_folder() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    default = config["core"]["remote"]
    url = config[f"'remote \"{default}\"'"]["url"]  # DVC writes the section name quoted
    assert "://" not in url and not url.startswith("/"), "a folder beside the project"
    assert f"/{Path(url).name}/" in (REPO / ".gitignore").read_text()


def test_shipped_pointers_point_into_data_raw() -> None:
    pointers = sorted((REPO / "datasets").glob("*.dvc"))
    assert {p.stem for p in pointers} >= {"PETS09-S2L1", "MOT17-train-gt"}
    for pointer in pointers:
        assert _pointer(pointer)["path"] == f"../data/raw/{pointer.stem}", pointer.name


def test_version_push_pull_and_repro_without_the_files(tmp_path: Path) -> None:
    repo = _project(tmp_path)
    source = tmp_path / "incoming" / "TINY-01"
    (source / "gt").mkdir(parents=True)
    (source / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,1,1\n")
    (source / "seqinfo.ini").write_text("[Sequence]\nname=TINY-01\n")
    out = _run(repo, "scripts/track_dataset.sh", "TINY-01", str(source))
    assert "datasets/TINY-01.dvc" in out
    assert _pointer(repo / "datasets" / "TINY-01.dvc")["nfiles"] == 2
    _run(repo, "dvc", "push", "-q")
    assert any((repo / ".dvc-remote").rglob("*")), "pushed to the default local remote"
    (repo / "dvc.yaml").write_text(
        "stages:\n  data:\n    cmd: ls datasets > listing.txt\n    deps: [datasets]\n"
        "    outs: [listing.txt]\n"
    )
    _run(repo, "git", "add", "-A")
    tracked = _run(repo, "git", "ls-files")
    assert "datasets/TINY-01.dvc" in tracked and "data/raw" not in tracked  # files not in git
    # a fresh clone has the pointer, not the files: the pipeline still runs ...
    shutil.rmtree(repo / "data" / "raw" / "TINY-01")
    shutil.rmtree(repo / ".dvc" / "cache")
    _run(repo, "dvc", "repro", "-q")
    assert "TINY-01.dvc" in (repo / "listing.txt").read_text()
    # ... and `dvc pull` brings the exact files back
    _run(repo, "dvc", "pull", "-q", "datasets/TINY-01.dvc")
    assert (repo / "data/raw/TINY-01/gt/gt.txt").read_text() == "1,1,10,10,20,40,1,1,1\n"


@pytest.mark.parametrize("name", ["PETS09-S2L1", "MOT17-train-gt"])
def test_shipped_pointers_pin_the_real_data(name: str, shared_data: Path, tmp_path: Path) -> None:
    """Versioning the real folder again gives the committed pointer: same bytes."""
    if not (shared_data / name).is_dir():
        pytest.skip(f"{name} not in the shared data")
    repo = _project(tmp_path)
    _run(repo, "scripts/track_dataset.sh", name, str(shared_data / name))
    made, shipped = (_pointer(p / "datasets" / f"{name}.dvc") for p in (repo, REPO))
    assert made == shipped
