"""The container components' commands exist in the ``qdtrack`` CLI, with these arguments.

Each executor of the compiled pipeline is run as its pod would run it: placeholders
replaced by real paths and the component's default parameter values, ``sh -ec SCRIPT``
executed, with a stand-in ``qdtrack`` (``qdtrack_shim.py``) that parses every call with the
real ``qdtrack`` argument parser, checks that the inputs it is given exist, and records the
call. ``dvc`` is a stand-in too (it records the call and "pulls" its targets).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.pytorchjob import build_parser as launcher_parser
from pipelines.qdtrack_pipeline import compile_pipeline

HERE = Path(__file__).resolve().parent
_PLACEHOLDER = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](?:\.(path|output_file))?\}\}"
)
# Input artifacts each component reads, with the files the next command expects in them.
_INPUT_FILES: dict[str, dict[str, str]] = {
    "dataset": {"train/.keep": ""},
    "converted": {"val.json": json.dumps({"split": "full", "sequences": []}), "val_gt/.keep": ""},
    "model": {"last.pt": "checkpoint"},
    "tracks": {"results/.keep": "", "iou_results/.keep": ""},
    "exported": {"qdtrack/config.pbtxt": ""},
}
_INPUT_JSON_FILES = ("summary", "decision")
# Parameters without a default in the component.
_REQUIRED_VALUES = {"run_id": "3f2c5a1e-run", "workspace_pvc": "qdtrack-workspace"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    return next(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def _executors(compiled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name.removeprefix("exec-"): spec["container"]
        for name, spec in compiled["deploymentSpec"]["executors"].items()
    }


def _parameter_defaults(compiled: dict[str, Any], step: str) -> dict[str, Any]:
    spec = compiled["components"][f"comp-{step}"].get("inputDefinitions", {})
    values = dict(_REQUIRED_VALUES)
    for name, definition in spec.get("parameters", {}).items():
        if "defaultValue" in definition:
            value = definition["defaultValue"]
            values[name] = int(value) if definition["parameterType"] == "NUMBER_INTEGER" else value
    return values


def _materialise(tmp: Path, kind: str, name: str) -> str:
    root = tmp / kind / name
    if kind == "in" and name in _INPUT_JSON_FILES:
        root.parent.mkdir(parents=True, exist_ok=True)
        root.write_text(json.dumps({"HOTA": 50.0, "passed": True, "reasons": []}))
        return str(root)
    if kind == "in":
        for relative, text in _INPUT_FILES.get(name, {}).items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)
    root.parent.mkdir(parents=True, exist_ok=True)
    return str(root)


def _substitute(items: list[str], tmp: Path, values: dict[str, Any]) -> list[str]:
    def replace(match: re.Match[str]) -> str:
        direction, group, name, _ = match.groups()
        if group == "parameters" and direction == "inputs":
            return str(values[name])
        return _materialise(tmp, "in" if direction == "inputs" else "out", name)

    return [_PLACEHOLDER.sub(replace, item) for item in items]


def _shim_bin(tmp: Path, fake_dvc: bool) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    shims = {
        "qdtrack": f"#!{sys.executable}\n" + (HERE / "qdtrack_shim.py").read_text(),
        "dvc": (
            "#!/bin/sh\n"
            'printf "%s\\n" "$*" >> "$DVC_SHIM_LOG"\n'
            'if [ "$1" = pull ]; then shift; for t in "$@"; do mkdir -p "$t"; done; fi\n'
        ),
    }
    if not fake_dvc:
        del shims["dvc"]
    for name, text in shims.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IEXEC)
    return bin_dir


def run_executor(
    container: dict[str, Any],
    tmp: Path,
    values: dict[str, Any],
    *,
    gate_exit: int = 0,
    fake_dvc: bool = True,
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], list[str]]:
    """Run one executor's command in ``tmp/project`` (the image's WORKDIR stand-in)."""
    project = tmp / "project"
    project.mkdir(exist_ok=True)
    if not (project / "params.yaml").exists():
        (project / "params.yaml").write_text("data: {}\n")
    argv = _substitute(container["command"] + container.get("args", []), tmp, values)
    env = dict(os.environ)
    env.update(
        PATH=f"{_shim_bin(tmp, fake_dvc)}{os.pathsep}{Path(sys.executable).parent}"
        f"{os.pathsep}{env['PATH']}",
        QDTRACK_SHIM_LOG=str(tmp / "qdtrack.log"),
        DVC_SHIM_LOG=str(tmp / "dvc.log"),
        QDTRACK_SHIM_GATE_EXIT=str(gate_exit),
    )
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    qdtrack_log = tmp / "qdtrack.log"
    calls = (
        [json.loads(line) for line in qdtrack_log.read_text().splitlines()]
        if qdtrack_log.exists()
        else []
    )
    dvc_log = tmp / "dvc.log"
    dvc_calls = dvc_log.read_text().splitlines() if dvc_log.exists() else []
    return done, calls, dvc_calls


SHELL_STEPS = {
    # step: (expected qdtrack subcommands, parameter values beyond the defaults)
    "prepare-data": (["data prepare"], {}),
    "convert-data": (["data convert"], {"overrides": "train.epochs=1 data.val_split=full"}),
    "train": (["train"], {"overrides": "train.epochs=2 train.lr=0.005"}),
    "track-val": (["track-val"], {"tracker_config": '{"init_score_thr": 0.8}'}),
    "evaluate": (["evaluate", "evaluate"], {}),
    "gate": (["gate"], {}),
    "export": (["export"], {}),
    "deploy": (["deploy"], {"triton_url": "http://triton:8000"}),
}


def _subcommand(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "data" else argv[0]


def test_every_container_step_is_covered(compiled: dict[str, Any]) -> None:
    containers = {
        step
        for step, container in _executors(compiled).items()
        if "kfp.dsl.executor_main" not in " ".join(container["command"])
    }
    assert containers == set(SHELL_STEPS) | {"train-distributed"}


@pytest.mark.parametrize("step", sorted(SHELL_STEPS))
def test_container_step_runs_real_cli_commands(
    compiled: dict[str, Any], step: str, tmp_path: Path
) -> None:
    expected, extra = SHELL_STEPS[step]
    values = {**_parameter_defaults(compiled, step), **extra}
    done, calls, _ = run_executor(_executors(compiled)[step], tmp_path, values)
    assert done.returncode == 0, f"{step} failed:\n{done.stdout}\n{done.stderr}"
    assert [_subcommand(call["argv"]) for call in calls] == expected, calls
    for call in calls:
        # Overrides arrive as separate --set KEY=VALUE pairs, exactly as typed.
        sets = [call["argv"][i + 1] for i, a in enumerate(call["argv"]) if a == "--set"]
        if "overrides" in extra:
            assert sets == extra["overrides"].split()


def test_data_step_pulls_with_dvc_without_git(compiled: dict[str, Any], tmp_path: Path) -> None:
    values = {
        **_parameter_defaults(compiled, "prepare-data"),
        "dvc_targets": "datasets/MOT17.dvc",
        "dvc_remote": "s3://qdtrack-data/dvc",
        "overrides": "data.source=path data.path=datasets/MOT17",
    }
    done, calls, dvc_calls = run_executor(_executors(compiled)["prepare-data"], tmp_path, values)
    assert done.returncode == 0, done.stderr
    assert dvc_calls[0] == "config --local core.no_scm true"
    assert "remote add --local --force --default pipeline s3://qdtrack-data/dvc" in dvc_calls
    assert dvc_calls[-1] == "pull datasets/MOT17.dvc"
    argv = calls[0]["argv"]
    assert argv[:2] == ["data", "prepare"]
    assert argv[4:8] == ["--set", "data.source=path", "--set", "data.path=datasets/MOT17"]


@pytest.mark.integration
def test_data_step_pulls_with_real_dvc_in_a_folder_without_git(
    compiled: dict[str, Any], tmp_path: Path
) -> None:
    """The image has dvc.lock / *.dvc and .dvc/config but no .git: ``dvc pull`` must work."""

    def dvc(cwd: Path, *args: str) -> None:
        subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, check=True,
                       capture_output=True, text=True, timeout=120)  # fmt: skip

    source, remote, project = tmp_path / "source", tmp_path / "remote", tmp_path / "project"
    (source / "datasets" / "MOT17" / "train").mkdir(parents=True)
    (source / "datasets" / "MOT17" / "train" / "gt.txt").write_text("1,1,10,10,5,5,1,1,1\n")
    dvc(source, "init", "--no-scm", "-q")
    dvc(source, "add", "-q", "datasets/MOT17")
    dvc(source, "remote", "add", "-d", "origin", str(remote))
    dvc(source, "push", "-q")
    (project / ".dvc").mkdir(parents=True)  # what the Dockerfile copies, and no .git
    (project / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (project / "datasets").mkdir()
    (project / "datasets" / "MOT17.dvc").write_text((source / "datasets" / "MOT17.dvc").read_text())
    values = {
        **_parameter_defaults(compiled, "prepare-data"),
        "dvc_targets": "datasets/MOT17.dvc",
        "dvc_remote": str(remote),
        "overrides": "data.source=path data.path=datasets/MOT17",
    }
    done, calls, _ = run_executor(
        _executors(compiled)["prepare-data"], tmp_path, values, fake_dvc=False
    )
    assert done.returncode == 0, done.stderr
    assert (project / "datasets" / "MOT17" / "train" / "gt.txt").is_file()
    assert not (project / ".git").exists()
    assert calls[0]["argv"][:2] == ["data", "prepare"]


def test_steps_see_the_dvc_layout(compiled: dict[str, Any], tmp_path: Path) -> None:
    """Relative paths of params.yaml and val.json resolve as under ``dvc repro``."""
    values = _parameter_defaults(compiled, "track-val")
    done, calls, _ = run_executor(_executors(compiled)["track-val"], tmp_path, values)
    assert done.returncode == 0, done.stderr
    cwd = Path(calls[0]["cwd"])
    assert (cwd / "data" / "dataset").resolve() == (tmp_path / "in" / "dataset").resolve()
    assert (cwd / "data" / "converted").resolve() == (tmp_path / "in" / "converted").resolve()


def test_train_step_resumes_in_a_run_folder_on_the_workspace(
    compiled: dict[str, Any], tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    values = {**_parameter_defaults(compiled, "train"), "workspace": str(workspace)}
    done, calls, _ = run_executor(_executors(compiled)["train"], tmp_path, values)
    assert done.returncode == 0, done.stderr
    argv = calls[0]["argv"]
    assert argv[argv.index("--out") + 1] == "runs/train" and "--resume" in argv
    assert Path(calls[0]["cwd"]) == workspace / "qdtrack-train-3f2c5a1e-run"
    assert (tmp_path / "out" / "model" / "last.pt").read_bytes() == b"checkpoint"


@pytest.mark.parametrize(
    ("gate_exit", "passed", "rc"), [(0, "true", 0), (1, "false", 0), (2, None, 2)]
)
def test_gate_exit_code_becomes_the_passed_output(
    compiled: dict[str, Any], tmp_path: Path, gate_exit: int, passed: str | None, rc: int
) -> None:
    values = {
        **_parameter_defaults(compiled, "gate"),
        "criteria": "HOTA>=40,IDF1>=40",
        "max_drop": "HOTA=0.5",
    }
    done, calls, _ = run_executor(
        _executors(compiled)["gate"], tmp_path, values, gate_exit=gate_exit
    )
    assert done.returncode == rc, done.stderr
    argv = calls[0]["argv"]
    assert argv[argv.index("--gate") + 1] == "HOTA>=40,IDF1>=40"
    assert argv[argv.index("--model-repository") + 1] == "/models"
    output = tmp_path / "out" / "passed"
    assert (output.read_text() if output.exists() else None) == passed


def test_empty_optional_flags_are_left_out(compiled: dict[str, Any], tmp_path: Path) -> None:
    values = {**_parameter_defaults(compiled, "gate"), "criteria": "", "max_drop": ""}
    done, calls, _ = run_executor(_executors(compiled)["gate"], tmp_path, values)
    assert done.returncode == 0, done.stderr
    assert "--gate" not in calls[0]["argv"] and "--max-drop" not in calls[0]["argv"]


def test_distributed_launcher_arguments_parse(compiled: dict[str, Any], tmp_path: Path) -> None:
    container = _executors(compiled)["train-distributed"]
    values = _parameter_defaults(compiled, "train-distributed")
    argv = _substitute(container["command"] + container["args"], tmp_path, values)
    assert argv[:4] == ["python", "-m", "components.pytorchjob", "launch"]
    args = launcher_parser().parse_args(argv[3:])
    assert args.image == container["image"]
    assert args.run_id == values["run_id"] and args.workspace == "/workspace"


def test_scripts_are_posix_sh(compiled: dict[str, Any]) -> None:
    """The image's /bin/sh may be dash: no bash-only syntax in the scripts."""
    for step, container in _executors(compiled).items():
        script = container["command"][2] if container["command"][:2] == ["sh", "-ec"] else ""
        if not script or "kfp.dsl.executor_main" in script:
            continue
        for bashism in ("[[", "function ", "pipefail", "$'", "<<<", "${!"):
            assert bashism not in script, (step, bashism)
        checked = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert checked.returncode == 0, (step, checked.stderr)
        assert shlex.split(script.splitlines()[0]) == ["set", "-f"]


@pytest.mark.parametrize(
    ("export_format", "flags"),
    [("onnx", ["--format", "onnx"]), ("onnx-trt-fp16", ["--format", "onnx", "--trt-fp16"]),
     ("tensorrt", ["--format", "tensorrt"])],
)  # fmt: skip
def test_export_formats(
    compiled: dict[str, Any], tmp_path: Path, export_format: str, flags: list[str]
) -> None:
    values = {**_parameter_defaults(compiled, "export"), "export_format": export_format}
    done, calls, _ = run_executor(_executors(compiled)["export"], tmp_path, values)
    assert done.returncode == 0, done.stderr
    argv = calls[0]["argv"]
    assert argv[argv.index("--format") : argv.index("--format") + len(flags)] == flags
