"""The pipelines compile, the committed YAML is current, and the graph is what it claims."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import components
from pipelines import qdtrack_pipeline as cluster

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate it with `make pipeline` (python -m pipelines.qdtrack_pipeline)"


@pytest.fixture(scope="module")
def fresh_yaml(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    return cluster.compile_pipeline(path).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def spec(fresh_yaml: str) -> dict[str, Any]:
    return next(yaml.safe_load_all(fresh_yaml))


@pytest.fixture(scope="module")
def platform(fresh_yaml: str) -> dict[str, Any]:
    docs = list(yaml.safe_load_all(fresh_yaml))
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_committed_yaml_is_up_to_date(fresh_yaml: str) -> None:
    assert components.IMAGE == components.DEFAULT_IMAGE, (
        "QDTRACK_IMAGE is set: the committed YAML is compiled with the release image"
    )
    committed = cluster.PIPELINE_YAML
    assert committed.is_file(), f"{committed} is missing: {REGENERATE}"
    assert committed.read_text(encoding="utf-8") == fresh_yaml, (
        f"{committed} is stale (the components or the pipeline changed): {REGENERATE}"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "p.yaml"
    assert cluster.main(["--output", str(target)]) == 0
    assert cluster.main(["--output", str(target), "--check"]) == 0
    target.write_text(target.read_text() + "# edited\n")
    assert cluster.main(["--output", str(target), "--check"]) == 1
    assert "make pipeline" in capsys.readouterr().err


def _executor(spec: dict[str, Any], step: str) -> dict[str, Any]:
    return spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]


def _all_tasks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task of the pipeline, including those inside condition groups."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_images_are_pinned(spec: dict[str, Any]) -> None:
    images = {c["container"]["image"] for c in spec["deploymentSpec"]["executors"].values()}
    assert images == {components.DEFAULT_IMAGE}
    (image,) = images
    assert not image.endswith(":latest") and (
        ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image
    )


def test_training_gets_a_gpu_shm_and_the_workspace(
    spec: dict[str, Any], platform: dict[str, Any]
) -> None:
    accelerator = _executor(spec, "train")["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu" and accelerator["resourceCount"] == "1"
    train = platform["exec-train"]
    assert train["emptyDirMounts"][0]["mountPath"] == "/dev/shm"
    assert train["emptyDirMounts"][0]["medium"] == "Memory"
    assert [m["mountPath"] for m in train["pvcMount"]] == ["/workspace"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in train[
        "tolerations"
    ]
    assert _all_tasks(spec)["train"]["retryPolicy"]["maxRetryCount"] == 2
    assert [m["mountPath"] for m in platform["exec-train-distributed"]["pvcMount"]] == [
        "/workspace"
    ]
    for step in ("track-val", "export"):
        assert _executor(spec, step)["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"


def test_model_repository_is_mounted_where_gate_and_deploy_look(platform: dict[str, Any]) -> None:
    for step in ("gate", "deploy"):
        mounts = platform[f"exec-{step}"]["pvcMount"]
        assert [m["mountPath"] for m in mounts] == ["/models"]
        assert "model_repository_pvc" in mounts[0]["pvcNameParameter"]["componentInputParameter"]


def test_dvc_credentials_come_from_an_optional_secret(platform: dict[str, Any]) -> None:
    (secret,) = platform["exec-prepare-data"]["secretAsEnv"]
    assert secret["optional"] is True
    assert secret["secretNameParameter"]["componentInputParameter"] == "dvc_secret"
    assert {e["envVar"] for e in secret["keyToEnv"]} >= {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }


def test_gate_branches_on_its_boolean_output(spec: dict[str, Any]) -> None:
    conditions = {
        name: task["triggerPolicy"]["condition"]
        for name, task in _all_tasks(spec).items()
        if "triggerPolicy" in task
    }
    passed = [c for c in conditions.values() if "gate-passed" in c]
    assert "inputs.parameter_values['pipelinechannel--gate-passed'] == true" in passed
    assert "!(inputs.parameter_values['pipelinechannel--gate-passed'] == true)" in passed
    assert any("train_backend'] == 'pytorchjob'" in c for c in conditions.values())
    gate_outputs = spec["components"]["comp-gate"]["outputDefinitions"]["parameters"]
    assert gate_outputs["passed"]["parameterType"] == "BOOLEAN"
    tasks = _all_tasks(spec)
    assert {"export", "deploy", "report-not-deployed"} <= set(tasks)


def test_deploy_only_inside_the_passed_branch(spec: dict[str, Any]) -> None:
    for name, component in spec["components"].items():
        tasks = component.get("dag", {}).get("tasks", {})
        if "deploy" in tasks:
            assert "export" in tasks and "report-not-deployed" not in tasks, name
    assert "deploy" not in spec["root"]["dag"]["tasks"]


def test_caching_is_off_where_results_depend_on_the_outside(spec: dict[str, Any]) -> None:
    """The gate and deploy read and write the live model repository, and the data steps
    must find their folders on the volume: they always run. Training is cached."""
    tasks = _all_tasks(spec)
    for name in ("gate", "deploy", "report-not-deployed", "prepare-data", "convert-data"):
        assert tasks[name]["cachingOptions"].get("enableCache", False) is False, name
    for name in ("train", "train-distributed", "track-val", "evaluate"):
        assert tasks[name]["cachingOptions"]["enableCache"] is True, name


def test_compiled_yaml_does_not_depend_on_params_yaml(tmp_path: Path) -> None:
    """Compiled in a copy of the project whose params.yaml says something else entirely,
    the pipeline is byte-identical to the committed one: settings are run inputs."""
    repo = cluster.PIPELINE_YAML.parents[1]
    copy = tmp_path / "project"
    for name in ("components", "pipelines", "qdtrack"):
        shutil.copytree(repo / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "params.yaml").write_text(
        "evaluate: {benchmark: TAO}\ngate: {criteria: TrackAP>=99}\n"
        "deploy: {model_name: other}\ntrain: {epochs: 999}\n"
    )
    out = tmp_path / "pipeline.yaml"
    env = {**os.environ, "PYTHONPATH": str(copy)}
    env.pop("QDTRACK_IMAGE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.qdtrack_pipeline", "--output", str(out)],
        cwd=copy, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == cluster.PIPELINE_YAML.read_bytes()


def test_settings_are_run_inputs_not_compiled_defaults(spec: dict[str, Any]) -> None:
    defaults = {
        name: definition.get("defaultValue")
        for name, definition in spec["root"]["inputDefinitions"]["parameters"].items()
    }
    assert defaults["config"] == "params.yaml" and defaults["overrides"] == []
    assert not {"benchmark", "gate_criteria", "gate_max_drop", "model_name"} & set(defaults)


def test_deploy_step_carries_the_deployer_label_and_the_model_control_key(
    spec: dict[str, Any], platform: dict[str, Any]
) -> None:
    """The label the serving pods' NetworkPolicy admits, and the key their Triton's
    ``--http-restricted-api`` expects, from the same Secret the Deployment reads."""
    from qdtrack.rollout import MODEL_CONTROL_HEADER, MODEL_CONTROL_KEY_ENV

    deploy = platform["exec-deploy"]
    assert deploy["podMetadata"]["labels"] == {"qdtrack.io/deployer": "true"}
    (secret,) = deploy["secretAsEnv"]
    assert secret["keyToEnv"] == [{"envVar": MODEL_CONTROL_KEY_ENV, "secretKey": "key"}]
    assert "model_control_secret" in secret["secretNameParameter"]["componentInputParameter"]
    default = spec["root"]["inputDefinitions"]["parameters"]["model_control_secret"]
    deployment = yaml.safe_load((REPO / "k8s" / "base" / "deployment.yaml").read_text())
    containers = deployment["spec"]["template"]["spec"]["containers"]
    triton = next(c for c in containers if c["name"] == "triton")
    (key_env,) = [e for e in triton["env"] if e["name"] == "TRITON_MODEL_CONTROL_KEY"]
    assert key_env["valueFrom"]["secretKeyRef"] == {
        "name": default["defaultValue"],
        "key": secret["keyToEnv"][0]["secretKey"],
    }
    restricted = [a for a in triton["args"] if a.startswith("--http-restricted-api=")]
    assert restricted == [
        f"--http-restricted-api=model-repository:{MODEL_CONTROL_HEADER}=$(TRITON_MODEL_CONTROL_KEY)"
    ]
