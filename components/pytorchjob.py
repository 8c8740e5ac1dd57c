"""Multi-node DDP training as a Kubeflow Training Operator ``PyTorchJob`` (``kubeflow.org/v1``).

:func:`render_pytorchjob` builds the manifest: one ``Master`` and ``nnodes - 1``
``Worker`` replicas of the project image, each running
``torchrun ... -m qdtrack.cli train`` (the same command as the single-node step, whose
``init_distributed`` reads the variables ``torchrun`` sets), with GPU limits, a
memory-backed ``/dev/shm`` for the data loader workers and NCCL, and the shared
workspace volume that holds the dataset and the checkpoints.

:func:`launch` is what the pipeline's ``train-distributed`` step runs
(``python -m components.pytorchjob launch ...``): it links the dataset folder (already on
the workspace volume) into the job's folder, creates the job (or attaches to it when a job
of that name already exists, so a retried step never starts a second training), waits
with a deadline while logging every state change, prints the master's last log lines,
and copies the checkpoint into the step's output artifact. The Training Operator must be installed
(it is not part of standalone KFP) and the pipeline's service account needs the RBAC
in ``k8s/kubeflow/pytorchjob-rbac.yaml``.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qdtrack.config import expand_overrides

GROUP = "kubeflow.org"
VERSION = "v1"
PLURAL = "pytorchjobs"
KIND = "PyTorchJob"
CONTAINER_NAME = "pytorch"  # the operator looks for this container name
PORT_NAME = "pytorchjob-port"  # ... and this port name (default port 23456)
PORT = 23456
GPU_RESOURCE = "nvidia.com/gpu"
WORKSPACE_VOLUME = "workspace"
SHM_VOLUME = "dshm"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_NAME_MAX = 63  # DNS-1123 label; the operator appends "-master-0" to pod names, see below

log = logging.getLogger("pytorchjob")


@dataclass(frozen=True)
class JobSettings:
    """Everything that varies between PyTorchJobs of this project.

    Attributes:
        name: job name (DNS-1123, at most 52 characters so pod names fit in 63).
        namespace: namespace of the job (the pipeline's own).
        image: the project image (pinned; the same one the pipeline steps run).
        train_args: arguments after ``qdtrack train`` (``--config ... --out ...``).
        workdir: working folder of the training processes, on the workspace volume.
        workspace_pvc: the ReadWriteMany PVC mounted at ``workspace_mount``.
        workspace_mount: where that PVC is mounted in every replica.
        nnodes: pods (one Master + ``nnodes - 1`` Workers).
        nproc_per_node: training processes per pod (normally its GPU count).
        gpus_per_node: ``nvidia.com/gpu`` limit per pod (0 for a CPU/gloo job).
        cpu: CPU request per pod.
        memory: memory request and limit per pod.
        shm_size: size limit of the memory-backed ``/dev/shm``.
        active_deadline_s: the operator stops the job after this many seconds.
        backoff_limit: pod restarts the operator allows before the job fails.
    """

    name: str
    namespace: str
    image: str
    train_args: tuple[str, ...]
    workdir: str
    workspace_pvc: str
    workspace_mount: str = "/workspace"
    nnodes: int = 2
    nproc_per_node: int = 1
    gpus_per_node: int = 1
    cpu: str = "8"
    memory: str = "48Gi"
    shm_size: str = "16Gi"
    active_deadline_s: int = 2 * 24 * 3600
    backoff_limit: int = 3
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = (
            (self.nnodes >= 1, f"nnodes must be >= 1, got {self.nnodes}"),
            (self.nproc_per_node >= 1, f"nproc_per_node must be >= 1, got {self.nproc_per_node}"),
            (self.gpus_per_node >= 0, f"gpus_per_node must be >= 0, got {self.gpus_per_node}"),
            (self.active_deadline_s > 0, "active_deadline_s must be > 0"),
            (bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", self.name)),
             f"job name {self.name!r} is not a DNS-1123 label"),
            (len(self.name) <= _NAME_MAX - len("-worker-999"),
             f"job name {self.name!r} is too long for its pod names"),
        )  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def job_name(run_id: str, prefix: str = "qdtrack-train") -> str:
    """A valid, stable job name for a pipeline run (same run -> same job)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    name = f"{prefix}-{cleaned}" if cleaned else prefix
    return name[: _NAME_MAX - len("-worker-999")].rstrip("-")


def torchrun_command(settings: JobSettings) -> list[str]:
    """``torchrun`` for one pod; the operator provides the rendezvous in the environment.

    The operator sets ``MASTER_ADDR``/``MASTER_PORT`` (the master's service) and ``RANK``
    (the pod's index: Master 0, Worker i -> i + 1) on every replica; Kubernetes expands
    ``$(VAR)`` from the container's environment.
    """
    return [
        "torchrun",
        f"--nnodes={settings.nnodes}",
        f"--nproc-per-node={settings.nproc_per_node}",
        "--node-rank=$(RANK)",
        "--master-addr=$(MASTER_ADDR)",
        "--master-port=$(MASTER_PORT)",
        "-m",
        "qdtrack.cli",
        "train",
        *settings.train_args,
    ]


def _pod_template(settings: JobSettings) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = {
        "requests": {"cpu": settings.cpu, "memory": settings.memory},
        "limits": {"memory": settings.memory},
    }
    tolerations = []
    if settings.gpus_per_node > 0:
        resources["limits"][GPU_RESOURCE] = settings.gpus_per_node
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    container = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "workingDir": settings.workdir,
        "command": torchrun_command(settings),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": "NCCL_DEBUG", "value": "WARN"}],
        "resources": resources,
        "volumeMounts": [
            {"name": WORKSPACE_VOLUME, "mountPath": settings.workspace_mount},
            {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
        ],
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {
                "name": WORKSPACE_VOLUME,
                "persistentVolumeClaim": {"claimName": settings.workspace_pvc},
            },
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
        ],
    }
    if tolerations:
        spec["tolerations"] = tolerations
    return {
        # Kubeflow namespaces inject Istio sidecars; a sidecar that never exits keeps the
        # job Running forever after training finished.
        "metadata": {
            "labels": dict(settings.labels),
            "annotations": {"sidecar.istio.io/inject": "false"},
        },
        "spec": spec,
    }


def render_pytorchjob(settings: JobSettings) -> dict[str, Any]:
    """The ``PyTorchJob`` manifest (a plain dict, ready for the Kubernetes API or YAML)."""
    replica = {"restartPolicy": "OnFailure", "template": _pod_template(settings)}
    replicas: dict[str, Any] = {"Master": {"replicas": 1, **replica}}
    if settings.nnodes > 1:
        replicas["Worker"] = {"replicas": settings.nnodes - 1, **replica}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "labels": dict(settings.labels),
        },
        "spec": {
            "nprocPerNode": str(settings.nproc_per_node),
            "runPolicy": {
                # Keep finished pods (and their logs); the TTL removes the job a day later.
                "cleanPodPolicy": "None",
                "backoffLimit": settings.backoff_limit,
                "activeDeadlineSeconds": settings.active_deadline_s,
                "ttlSecondsAfterFinished": 24 * 3600,
            },
            "pytorchReplicaSpecs": replicas,
        },
    }


# ----------------------------------------------------------------------------- launching


class CustomObjectsApi(Protocol):
    """The part of ``kubernetes.client.CustomObjectsApi`` the launcher uses."""

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> Any: ...

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...

    def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...


class JobFailedError(RuntimeError):
    """The PyTorchJob ended in the ``Failed`` condition."""


class JobTimeoutError(TimeoutError):
    """The PyTorchJob did not finish before the launcher's deadline (it was deleted)."""


def _status_code(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def job_state(job: dict[str, Any]) -> str:
    """The newest condition whose status is True (``Created``, ``Running``, ... ), or ``""``."""
    conditions = (job.get("status") or {}).get("conditions") or []
    true = [c for c in conditions if str(c.get("status")) == "True"]
    return str(true[-1]["type"]) if true else ""


def _describe(job: dict[str, Any]) -> str:
    status = job.get("status") or {}
    conditions = status.get("conditions") or []
    message = conditions[-1].get("message", "") if conditions else ""
    replicas = ", ".join(
        f"{kind}: " + " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != "selector")
        for kind, counts in sorted((status.get("replicaStatuses") or {}).items())
    )
    return f"{job_state(job) or 'Pending'} [{replicas}] {message}".strip()


def create_or_attach(api: CustomObjectsApi, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create the job unless one of that name exists; either way return the live object."""
    meta = manifest["metadata"]
    try:
        job = api.get_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"]
        )
        log.info("pytorchjob %s/%s exists: attaching to it", meta["namespace"], meta["name"])
        return dict(job)
    except Exception as exc:  # kubernetes.client.ApiException, without importing it here
        if _status_code(exc) != 404:
            raise
    try:
        job = api.create_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], PLURAL, manifest
        )
        log.info("pytorchjob %s/%s created", meta["namespace"], meta["name"])
    except Exception as exc:
        if _status_code(exc) != 409:  # created concurrently by a retried step: attach
            raise
        job = api.get_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"]
        )
    return dict(job)


def wait_for_job(
    api: CustomObjectsApi,
    name: str,
    namespace: str,
    *,
    timeout_s: float,
    poll_s: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until ``Succeeded``; log each change of state or replica counts.

    Raises:
        JobFailedError: the job reached ``Failed``.
        JobTimeoutError: ``timeout_s`` passed first; the job is deleted so that its GPUs
            are released (the operator's own ``activeDeadlineSeconds`` is a second guard).
    """
    deadline = clock() + timeout_s
    last = ""
    while True:
        job = dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
        described = _describe(job)
        if described != last:
            log.info("pytorchjob %s: %s", name, described)
            last = described
        state = job_state(job)
        if state == "Succeeded":
            return job
        if state == "Failed":
            raise JobFailedError(f"pytorchjob {namespace}/{name} failed: {described}")
        if clock() >= deadline:
            api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            raise JobTimeoutError(
                f"pytorchjob {namespace}/{name} not finished after {timeout_s:.0f} s "
                f"(last state: {described}); deleted it"
            )
        sleep(poll_s)


def master_log_tail(core_api: Any, name: str, namespace: str, lines: int = 50) -> str:
    """The last lines of the master pod's log ("" when it cannot be read)."""
    selector = f"training.kubeflow.org/job-name={name},training.kubeflow.org/replica-type=master"
    try:
        pods = core_api.list_namespaced_pod(namespace, label_selector=selector).items
        if not pods:
            return ""
        return str(
            core_api.read_namespaced_pod_log(pods[0].metadata.name, namespace, tail_lines=lines)
        )
    except Exception as exc:  # logs are a courtesy: never fail the step because of them
        return f"(could not read the master's log: {exc})"


# ----------------------------------------------------------------------------- the step


def _own_namespace() -> str:
    if SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    raise ValueError("--namespace not given and not running in a pod: pass --namespace")


def train_args(config: str, overrides: Sequence[str], device: str = "cuda") -> list[str]:
    """The ``qdtrack train`` arguments of the distributed run (resumable, like the single one)."""
    sets = [arg for item in overrides for arg in ("--set", item)]
    return ["--config", config, *sets, "--out", "runs/train", "--device", device, "--resume"]


def stage_dataset(dataset: Path, workdir: Path, workspace: Path) -> None:
    """Make ``workdir/data/dataset`` the dataset, on the shared volume.

    A dataset folder on the workspace volume (the pipeline's data steps write there) is
    linked: every replica mounts the volume at the same path. Any other folder is copied.
    """
    target = workdir / "data" / "dataset"
    target.parent.mkdir(parents=True, exist_ok=True)
    if dataset.resolve().is_relative_to(workspace.resolve()):
        if target.is_symlink():
            target.unlink()
        if not target.exists():
            target.symlink_to(dataset.resolve(), target_is_directory=True)
        return
    shutil.copytree(dataset, target, dirs_exist_ok=True, symlinks=True)


def launch(args: argparse.Namespace, api: CustomObjectsApi, core_api: Any = None) -> int:
    """Stage data, run the job to completion, copy the checkpoint to ``args.model``."""
    namespace = args.namespace or _own_namespace()
    name = job_name(args.run_id)
    workdir = Path(args.workspace) / name
    settings = JobSettings(
        name=name,
        namespace=namespace,
        image=args.image,
        train_args=tuple(train_args(str(Path(args.config).resolve()), expand_overrides(args.set))),
        workdir=str(workdir),
        workspace_pvc=args.workspace_pvc,
        workspace_mount=args.workspace,
        nnodes=args.nnodes,
        nproc_per_node=args.nproc_per_node,
        gpus_per_node=args.gpus_per_node,
        active_deadline_s=args.timeout,
        labels={"app.kubernetes.io/name": "qdtrack", "app.kubernetes.io/component": "train"},
    )
    stage_dataset(Path(args.dataset), workdir, Path(args.workspace))
    create_or_attach(api, render_pytorchjob(settings))
    try:
        # A little longer than the operator's own deadline, so normally the operator
        # reports the timeout as a Failed condition with its reason.
        wait_for_job(api, name, namespace, timeout_s=args.timeout + 300, poll_s=args.poll)
    finally:
        if core_api is not None:
            tail = master_log_tail(core_api, name, namespace)
            if tail:
                log.info("last lines of %s-master-0:\n%s", name, tail)
    model = Path(args.model)
    model.mkdir(parents=True, exist_ok=True)
    for file_name in ("last.pt", "losses.csv"):
        shutil.copy2(workdir / "runs" / "train" / file_name, model / file_name)
    log.info("copied %s to %s", workdir / "runs" / "train" / "last.pt", model)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components.pytorchjob")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("launch", help="run qdtrack train as a PyTorchJob and wait for it")
    p.add_argument(
        "--dataset", required=True, help="dataset folder (data prepare's, on the workspace)"
    )
    p.add_argument("--model", required=True, help="folder to copy last.pt and losses.csv to")
    p.add_argument(
        "--run-id", required=True, help="the pipeline task's id: names the job (same on retry)"
    )
    p.add_argument("--config", default="params.yaml")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="qdtrack train's --set (repeatable; a JSON list of KEY=VALUE strings also works)",
    )
    p.add_argument("--image", required=True)
    p.add_argument("--nnodes", type=int, default=2)
    p.add_argument("--nproc-per-node", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=1)
    p.add_argument("--workspace-pvc", required=True)
    p.add_argument("--workspace", default="/workspace", help="where that PVC is mounted here")
    p.add_argument("--namespace", default="", help="default: this pod's namespace")
    p.add_argument("--timeout", type=int, default=2 * 24 * 3600, help="seconds")
    p.add_argument("--poll", type=float, default=15.0, help="seconds between status checks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    args = build_parser().parse_args(argv)
    from kubernetes import client, config

    config.load_incluster_config()
    try:
        return launch(args, client.CustomObjectsApi(), client.CoreV1Api())
    except (JobFailedError, JobTimeoutError) as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
