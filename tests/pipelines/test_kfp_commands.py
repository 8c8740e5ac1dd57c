"""The container components run the ``qdtrack`` CLI: no shell, the DVC stages' commands.

Each executor of the compiled pipeline has its placeholders replaced by paths and its
default parameter values (list parameters as JSON, as KFP passes them), and the argv is
parsed by the real ``qdtrack`` parser. The end-to-end run of these argvs is
``test_kfp_local.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.pytorchjob import build_parser as launcher_parser
from pipelines.qdtrack_pipeline import compile_pipeline
from qdtrack.cli import build_parser
from qdtrack.config import expand_overrides

REPO = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](?:\.(path|output_file))?\}\}"
)
DATASET = "/workspace/data/dataset-0123abcd"
CONVERTED = "/workspace/data/converted-4567ef01"
_REQUIRED_VALUES = {
    "workspace_pvc": "qdtrack-workspace",
    "dataset": DATASET,
    "converted": CONVERTED,
}
# container step -> the qdtrack subcommand it runs (the dvc.yaml stage's, where there is one)
STEPS = {
    "prepare-data": "data prepare",
    "convert-data": "data convert",
    "train": "train",
    "track-val": "track-val",
    "evaluate": "evaluate",
    "gate": "gate",
    "export": "export",
    "deploy": "deploy",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    return next(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def _executors(compiled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name.removeprefix("exec-"): spec["container"]
        for name, spec in compiled["deploymentSpec"]["executors"].items()
    }


def _defaults(compiled: dict[str, Any], step: str) -> dict[str, Any]:
    spec = compiled["components"][f"comp-{step}"].get("inputDefinitions", {})
    values = dict(_REQUIRED_VALUES)
    for name, definition in spec.get("parameters", {}).items():
        if "defaultValue" in definition:
            value = definition["defaultValue"]
            values[name] = int(value) if definition["parameterType"] == "NUMBER_INTEGER" else value
    return values


def _resolve(item: str, values: dict[str, Any]) -> str:
    """One argument with its placeholders filled in (``Concat`` placeholders joined)."""
    if item.startswith('{"Concat"'):
        return "".join(_resolve(part, values) for part in json.loads(item)["Concat"])

    def replace(match: re.Match[str]) -> str:
        direction, group, name, _ = match.groups()
        if group == "parameters" and direction == "inputs":
            value = values[name]
            return json.dumps(value) if isinstance(value, list) else str(value)
        return f"/{direction}/{name}"

    return _PLACEHOLDER.sub(replace, item.replace("{{$.pipeline_task_uuid}}", "task-1"))


def argv_of(compiled: dict[str, Any], step: str, **values: Any) -> list[str]:
    container = _executors(compiled)[step]
    params = {**_defaults(compiled, step), **values}
    return [_resolve(item, params) for item in container["command"] + container["args"]]


def test_every_container_step_runs_the_cli_without_a_shell(compiled: dict[str, Any]) -> None:
    containers = {
        step: container
        for step, container in _executors(compiled).items()
        if "kfp.dsl.executor_main" not in " ".join(container["command"])
    }
    # evaluate runs twice (QDTrack, IoU tracker): KFP names the second executor evaluate-2
    assert set(containers) == set(STEPS) | {"train-distributed", "evaluate-2"}
    for step, container in containers.items():
        assert container["command"][0] in ("qdtrack", "python"), step
        assert "sh" not in container["command"] and "-c" not in container["command"], step


@pytest.mark.parametrize("step", sorted(STEPS))
def test_step_argv_parses_with_the_real_cli(compiled: dict[str, Any], step: str) -> None:
    argv = argv_of(compiled, step, overrides=["train.epochs=2", "tracker.type=iou"])
    assert argv[0] == "qdtrack"
    args = build_parser().parse_args(argv[1:])
    assert args.handler == STEPS[step]
    # the run's overrides arrive as one JSON list, which --set expands
    assert "train.epochs=2" in expand_overrides(args.set)
    assert args.config == "params.yaml"


def test_dataset_steps_see_the_dvc_layout(compiled: dict[str, Any]) -> None:
    """Relative paths of the config and of val.json resolve as under ``dvc repro``."""
    for step in ("convert-data", "track-val", "train"):
        args = build_parser().parse_args(argv_of(compiled, step)[1:])
        assert f"data/dataset={DATASET}" in args.link, step
    track = build_parser().parse_args(argv_of(compiled, "track-val")[1:])
    assert f"data/converted={CONVERTED}" in track.link
    assert track.manifest == "data/converted/val.json"
    evaluate = build_parser().parse_args(argv_of(compiled, "evaluate")[1:])
    assert evaluate.gt == f"{CONVERTED}/val_gt"


def test_data_moves_by_reference_on_the_workspace(compiled: dict[str, Any]) -> None:
    """The data steps write into the workspace volume and output paths, not artifacts;
    the steps that read them take strings (nothing is copied by KFP)."""
    for step, output in (("prepare-data", "dataset_path"), ("convert-data", "converted_path")):
        args = build_parser().parse_args(argv_of(compiled, step, workspace="/ws")[1:])
        assert args.store == "/ws/data" and args.out is None, step
        assert args.path_output == f"/outputs/{output}", step
        outputs = compiled["components"][f"comp-{step}"]["outputDefinitions"]
        assert set(outputs) == {"parameters"}, f"{step} has output artifacts"
    for step in ("train", "track-val", "evaluate", "convert-data", "train-distributed"):
        inputs = compiled["components"][f"comp-{step}"]["inputDefinitions"]
        artifacts = inputs.get("artifacts", {})
        assert not {"dataset", "converted"} & set(artifacts), step
        assert {"dataset", "converted"} & set(inputs["parameters"]), step


def test_train_resumes_in_a_task_folder_and_stays_cacheable(compiled: dict[str, Any]) -> None:
    args = build_parser().parse_args(argv_of(compiled, "train", workspace="/ws")[1:])
    assert args.workdir == "/ws/qdtrack-train/task-1" and args.resume
    assert args.out == "runs/train" and args.model_output == "/outputs/model"
    # no run id among the inputs: a rerun with the same inputs hits KFP's cache
    assert "run_id" not in compiled["components"]["comp-train"]["inputDefinitions"]["parameters"]


def test_gate_and_deploy_use_the_mounted_repository(compiled: dict[str, Any]) -> None:
    for step in ("gate", "deploy"):
        args = build_parser().parse_args(argv_of(compiled, step)[1:])
        assert "deploy.model_repository=/models" in args.set, step
    gate = build_parser().parse_args(argv_of(compiled, "gate")[1:])
    assert gate.passed_output == "/outputs/passed"


@pytest.mark.parametrize("export_format", ["onnx", "onnx-trt-fp16", "tensorrt"])
def test_export_formats_are_cli_choices(compiled: dict[str, Any], export_format: str) -> None:
    argv = argv_of(compiled, "export", export_format=export_format)
    assert build_parser().parse_args(argv[1:]).format == export_format


def test_distributed_launcher_arguments_parse(compiled: dict[str, Any]) -> None:
    container = _executors(compiled)["train-distributed"]
    argv = argv_of(compiled, "train-distributed", overrides=["train.epochs=2"])
    assert argv[:4] == ["python", "-m", "components.pytorchjob", "launch"]
    args = launcher_parser().parse_args(argv[3:])
    assert args.image == container["image"] and expand_overrides(args.set) == ["train.epochs=2"]
    assert args.run_id == "task-1" and args.workspace == "/workspace"  # the task's own id
    assert args.dataset == DATASET
    # no run id among the inputs: a rerun with the same inputs hits KFP's cache
    params = compiled["components"]["comp-train-distributed"]["inputDefinitions"]["parameters"]
    assert "run_id" not in params


@pytest.mark.integration
def test_data_step_pulls_with_real_dvc_in_a_folder_without_git(tmp_path: Path) -> None:
    """The image has dvc.lock / *.dvc and .dvc/config but no .git: ``--dvc-pull`` works."""
    dvc_bin = str(Path(sys.executable).parent / "dvc")

    def dvc(cwd: Path, *args: str) -> None:
        subprocess.run([dvc_bin, *args], cwd=cwd, check=True, capture_output=True, text=True,
                       timeout=120)  # fmt: skip

    source, remote, project = tmp_path / "source", tmp_path / "remote", tmp_path / "project"
    seq = source / "datasets" / "MOT17" / "train" / "SEQ-01"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=SEQ-01\nimDir=img1\nframeRate=10\nseqLength=1\nimWidth=4\n"
        "imHeight=4\nimExt=.jpg\n"
    )
    (seq / "gt" / "gt.txt").write_text("1,1,1,1,2,2,1,1,1\n")
    import cv2
    import numpy as np

    cv2.imwrite(str(seq / "img1" / "000001.jpg"), np.zeros((4, 4, 3), np.uint8))
    dvc(source, "init", "--no-scm", "-q")
    dvc(source, "add", "-q", "datasets/MOT17")
    dvc(source, "remote", "add", "-d", "origin", str(remote))
    dvc(source, "push", "-q")
    (project / ".dvc").mkdir(parents=True)  # what the Dockerfile copies, and no .git
    (project / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (project / "datasets").mkdir()
    (project / "datasets" / "MOT17.dvc").write_text((source / "datasets" / "MOT17.dvc").read_text())
    (project / "params.yaml").write_text("data:\n  source: path\n  path: datasets/MOT17\n")
    env_path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "qdtrack"), "data", "prepare", "--config",
         "params.yaml", "--dvc-pull", "datasets/MOT17.dvc", "--dvc-remote", str(remote),
         "--out", "data/dataset"],
        cwd=project, capture_output=True, text=True, timeout=300, env={"PATH": env_path},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (project / "datasets" / "MOT17" / "train" / "SEQ-01" / "gt" / "gt.txt").is_file()
    assert (project / "data" / "dataset" / "train" / "SEQ-01").is_dir()
    assert not (project / ".git").exists()
