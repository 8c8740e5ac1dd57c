"""The main job under real DVC: stages run and cache, the gate blocks, remotes round-trip.

Runs ``dvc repro`` of the project's own ``dvc.yaml`` in a scratch git repository with a
tiny configuration (one short synthetic sequence per split, a few training iterations).
The same pipeline also accepts the multi-class TAO configuration
(``configs/cpu_tao_synth.yaml`` as ``params.yaml``): multi-class synthetic data, TAO + LVIS
training sources, the TAO tracker, Track AP / box AP evaluation, the gate on those metrics,
and the export of a 300-detection, box-clipping model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from qdtrack.export.triton_config import parse_config

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = {
    "data": {"frames": 12, "train_seqs": 1, "val_seqs": 1, "crowdhuman_images": 3},
    "model": {
        "img_scale": [160, 160],
        "fpn_channels": 32,
        "representation_size": 64,
        "roi_sampling_ratio": 2,
        "embed_conv_channels": 32,
        "embed_num_convs": 1,
        "embed_fc_channels": 64,
        "embed_channels": 32,
    },
    "tracker": {"init_score_thr": 0.3, "obj_score_thr": 0.2},
    "train": {
        "epochs": 1,
        "batch_size": 2,
        "lr_steps": [10],
        "warmup_iters": 1,
        "num_workers": 0,
        "max_iters_per_epoch": 2,
    },
}


def _run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")  # fmt: skip
    proc = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _set_params(repo: Path, updates: dict[str, dict[str, object]]) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for block, values in updates.items():
        params[block].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _checkout(root: Path, params: Path, updates: list[dict[str, dict[str, object]]]) -> Path:
    """A git + DVC checkout of the pipeline definition with ``params`` as ``params.yaml``."""
    repo = root / "project"
    repo.mkdir()
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy2(REPO_ROOT / name, repo / name)
    shutil.copy2(params, repo / "params.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "qdtrack", repo / "qdtrack", ignore=ignore)
    # only the committed placeholders: a local `make deploy` must not become the champion
    for name in ("datasets/README.md", "model_repository/README.md", "model_repository/.gitignore"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, repo / name)
    for update in updates:
        _set_params(repo, update)
    _run(repo, "git", "init", "-q")
    _run(repo, "dvc", "init", "-q")
    _run(repo, "dvc", "config", "core.analytics", "false")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "init")
    return repo


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The main job's checkout with the tiny parameters."""
    unreachable = {"gate": {"criteria": "HOTA>=101"}}  # the gate must block
    yield _checkout(tmp_path_factory.mktemp("dvc"), REPO_ROOT / "params.yaml", [TINY, unreachable])


@pytest.fixture(scope="module")
def runs(project: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """The checkout's repro history, made once per module whatever test asks first:
    blocked at the gate, re-run with a reachable gate, then once more (nothing to do)."""
    blocked = _run(project, "dvc", "repro", check=False)
    export_after_block = (project / "runs" / "export").exists()
    _set_params(project, {"gate": {"criteria": "HOTA>=0"}})
    rerun = _run(project, "dvc", "repro")
    again = _run(project, "dvc", "repro")
    return {
        "blocked": blocked,
        "rerun": rerun,
        "again": again,
        "export_after_block": export_after_block,  # type: ignore[dict-item]
    }


def test_gate_blocks_then_rerun_resumes_from_cached_stages(project: Path, runs: dict) -> None:
    failed = runs["blocked"]
    assert failed.returncode != 0
    assert "gate: FAIL" in failed.stderr + failed.stdout
    assert "HOTA" in failed.stderr + failed.stdout and "fails HOTA >= 101" in failed.stderr
    assert (project / "metrics" / "qdtrack.json").is_file()
    assert runs["export_after_block"] is False

    out = runs["rerun"].stdout
    for stage in ("data", "convert", "train", "track", "evaluate"):
        assert f"Running stage '{stage}'" not in out, out
    assert "Running stage 'gate'" in out and "Running stage 'export'" in out
    assert (project / "runs" / "export" / "qdtrack" / "config.pbtxt").is_file()
    assert "Data and pipelines are up to date." in runs["again"].stdout

    # The code a stage runs is one of its deps: touching the configuration module re-runs
    # training (the stage's deps are checked against its imports in test_dvc_deps.py).
    config_py = project / "qdtrack" / "config.py"
    original = config_py.read_text()
    config_py.write_text(original + "\n# touched\n")
    try:
        touched = _run(project, "dvc", "repro", "train")
        assert "Running stage 'train'" in touched.stdout, touched.stdout
    finally:
        config_py.write_text(original)
        _run(project, "dvc", "commit", "-f", "-q")
    assert "Data and pipelines are up to date." in _run(project, "dvc", "repro").stdout


def test_metrics_and_plots(project: Path, runs: dict) -> None:
    shown = _run(project, "dvc", "metrics", "show").stdout
    for name in ("HOTA", "MOTA", "IDF1"):
        assert name in shown
    _run(project, "dvc", "plots", "show", "-o", "plots_html")
    html = (project / "plots_html" / "index.html").read_text()
    assert "Training losses" in html and "HOTA per validation sequence" in html


def test_experiment_and_remote_round_trip(project: Path, runs: dict, tmp_path: Path) -> None:
    _run(project, "git", "add", "-A")
    _run(project, "git", "commit", "-q", "-m", "repro")
    exp = _run(project, "dvc", "exp", "run", "-S", "train.lr=0.02")
    assert "Running stage 'train'" in exp.stdout
    assert "0.02" in _run(project, "dvc", "exp", "show", "--csv").stdout

    remote = tmp_path / "remote"
    _run(project, "dvc", "remote", "add", "-d", "local", str(remote))
    _run(project, "dvc", "push")
    checkpoint = project / "runs" / "train" / "last.pt"
    before = checkpoint.read_bytes()
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(project / "data" / "dataset")
    checkpoint.unlink()
    _run(project, "dvc", "pull")
    assert checkpoint.read_bytes() == before
    assert (project / "data" / "dataset" / "train").is_dir()
    status = _run(project, "dvc", "status").stdout
    assert "up to date" in status


TINY_TAO = {
    "data": {"frames": 10, "train_seqs": 1, "val_seqs": 1, "crowdhuman_images": 3},
    "model": {
        "fpn_channels": 32,
        "representation_size": 64,
        "roi_sampling_ratio": 2,
        "embed_conv_channels": 32,
        "embed_num_convs": 1,
        "embed_fc_channels": 64,
        "embed_channels": 32,
    },
    "train": {
        "epochs": 1,
        "batch_size": 2,
        "lr_steps": [10],
        "warmup_iters": 1,
        "num_workers": 0,
        "max_iters_per_epoch": 2,
    },
}


@pytest.fixture(scope="module")
def tao_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same pipeline with ``configs/cpu_tao_synth.yaml`` as ``params.yaml``."""
    gate = {"gate": {"criteria": "TrackAP>=0,BoxAP>=0"}}
    config = REPO_ROOT / "configs" / "cpu_tao_synth.yaml"
    yield _checkout(tmp_path_factory.mktemp("dvc_tao"), config, [TINY_TAO, gate])


@pytest.fixture(scope="module")
def tao_run(tao_project: Path) -> subprocess.CompletedProcess[str]:
    """``dvc repro`` of the TAO checkout, once per module."""
    return _run(tao_project, "dvc", "repro")


def test_tao_configuration_runs_end_to_end(
    tao_project: Path, tao_run: subprocess.CompletedProcess[str]
) -> None:
    params = yaml.safe_load((tao_project / "params.yaml").read_text())
    assert params["tracker"]["type"] == "tao" and params["evaluate"]["benchmark"] == "TAO"
    done = tao_run
    for stage in ("data", "convert", "train", "track", "evaluate", "gate", "export"):
        assert f"Running stage '{stage}'" in done.stdout, done.stdout

    # multi-class data in TAO / LVIS format, both sources loaded with labels
    stats = json.loads((tao_project / "data" / "converted" / "stats.json").read_text())
    assert [s["kind"] for s in stats["train_sources"]] == ["tao", "lvis"]
    val = json.loads((tao_project / "data" / "converted" / "val.json").read_text())
    assert val["format"] == "tao" and [c["name"] for c in val["categories"]] == [
        "person",
        "car",
        "dog",
    ]
    # tracks in TAO result format with the gt's category ids; metrics from TrackEval + COCO
    tracks = json.loads((tao_project / "runs" / "track" / "results" / "tracks.json").read_text())
    assert tracks and {r["category_id"] for r in tracks} <= {1, 2, 3}
    metrics = json.loads((tao_project / "metrics" / "qdtrack.json").read_text())
    assert set(metrics) >= {"TrackAP", "TrackAP50", "TrackAP75", "BoxAP", "BoxAP50"}
    baseline = json.loads((tao_project / "metrics" / "iou_same_detections.json").read_text())
    assert "TrackAP" in baseline
    decision = json.loads((tao_project / "runs" / "gate" / "decision.json").read_text())
    assert decision["passed"] is True
    # the exported model keeps the TAO settings: 300 rows, classes and tracker carried along
    export = json.loads(
        (tao_project / "runs" / "export" / "qdtrack" / "1" / "export.json").read_text()
    )
    assert export["max_detections"] == 300 and export["tracker"] == "tao"
    assert export["class_names"] == ["person", "car", "dog"]
    pbtxt = (tao_project / "runs" / "export" / "qdtrack" / "config.pbtxt").read_text()
    outputs = {o.name: tuple(o.dims) for o in parse_config(pbtxt).output}
    assert outputs["boxes"] == (300, 4) and outputs["labels"] == (300,)

    shown = _run(tao_project, "dvc", "metrics", "show").stdout
    assert "TrackAP" in shown and "BoxAP" in shown
    _run(tao_project, "dvc", "plots", "show", "-o", "plots_html")
    html = (tao_project / "plots_html" / "index.html").read_text()
    assert "Track AP per class" in html


def test_tao_gate_blocks_on_track_ap(
    tao_project: Path, tao_run: subprocess.CompletedProcess[str]
) -> None:
    _set_params(tao_project, {"gate": {"criteria": "TrackAP>=101"}})
    failed = _run(tao_project, "dvc", "repro", check=False)
    assert failed.returncode != 0
    assert "fails TrackAP >= 101" in failed.stderr
    assert "Running stage 'train'" not in failed.stdout  # only the gate re-ran
