"""The distributed-training manifest and its launcher, offline (no cluster).

The rendered PyTorchJob is checked against the CRD's job-level fields
(``pytorchjob_v1_schema.json``), its pod templates against Kubernetes' own schema with
``kubernetes-validate`` (strict: unknown fields fail), and its command with the real
``torchrun`` and ``qdtrack`` parsers after the operator's environment is substituted.
The launcher runs against a fake Kubernetes API.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components import DEFAULT_IMAGE
from components.pytorchjob import (
    JobFailedError,
    JobSettings,
    JobTimeoutError,
    create_or_attach,
    job_name,
    launch,
    render_pytorchjob,
    train_args,
    wait_for_job,
)
from qdtrack.cli import build_parser

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
K8S_VERSION = "1.31.0"
SCHEMA = json.loads((HERE / "pytorchjob_v1_schema.json").read_text())


def _settings(**overrides: Any) -> JobSettings:
    values: dict[str, Any] = {
        "name": "qdtrack-train-3f2c5a1e",
        "namespace": "kubeflow",
        "image": DEFAULT_IMAGE,
        "train_args": tuple(train_args("/app/params.yaml", ["train.epochs=4", "train.lr=0.02"])),
        "workdir": "/workspace/qdtrack-train-3f2c5a1e",
        "workspace_pvc": "qdtrack-workspace",
        "nnodes": 2,
        "nproc_per_node": 4,
        "gpus_per_node": 4,
    }
    values.update(overrides)
    return JobSettings(**values)


def _operator_env(replica: str, index: int) -> dict[str, str]:
    """What the Training Operator injects into each replica (pkg/controller.v1/pytorch)."""
    rank = index + (1 if replica == "Worker" else 0)
    return {"MASTER_ADDR": "qdtrack-train-3f2c5a1e-master-0", "MASTER_PORT": "23456",
            "WORLD_SIZE": "2", "RANK": str(rank)}  # fmt: skip


def _expand(command: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' ``$(VAR)`` expansion of a container command."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in command]


# ----------------------------------------------------------------------------- manifest


@pytest.mark.parametrize("nnodes", [1, 2, 4])
def test_manifest_matches_the_crd(nnodes: int) -> None:
    manifest = render_pytorchjob(_settings(nnodes=nnodes))
    jsonschema.validate(manifest, SCHEMA)
    replicas = manifest["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    assert replicas.get("Worker", {}).get("replicas", 0) == nnodes - 1
    assert manifest["spec"]["nprocPerNode"] == "4"


def test_schema_rejects_what_the_operator_would() -> None:
    manifest = render_pytorchjob(_settings())
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["pytorchReplicaSpecs"]["Master"]["restartPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError, match="Sometimes"):
        jsonschema.validate(broken, SCHEMA)
    del broken["spec"]["pytorchReplicaSpecs"]
    with pytest.raises(jsonschema.ValidationError, match="pytorchReplicaSpecs"):
        jsonschema.validate(broken, SCHEMA)


def test_pod_templates_are_valid_kubernetes() -> None:
    manifest = render_pytorchjob(_settings())
    for kind, replica in manifest["spec"]["pytorchReplicaSpecs"].items():
        pod_template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{manifest['metadata']['name']}-{kind.lower()}"},
            "template": replica["template"],
        }
        try:
            kubernetes_validate.validate(pod_template, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind} template: {exc.message}")


def test_pods_have_gpus_shm_workspace_and_the_operator_names() -> None:
    manifest = render_pytorchjob(_settings())
    for replica in manifest["spec"]["pytorchReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"  # the operator finds the container by name
        assert container["ports"] == [
            {"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}
        ]
        assert container["image"] == DEFAULT_IMAGE
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
        claim = volumes[mounts["/workspace"]]["persistentVolumeClaim"]["claimName"]
        assert claim == "qdtrack-workspace"
        assert container["workingDir"].startswith("/workspace/")
        assert replica["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"


def test_cpu_job_has_no_gpu_limit_or_toleration() -> None:
    pod = render_pytorchjob(_settings(gpus_per_node=0))["spec"]["pytorchReplicaSpecs"]["Master"]
    assert "nvidia.com/gpu" not in pod["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert "tolerations" not in pod["template"]["spec"]


@pytest.mark.parametrize(("replica", "index"), [("Master", 0), ("Worker", 0)])
def test_command_is_torchrun_of_qdtrack_train(replica: str, index: int) -> None:
    """torchrun and qdtrack both accept the command, once Kubernetes expanded it."""
    from torch.distributed.run import get_args_parser

    manifest = render_pytorchjob(_settings())
    container = manifest["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]["containers"][
        0
    ]
    command = _expand(container["command"], _operator_env(replica, index))
    assert command[0] == "torchrun"
    launcher = get_args_parser().parse_args(command[1:])
    assert (launcher.nnodes, launcher.nproc_per_node) == ("2", "4")
    assert launcher.node_rank == (0 if replica == "Master" else 1)
    assert launcher.master_addr == "qdtrack-train-3f2c5a1e-master-0"
    assert launcher.module and launcher.training_script == "qdtrack.cli"
    train = build_parser().parse_args(launcher.training_script_args)
    assert train.command == "train" and train.resume and train.device == "cuda"
    assert train.set == ["train.epochs=4", "train.lr=0.02"]
    assert train.out == "runs/train" and train.config == "/app/params.yaml"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        _settings(name="Train_Job")
    with pytest.raises(ValueError, match="nnodes"):
        _settings(nnodes=0)
    with pytest.raises(ValueError, match="too long"):
        _settings(name="a" * 60)


def test_job_names_are_stable_and_valid() -> None:
    run_id = "3F2C5A1E-9B7D-4C1A-8E2F-0123456789AB"
    name = job_name(run_id)
    assert name == job_name(run_id)  # a retried step finds the same job
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 52
    _settings(name=name)


# ----------------------------------------------------------------------------- launcher


class FakeApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class FakeJobs:
    """The PyTorchJob part of the Kubernetes API: stored jobs and scripted status updates."""

    def __init__(self, statuses: list[dict[str, Any]] | None = None) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.statuses = list(statuses or [])
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        assert (group, version, plural) == ("kubeflow.org", "v1", "pytorchjobs")
        if body["metadata"]["name"] in self.jobs:
            raise FakeApiError(409)
        self.created.append(body)
        self.jobs[body["metadata"]["name"]] = dict(body)
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        if name not in self.jobs:
            raise FakeApiError(404)
        if self.statuses:
            self.jobs[name]["status"] = self.statuses.pop(0)
        return self.jobs[name]

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.deleted.append(name)
        return self.jobs.pop(name)


def _status(*conditions: str, message: str = "") -> dict[str, Any]:
    return {
        "conditions": [{"type": c, "status": "True", "message": message} for c in conditions],
        "replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 1}},
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_creates_once_and_attaches_on_retry() -> None:
    api = FakeJobs()
    manifest = render_pytorchjob(_settings())
    create_or_attach(api, manifest)
    create_or_attach(api, manifest)  # a retried step: same name, no second job
    assert len(api.created) == 1


def test_waits_until_succeeded_and_logs_changes(caplog: pytest.LogCaptureFixture) -> None:
    running = _status("Created", "Running")
    api = FakeJobs(
        [_status("Created"), running, running, _status("Created", "Running", "Succeeded")]
    )
    create_or_attach(api, render_pytorchjob(_settings()))
    clock = Clock()
    caplog.set_level("INFO", logger="pytorchjob")
    job = wait_for_job(
        api, "qdtrack-train-3f2c5a1e", "kubeflow", timeout_s=600, poll_s=10,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert job["status"]["conditions"][-1]["type"] == "Succeeded"
    states = [r.getMessage().split(": ", 1)[1].split(" ")[0] for r in caplog.records]
    assert states == ["Created", "Running", "Succeeded"]  # each change once


def test_failed_job_raises_with_the_operator_message() -> None:
    api = FakeJobs([_status("Created", "Failed", message="master exited with code 1")])
    create_or_attach(api, render_pytorchjob(_settings()))
    with pytest.raises(JobFailedError, match="master exited with code 1"):
        wait_for_job(api, "qdtrack-train-3f2c5a1e", "kubeflow", timeout_s=60, sleep=lambda s: None)


def test_timeout_deletes_the_job() -> None:
    api = FakeJobs([_status("Created", "Running")] * 100)
    create_or_attach(api, render_pytorchjob(_settings()))
    clock = Clock()
    with pytest.raises(JobTimeoutError, match="not finished after 60 s"):
        wait_for_job(
            api, "qdtrack-train-3f2c5a1e", "kubeflow", timeout_s=60, poll_s=15,
            clock=clock, sleep=clock.sleep,
        )  # fmt: skip
    assert api.deleted == ["qdtrack-train-3f2c5a1e"]


def test_launch_stages_data_runs_the_job_and_returns_the_checkpoint(tmp_path: Path) -> None:
    dataset = tmp_path / "artifacts" / "dataset"
    (dataset / "train" / "SYNTH-01").mkdir(parents=True)
    (dataset / "manifest.json").write_text("{}")
    workspace = tmp_path / "workspace"

    class TrainingJobs(FakeJobs):
        """Succeeds, having 'trained': writes runs/train/ in the job's working folder."""

        def create_namespaced_custom_object(self, group, version, namespace, plural, body):
            workdir = Path(body["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
                           ["containers"][0]["workingDir"])  # fmt: skip
            assert (workdir / "data" / "dataset" / "manifest.json").is_file()
            (workdir / "runs" / "train").mkdir(parents=True)
            (workdir / "runs" / "train" / "last.pt").write_bytes(b"weights")
            (workdir / "runs" / "train" / "losses.csv").write_text("step,loss\n")
            return super().create_namespaced_custom_object(group, version, namespace, plural, body)

    api = TrainingJobs([_status("Created", "Running", "Succeeded")])
    args = argparse.Namespace(
        dataset=str(dataset), model=str(tmp_path / "artifacts" / "model"), run_id="3f2c5a1e",
        config="params.yaml", set=['["train.epochs=4"]'], image=DEFAULT_IMAGE, nnodes=2,
        nproc_per_node=1, gpus_per_node=1, workspace_pvc="qdtrack-workspace",
        workspace=str(workspace), namespace="kubeflow", timeout=3600, poll=0.0,
    )  # fmt: skip
    assert launch(args, api) == 0
    assert (tmp_path / "artifacts" / "model" / "last.pt").read_bytes() == b"weights"
    (job,) = api.created
    assert job["metadata"]["name"] == "qdtrack-train-3f2c5a1e"
    command = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert "train.epochs=4" in command["command"] + command.get("args", [])
    assert job["spec"]["runPolicy"]["activeDeadlineSeconds"] == 3600


def test_a_dataset_on_the_workspace_is_linked_not_copied(tmp_path: Path) -> None:
    """The pipeline's data steps leave the dataset on the workspace volume: the job's
    folder links to it (every replica mounts the volume at the same path)."""
    from components.pytorchjob import stage_dataset

    workspace = tmp_path / "workspace"
    dataset = workspace / "data" / "dataset-0123"
    (dataset / "train").mkdir(parents=True)
    workdir = workspace / "qdtrack-train-task"
    stage_dataset(dataset, workdir, workspace)
    staged = workdir / "data" / "dataset"
    assert staged.is_symlink() and staged.resolve() == dataset.resolve()
    stage_dataset(dataset, workdir, workspace)  # a retried step finds the link in place
    assert staged.is_symlink() and (staged / "train").is_dir()


# ----------------------------------------------------------------------------- RBAC, volumes


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO_ROOT / "k8s" / "kubeflow").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubeflow_manifests_are_valid_kubernetes() -> None:
    for doc in _manifests():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message}")


def test_rbac_lets_the_launcher_do_what_it_does() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _manifests()}
    role = docs[("Role", "qdtrack-pytorchjob-launcher")]
    binding = docs[("RoleBinding", "qdtrack-pytorchjob-launcher")]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {("kubeflow.org", "pytorchjobs", v) for v in ("create", "get", "delete")}
    needed |= {("", "pods", "list"), ("", "pods/log", "get")}
    assert needed <= granted
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["namespace"] == role["metadata"]["namespace"]
    claims = {d["metadata"]["name"] for d in _manifests() if d["kind"] == "PersistentVolumeClaim"}
    from pipelines.qdtrack_pipeline import qdtrack_pipeline

    inputs = qdtrack_pipeline.component_spec.inputs
    assert {inputs["workspace_pvc"].default, inputs["model_repository_pvc"].default} == claims
