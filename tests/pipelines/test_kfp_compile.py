"""The pipelines compile, the committed YAML is current, and the graph is what it claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import components
from pipelines import qdtrack_pipeline as cluster
from pipelines.local import local_pipeline

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
        f"{committed} is stale (the components, the pipeline or params.yaml changed): {REGENERATE}"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "p.yaml"
    assert cluster.main(["--output", str(target)]) == 0
    assert cluster.main(["--output", str(target), "--check"]) == 0
    target.write_text(target.read_text() + "# edited\n")
    assert cluster.main(["--output", str(target), "--check"]) == 1
    assert "make pipeline" in capsys.readouterr().err


def test_the_local_twin_compiles(tmp_path: Path) -> None:
    from kfp import compiler

    compiler.Compiler().compile(local_pipeline, str(tmp_path / "local.yaml"))
    tasks = next(yaml.safe_load_all((tmp_path / "local.yaml").read_text()))["root"]["dag"]
    assert {"prepare-data-local", "train-local", "gate-local"} <= set(tasks["tasks"])


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
    tasks = _all_tasks(spec)
    for name in ("gate", "deploy", "train-distributed", "report-not-deployed"):
        assert tasks[name]["cachingOptions"].get("enableCache", False) is False, name
    for name in ("prepare-data", "convert-data", "train", "evaluate"):
        assert tasks[name]["cachingOptions"]["enableCache"] is True, name


def test_parameter_defaults_come_from_params_yaml(spec: dict[str, Any]) -> None:
    params = yaml.safe_load((cluster.REPO_ROOT / "params.yaml").read_text())
    defaults = {
        name: definition.get("defaultValue")
        for name, definition in spec["root"]["inputDefinitions"]["parameters"].items()
    }
    assert defaults["gate_criteria"] == params["gate"]["criteria"]
    assert defaults["gate_max_drop"] == params["gate"]["max_drop"]
    assert defaults["model_name"] == params["deploy"]["model_name"]
    assert defaults["benchmark"] == params["evaluate"]["benchmark"]
    assert defaults["config"] == "params.yaml" and defaults["train_backend"] == "pod"
