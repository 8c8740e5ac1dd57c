"""The compiled pipeline runs locally (``kfp.local``) and decides with the config's gate.

``pipelines/qdtrack_pipeline.yaml`` itself (not the Python definition, and no twin of any
step) is loaded and run with ``kfp.local``'s ``SubprocessRunner``; its container steps
run the very ``qdtrack`` argv a pod would (``pipelines.local``). On tiny synthetic data
and a tiny model trained for a few iterations:

1. the default MOT configuration: nothing is deployed yet, the gate passes on the
   absolute criteria, the candidate is exported (ONNX) and published as version 1;
2. the same configuration with every detection turned into a track (flooding the results
   with false positives): its MOTA falls far below the allowed drop against that
   champion, the gate fails, the ``dsl.Else`` branch reports why, and no version 2;
3. the same compiled pipeline with the TAO CPU configuration: evaluated with Track AP and
   box AP, and gated on Track AP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("kfp.local")
# The components name the project image as base; the SubprocessRunner warns about it.
# Kubernetes-only task settings (GPUs, display names) do not apply locally; kfp says so.
pytestmark = [
    pytest.mark.filterwarnings("ignore:You may be attemping:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:.*have no effect in the current local runner:UserWarning"),
]

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = [
    "model.img_scale=[160, 160]",
    "model.fpn_channels=32",
    "model.representation_size=64",
    "model.roi_sampling_ratio=2",
    "model.embed_conv_channels=32",
    "model.embed_num_convs=1",
    "model.embed_fc_channels=64",
    "model.embed_channels=32",
    "train.epochs=1",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.max_iters_per_epoch=3",
    "train.warmup_iters=1",
]
TINY_MOT = [
    *TINY_MODEL,
    "data.frames=16",
    "data.train_seqs=1",
    "data.val_seqs=1",
    "data.crowdhuman_images=4",
    "tracker.init_score_thr=0.3",
    "tracker.obj_score_thr=0.2",
    "gate.criteria=HOTA>=0",
    "gate.max_drop=MOTA=1,HOTA=0.5,IDF1=1",
]
# Every box the detector outputs (score > 0.05) becomes a track: many false positives.
DEGRADED = ["tracker.init_score_thr=0.0", "tracker.obj_score_thr=0.0"]
TINY_TAO = [
    *TINY_MODEL,
    "data.frames=10",
    "data.train_seqs=1",
    "data.val_seqs=1",
    "data.crowdhuman_images=3",
    "gate.criteria=TrackAP>=0",
    "gate.max_drop=TrackAP=1",
    "deploy.model_name=qdtrack_tao",
]


def _run(root: Path, name: str, config: Path, overrides: list[str]) -> Path:
    from pipelines.local import local_arguments, run_pipeline

    arguments = local_arguments(str(config), overrides, root)
    run_pipeline(arguments, pipeline_root=root / "runs" / name)
    return root / "runs" / name


def _step_files(run: Path, step: str, name: str) -> list[Path]:
    return sorted(run.glob(f"*/{step}/{name}"))


@pytest.fixture(scope="module")
def mot_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kfp-local")
    params = REPO / "params.yaml"
    first = _run(root, "first", params, TINY_MOT)
    champion = json.loads((root / "model_repository" / "qdtrack" / "champion.json").read_text())
    second = _run(root, "second", params, [*TINY_MOT, *DEGRADED])
    return {"root": root, "first": first, "second": second, "champion": champion}


def _decision(run: Path) -> dict[str, Any]:
    (path,) = _step_files(run, "gate", "decision")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_first_candidate_passes_and_is_published(mot_runs: dict[str, Any]) -> None:
    model_dir = mot_runs["root"] / "model_repository" / "qdtrack"
    assert (model_dir / "config.pbtxt").is_file()
    assert (model_dir / "1" / "model.onnx").is_file()
    assert mot_runs["champion"]["version"] == 1
    assert set(mot_runs["champion"]["metrics"]) >= {"HOTA", "MOTA", "IDF1"}
    assert _decision(mot_runs["first"])["passed"] is True
    # both evaluations ran: QDTrack and the IoU tracker on the same detections
    assert len(_step_files(mot_runs["first"], "evaluate*", "summary")) == 2


def test_degraded_candidate_is_not_deployed_and_says_why(mot_runs: dict[str, Any]) -> None:
    decision = _decision(mot_runs["second"])
    assert decision["passed"] is False
    assert any("MOTA" in reason and "champion" in reason for reason in decision["reasons"])
    assert decision["champion"] == mot_runs["champion"]["metrics"]
    assert decision["candidate"]["MOTA"] < decision["champion"]["MOTA"] - 1
    (report,) = _step_files(mot_runs["second"], "report-not-deployed", "report")
    assert "MOTA" in report.read_text()
    versions = [p.name for p in (mot_runs["root"] / "model_repository" / "qdtrack").iterdir()]
    assert "2" not in versions and not _step_files(mot_runs["second"], "deploy", "*")


def test_the_same_compiled_pipeline_evaluates_and_gates_tao_on_track_ap(tmp_path: Path) -> None:
    run = _run(tmp_path, "tao", REPO / "configs" / "cpu_tao_synth.yaml", TINY_TAO)
    (summary,) = _step_files(run, "evaluate", "summary")
    metrics = json.loads(summary.read_text())
    assert set(metrics) >= {"TrackAP", "TrackAP50", "TrackAP75", "BoxAP"}
    assert "HOTA" not in metrics
    decision = _decision(run)
    assert decision["passed"] is True and set(decision["candidate"]) >= {"TrackAP"}
    repository = tmp_path / "model_repository" / "qdtrack_tao"
    champion = json.loads((repository / "champion.json").read_text())
    assert champion["metrics"]["TrackAP"] == metrics["TrackAP"]
    export = json.loads((repository / "1" / "export.json").read_text())
    assert export["tracker"] == "tao" and export["class_names"] == ["person", "car", "dog"]
    (tracks,) = _step_files(run, "track-val", "tracks/results/tracks.json")
    assert {r["category_id"] for r in json.loads(tracks.read_text())} <= {1, 2, 3}


def test_a_track_ap_criterion_blocks_a_tao_candidate(tmp_path: Path) -> None:
    """The gate of a TAO config decides on Track AP: an unreachable floor blocks it."""
    from qdtrack.cli import main as cli

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"TrackAP": 12.5, "TrackAP50": 20.0, "BoxAP": 30.0}))
    params = tmp_path / "params.yaml"
    config = yaml.safe_load((REPO / "configs" / "cpu_tao_synth.yaml").read_text())
    config["deploy"]["model_repository"] = str(tmp_path / "repo")
    params.write_text(yaml.safe_dump(config))
    passed = tmp_path / "passed"
    argv = ["gate", "--config", str(params), "--candidate", str(summary)]
    assert cli([*argv, "--set", "gate.criteria=TrackAP>=12", "--passed-output", str(passed)]) == 0
    assert passed.read_text() == "true"
    assert cli([*argv, "--set", "gate.criteria=TrackAP>=13", "--passed-output", str(passed)]) == 0
    assert passed.read_text() == "false"
