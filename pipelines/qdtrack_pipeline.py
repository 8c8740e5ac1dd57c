"""The training-to-deployment pipeline (KFP v2), compiled to ``pipelines/qdtrack_pipeline.yaml``.

Steps, each a component of ``components/`` running the project image's ``qdtrack`` CLI:

1. ``prepare-data`` (optionally ``dvc pull`` first, remote credentials from a Secret) and
   ``convert-data`` — the ``data`` and ``convert`` stages of ``dvc.yaml``. They write onto
   the workspace volume and pass folder paths on (no dataset artifacts are copied); every
   step that reads the data mounts that volume;
2. training: in one GPU pod (``train_backend="pod"``), or as a multi-node DDP
   ``PyTorchJob`` launched and followed by ``train-distributed``
   (``train_backend="pytorchjob"``: ``train_nodes`` pods x ``gpus_per_node`` GPUs);
3. ``track-val`` on a GPU, ``evaluate`` (TrackEval), ``log-metrics`` (scalars + UI metrics);
4. ``gate``: champion/challenger against ``champion.json`` on the model-repository volume;
5. ``dsl.If(passed)``: ``export`` (ONNX, or TensorRT on the GPU) then ``deploy`` (a new
   version directory in the Triton model repository, loaded and verified on every
   replica, then recorded as the champion; a refusal rolls it back everywhere);
   ``dsl.Else``: ``report-not-deployed`` says why nothing was deployed.

Every setting of the model, tracker, evaluation and gate comes from the run's ``config``
(a params file in the image, e.g. ``configs/cpu_tao_synth.yaml``, or on the workspace
volume) and ``overrides`` (``["train.epochs=4"]``); the compiled YAML does not depend
on any params file, so it is compiled once (``make pipeline``; ``tests/pipelines`` fails
when the committed file is stale) and a TAO configuration is evaluated with Track AP and
gated on it without recompiling. Run parameters are only what depends on the cluster:
volumes, Triton's Service, the training backend and the export format.

The compiled YAML needs a Kubeflow Pipelines backend of at least
:data:`pipelines.kfp_features.MINIMUM_BACKEND` (``tests/pipelines`` checks every feature
it uses against that version).
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from kfp import compiler, dsl, kubernetes

from components import WORKSPACE_MOUNT
from components.data import convert_data, prepare_data
from components.deploy import DEPLOYER_LABEL, MODEL_CONTROL_KEY, deploy
from components.evaluate import evaluate, log_metrics
from components.export import export
from components.gate import MODEL_REPOSITORY_MOUNT, gate, report_not_deployed
from components.track import track_val
from components.train import train, train_distributed

PIPELINE_YAML = Path(__file__).with_suffix(".yaml")

GPU = "nvidia.com/gpu"
DVC_SECRET_KEYS = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",  # MinIO / non-AWS S3 (optional key)
}
TRAIN_TIMEOUT_S = 2 * 24 * 3600


def _on_gpu(task: dsl.PipelineTask, gpus: int = 1) -> dsl.PipelineTask:
    """Ask for GPUs and tolerate the usual GPU-node taint."""
    task.set_accelerator_type(GPU).set_accelerator_limit(gpus)
    kubernetes.add_toleration(task, key=GPU, operator="Exists", effect="NoSchedule")
    return task


def _on_workspace(task: dsl.PipelineTask, workspace_pvc: Any) -> dsl.PipelineTask:
    """Mount the workspace volume (data folders, training runs) where the steps expect it."""
    kubernetes.mount_pvc(task, pvc_name=workspace_pvc, mount_path=WORKSPACE_MOUNT)
    return task


def _single_pod_training(dataset: Any, config: Any, overrides: Any, device: Any,
                         workspace: Any, workspace_pvc: Any) -> dsl.PipelineTask:  # fmt: skip
    task = train(
        dataset=dataset, config=config, overrides=overrides, device=device, workspace=workspace
    ).set_display_name("train (1 GPU)")
    _on_gpu(task).set_cpu_request("8").set_memory_request("32Gi").set_memory_limit("32Gi")
    # Preempted or failed pods resume from the last epoch on the workspace volume.
    task.set_retry(2, backoff_duration="60s")
    _on_workspace(task, workspace_pvc)
    # The data loader workers share batches through /dev/shm (64 MiB by default in a pod).
    kubernetes.empty_dir_mount(
        task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit="8Gi"
    )
    kubernetes.set_timeout(task, TRAIN_TIMEOUT_S)
    return task


@dsl.pipeline(
    name="qdtrack-train-deploy",
    description="QDTrack: data -> train (GPU / PyTorchJob) -> track -> evaluate -> "
    "champion/challenger gate -> export -> deploy to Triton",
)
def qdtrack_pipeline(
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    dvc_targets: str = "",
    dvc_remote: str = "",
    dvc_secret: str = "dvc-remote-credentials",
    train_backend: str = "pod",
    train_device: str = "cuda",
    train_nodes: int = 2,
    gpus_per_node: int = 1,
    export_format: str = "onnx-trt-fp16",
    triton_service: str = "qdtrack/triton",
    model_control_secret: str = "qdtrack-model-control",
    workspace: str = WORKSPACE_MOUNT,
    workspace_pvc: str = "qdtrack-workspace",
    model_repository: str = MODEL_REPOSITORY_MOUNT,
    model_repository_pvc: str = "qdtrack-model-repository",
) -> None:
    """QDTrack from data to a served model version.

    Args:
        config: params file in the image (``params.yaml`` or ``configs/*.yaml``) or on a
            mounted volume: every model, tracker, evaluation, gate and deploy setting.
        overrides: ``KEY=VALUE`` settings applied with ``--set`` to every step, e.g.
            ``["train.epochs=4", "data.source=path", "data.path=datasets/MOT17"]``.
        dvc_targets: ``dvc pull`` these in the data step ("" = no pull).
        dvc_remote: DVC remote URL ("" = the image's default remote).
        dvc_secret: Secret with the remote's credentials (optional keys
            ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``).
        train_backend: ``pod`` (one GPU in the pipeline) or ``pytorchjob`` (multi-node DDP).
        train_device: ``cuda`` (or ``cpu`` for a CPU-only trial) for ``pod`` training.
        train_nodes: PyTorchJob pods (``pytorchjob`` only).
        gpus_per_node: GPUs and training processes per PyTorchJob pod (``pytorchjob`` only).
        export_format: ``onnx``, ``onnx-trt-fp16`` (ONNX served through the TensorRT
            accelerator) or ``tensorrt`` (a plan built on this run's GPU).
        triton_service: ``NAMESPACE/SERVICE`` of the serving pods' Triton Service: every
            pod behind it loads the new version ("" = publish only).
        model_control_secret: Secret (in the pipeline's namespace) whose ``key`` is
            Triton's model-control key (``--http-restricted-api`` of the serving pods).
        workspace: where the workspace volume is mounted (training runs and resume).
        workspace_pvc: ReadWriteMany PVC for training runs (checkpoints, resume, DDP data).
        model_repository: where the model-repository volume is mounted (gate, deploy).
        model_repository_pvc: PVC holding the Triton model repository.
    """
    # The data folders stay on the workspace volume; these two always run (the folders
    # must exist) and reuse what is there, so later steps get the same paths and caching.
    data = prepare_data(
        workspace=workspace,
        config=config,
        overrides=overrides,
        dvc_targets=dvc_targets,
        dvc_remote=dvc_remote,
    ).set_caching_options(False)
    _on_workspace(data, workspace_pvc)
    kubernetes.use_secret_as_env(
        data, secret_name=dvc_secret, secret_key_to_env=DVC_SECRET_KEYS, optional=True
    )
    dataset = data.outputs["dataset_path"]
    converted_task = convert_data(
        dataset=dataset, workspace=workspace, config=config, overrides=overrides
    ).set_caching_options(False)
    _on_workspace(converted_task, workspace_pvc)
    converted = converted_task.outputs["converted_path"]

    with dsl.If(train_backend == "pytorchjob", name="multi-node-ddp"):
        ddp = train_distributed(
            dataset=dataset,
            workspace_pvc=workspace_pvc,
            config=config,
            overrides=overrides,
            nnodes=train_nodes,
            nproc_per_node=gpus_per_node,
            gpus_per_node=gpus_per_node,
            timeout_s=TRAIN_TIMEOUT_S,
            workspace=workspace,
        ).after(converted_task)
        # Idempotent by job name (the task id, the same on a retry); cached like `train`.
        _on_workspace(ddp.set_display_name("train (PyTorchJob)"), workspace_pvc)
    with dsl.Else(name="single-pod"):
        single = _single_pod_training(
            dataset, config, overrides, train_device, workspace, workspace_pvc
        ).after(converted_task)
    model = dsl.OneOf(ddp.outputs["model"], single.outputs["model"])

    tracks = track_val(
        dataset=dataset, converted=converted, model=model, config=config, overrides=overrides
    )
    _on_workspace(_on_gpu(tracks), workspace_pvc)
    scored = evaluate(
        converted=converted,
        tracks=tracks.outputs["tracks"],
        results="results",
        config=config,
        overrides=overrides,
    ).set_display_name("evaluate (QDTrack)")
    _on_workspace(scored, workspace_pvc)
    baseline = evaluate(
        converted=converted,
        tracks=tracks.outputs["tracks"],
        results="iou_results",
        config=config,
        overrides=overrides,
    ).set_display_name("evaluate (IoU tracker, same detections)")
    _on_workspace(baseline, workspace_pvc)
    log_metrics(summary=scored.outputs["summary"])

    # The champion changes outside KFP's view (each deploy rewrites it): never cache these.
    decision = gate(
        summary=scored.outputs["summary"],
        config=config,
        overrides=overrides,
        model_repository=model_repository,
    ).set_caching_options(False)
    kubernetes.mount_pvc(decision, pvc_name=model_repository_pvc, mount_path=MODEL_REPOSITORY_MOUNT)

    with dsl.If(decision.outputs["passed"] == True, name="gate-passed"):  # noqa: E712
        exported = export(
            model=model, config=config, overrides=overrides, export_format=export_format
        )
        _on_gpu(exported)  # TensorRT builds for the GPU it runs on
        published = deploy(
            exported=exported.outputs["exported"],
            summary=scored.outputs["summary"],
            decision=decision.outputs["decision"],
            config=config,
            overrides=overrides,
            triton_service=triton_service,
            model_repository=model_repository,
        ).set_caching_options(False)
        kubernetes.mount_pvc(
            published, pvc_name=model_repository_pvc, mount_path=MODEL_REPOSITORY_MOUNT
        )
        # The NetworkPolicy admits this label to Triton's HTTP port; the key opens its
        # model-control API (optional: a publish-only run needs none).
        kubernetes.add_pod_label(published, *DEPLOYER_LABEL)
        kubernetes.use_secret_as_env(
            published,
            secret_name=model_control_secret,
            secret_key_to_env=MODEL_CONTROL_KEY,
            optional=True,
        )
    with dsl.Else(name="gate-failed"):
        report_not_deployed(decision=decision.outputs["decision"]).set_caching_options(False)


def compile_pipeline(path: str | Path = PIPELINE_YAML) -> Path:
    """Write the compiled pipeline (KFP IR YAML) to ``path``."""
    compiler.Compiler().compile(qdtrack_pipeline, package_path=str(path))
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.qdtrack_pipeline")
    parser.add_argument("--output", default=str(PIPELINE_YAML), help="compiled YAML to write")
    parser.add_argument(
        "--check", action="store_true", help="only check that --output is up to date (exit 1)"
    )
    args = parser.parse_args(argv)
    if not args.check:
        compile_pipeline(args.output)
        sys.stdout.write(f"wrote {args.output}\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = compile_pipeline(Path(tmp) / "pipeline.yaml").read_text(encoding="utf-8")
    current = Path(args.output)
    if not current.is_file() or current.read_text(encoding="utf-8") != fresh:
        sys.stderr.write(f"{args.output} is stale: run `make pipeline`\n")
        return 1
    sys.stdout.write(f"{args.output} is up to date\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
