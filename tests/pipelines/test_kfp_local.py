"""The pipeline runs locally (``kfp.local``) and its gate takes both branches.

Two runs of ``pipelines.local.local_pipeline`` share one model repository, on tiny
synthetic data and a tiny model trained for a few iterations:

1. nothing is deployed yet, so only the absolute criteria apply: the gate passes, the
   candidate is exported (ONNX) and published as version 1 with ``champion.json``;
2. a deliberately degraded candidate (the same network with every detection turned into
   a track, flooding the results with false positives) is compared with that champion:
   its MOTA falls far below the allowed drop, the gate fails, the ``dsl.Else`` branch
   reports why, and no version 2 appears.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kfp.local")
# The shared components name the project image as base; the SubprocessRunner warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:You may be attemping:RuntimeWarning")

DATA_BLOCK = """
data:
  source: synth
  seed: 0
  train_seqs: 1
  val_seqs: 1
  frames: 16
  crowdhuman_images: 4
  val_split: full
"""
# Every box the detector outputs (score > 0.05) becomes a track: many false positives.
DEGRADED_TRACKER = json.dumps({"init_score_thr": 0.0, "obj_score_thr": 0.0})
MAX_DROP = "MOTA=1,HOTA=0.5,IDF1=1"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, tiny_workspace: Path) -> dict[str, Any]:
    from kfp import local

    from pipelines.local import local_pipeline

    root = tmp_path_factory.mktemp("kfp-local")
    params = root / "params.yaml"
    # The tiny model of the other tests, reading the dataset this pipeline prepares.
    tiny = (tiny_workspace / "params.yaml").read_text()
    params.write_text(DATA_BLOCK + tiny.replace(str(tiny_workspace / "data"), "data/dataset"))
    repository = root / "model_repository"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "runs"))
    common = {
        "config": str(params),
        "model_repository": str(repository),
        "gate_criteria": "HOTA>=0",
        "gate_max_drop": MAX_DROP,
        "export_format": "onnx",
    }
    first = local_pipeline(**common).output
    champion = json.loads((repository / "qdtrack" / "champion.json").read_text())
    second = local_pipeline(**common, tracker_config=DEGRADED_TRACKER).output
    decisions = sorted((root / "runs").glob("*/gate-local/decision"))
    return {
        "first": first,
        "second": second,
        "champion": champion,
        "repository": repository,
        "decisions": [json.loads(path.read_text()) for path in decisions],
    }


def test_first_candidate_passes_and_is_published(two_runs: dict[str, Any]) -> None:
    assert two_runs["first"].startswith("deployed qdtrack version 1"), two_runs["first"]
    model_dir = two_runs["repository"] / "qdtrack"
    assert (model_dir / "config.pbtxt").is_file()
    assert (model_dir / "1" / "model.onnx").is_file()
    assert two_runs["champion"]["version"] == 1
    assert set(two_runs["champion"]["metrics"]) >= {"HOTA", "MOTA", "IDF1"}


def test_degraded_candidate_is_not_deployed_and_says_why(two_runs: dict[str, Any]) -> None:
    message = two_runs["second"]
    assert message.startswith("not deployed (gate failed against the deployed model)"), message
    assert "MOTA" in message and "below champion" in message
    versions = [p.name for p in (two_runs["repository"] / "qdtrack").iterdir() if p.is_dir()]
    assert versions == ["1"]  # nothing new published
    champion = json.loads((two_runs["repository"] / "qdtrack" / "champion.json").read_text())
    assert champion == two_runs["champion"]  # the champion is unchanged


def test_decisions_record_both_metric_sets(two_runs: dict[str, Any]) -> None:
    passed, blocked = sorted(two_runs["decisions"], key=lambda d: not d["passed"])
    assert passed["passed"] and passed["champion"] is None
    assert not blocked["passed"] and blocked["champion"] == two_runs["champion"]["metrics"]
    assert blocked["candidate"]["MOTA"] < blocked["champion"]["MOTA"] - 1


# The multi-class TAO configuration with tiny sizes (the same overrides a user passes with
# `--set` or the pipeline's `overrides` parameter).
TAO_OVERRIDES = [
    "data.frames=10",
    "data.train_seqs=1",
    "data.val_seqs=1",
    "data.crowdhuman_images=3",
    "model.fpn_channels=32",
    "model.representation_size=64",
    "model.embed_conv_channels=32",
    "model.embed_num_convs=1",
    "model.embed_fc_channels=64",
    "model.embed_channels=32",
    "train.epochs=1",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.max_iters_per_epoch=2",
]


def test_pipeline_accepts_the_tao_configuration(tmp_path: Path) -> None:
    """configs/cpu_tao_synth.yaml through the same graph: multi-class data, the TAO
    tracker, Track AP / box AP, the gate on Track AP, export and deploy."""
    from kfp import local

    from pipelines.local import local_pipeline

    repo_root = Path(__file__).resolve().parents[2]
    repository = tmp_path / "model_repository"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "runs"))
    message = local_pipeline(
        config=str(repo_root / "configs" / "cpu_tao_synth.yaml"),
        overrides=TAO_OVERRIDES,
        model_repository=str(repository),
        benchmark="TAO",
        gate_criteria="TrackAP>=0,BoxAP>=0",
        gate_max_drop="TrackAP=1",
        model_name="qdtrack_tao",
        export_format="onnx",
    ).output
    assert message.startswith("deployed qdtrack_tao version 1"), message
    champion = json.loads((repository / "qdtrack_tao" / "champion.json").read_text())
    assert set(champion["metrics"]) >= {"TrackAP", "TrackAP50", "TrackAP75", "BoxAP"}
    export = json.loads((repository / "qdtrack_tao" / "1" / "export.json").read_text())
    assert export["tracker"] == "tao" and export["class_names"] == ["person", "car", "dog"]
    tracks = sorted((tmp_path / "runs").glob("*/track-val-local/tracks/results/tracks.json"))
    assert tracks and {r["category_id"] for r in json.loads(tracks[0].read_text())} <= {1, 2, 3}
