"""A local twin of ``qdtrack_pipeline`` that ``kfp.local.SubprocessRunner`` can run.

The SubprocessRunner runs only lightweight Python components (platform notes 6.1), so each
container step has a twin here that calls the same library functions the ``qdtrack``
subcommand calls (``prepare_dataset``, ``convert_dataset``, ``run_training``,
``track_val_set``, ``evaluate_mot``, ``decide``, the exporter, ``publish_version``) in
the same scratch-folder layout (``data/dataset``, ``data/converted``, ``runs/train``).
The scalar and report steps (``log_metrics``, ``report_not_deployed``) are the very
components of the cluster pipeline. The graph has the same shape: gate -> ``dsl.If`` ->
export -> deploy, ``dsl.Else`` -> report, and the pipeline returns what happened.

Training always runs in the pipeline's own process here (CPU, or one GPU when present),
and the model repository is a local folder instead of a PVC.

    from kfp import local
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root="/tmp/kfp")
    result = local_pipeline(config="params.yaml", model_repository="/tmp/models")
    print(result.output)
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.evaluate import log_metrics
from components.gate import report_not_deployed

BASE_IMAGE = "python:3.11"  # unused by the SubprocessRunner; explicit as KFP asks


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def prepare_data_local(dataset: Output[Dataset], config: str, overrides: list) -> None:
    """Twin of ``qdtrack data prepare``."""
    from qdtrack.config import load_params
    from qdtrack.data.prepare import DataSettings, prepare_dataset

    prepare_dataset(DataSettings.from_params(load_params(config, overrides)), dataset.path)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def convert_data_local(
    dataset: Input[Dataset], converted: Output[Dataset], config: str, overrides: list
) -> None:
    """Twin of ``qdtrack data convert`` (run where ``data/dataset`` is the dataset)."""
    import os
    import tempfile
    from pathlib import Path

    from qdtrack.config import config_from_dict, load_params, resolve_classes
    from qdtrack.data.prepare import DataSettings, convert_dataset

    params = load_params(config, overrides)
    settings = DataSettings.from_params(params)
    cfg = config_from_dict(params, config)
    work = Path(tempfile.mkdtemp(prefix="qdtrack-convert-"))
    (work / "data").mkdir()
    (work / "data" / "dataset").symlink_to(dataset.path)
    os.chdir(work)
    convert_dataset(
        "data/dataset",
        converted.path,
        val_split=settings.val_split,
        train_sources=cfg.train.sources,
        settings=settings,
        class_names=resolve_classes(cfg.model).class_names(),
    )


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_local(
    dataset: Input[Dataset], model: Output[Model], config: str, overrides: list
) -> None:
    """Twin of ``qdtrack train --out runs/train`` (``last.pt`` and ``losses.csv``)."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from qdtrack.config import load_config
    from qdtrack.train import run_training

    cfg = load_config(config, overrides)
    work = Path(tempfile.mkdtemp(prefix="qdtrack-train-"))
    (work / "data").mkdir()
    (work / "data" / "dataset").symlink_to(dataset.path)
    os.chdir(work)
    last = run_training(cfg, Path("runs/train"))
    Path(model.path).mkdir(parents=True)
    shutil.copy2(last, Path(model.path) / "last.pt")
    shutil.copy2(last.parent / "losses.csv", Path(model.path) / "losses.csv")


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def track_val_local(
    dataset: Input[Dataset],
    converted: Input[Dataset],
    model: Input[Model],
    tracks: Output[Artifact],
    tracker_config: str = "",
    render: bool = False,
) -> None:
    """Twin of ``qdtrack track-val`` (run where ``data/`` holds both inputs)."""
    import dataclasses
    import os
    import tempfile
    from pathlib import Path

    from qdtrack.io_utils import parse_json_object, read_json, write_json
    from qdtrack.track import track_val_set
    from qdtrack.train import model_from_checkpoint

    net, cfg = model_from_checkpoint(Path(model.path) / "last.pt")
    settings = dataclasses.asdict(cfg.tracker)
    if tracker_config:
        settings.update(parse_json_object(tracker_config, "tracker_config"))
    work = Path(tempfile.mkdtemp(prefix="qdtrack-track-"))
    (work / "data").mkdir()
    (work / "data" / "dataset").symlink_to(dataset.path)
    (work / "data" / "converted").symlink_to(converted.path)
    os.chdir(work)
    manifest = read_json("data/converted/val.json")
    report = track_val_set(
        net, settings, manifest, tracks.path, render=render, class_names=cfg.model.class_names()
    )
    write_json(Path(tracks.path) / "speed.json", report)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_local(
    converted: Input[Dataset],
    tracks: Input[Artifact],
    metrics: Output[Artifact],
    summary: Output[Artifact],
    benchmark: str = "MOT17",
) -> None:
    """Twin of the two ``qdtrack evaluate`` calls (QDTrack, and IoU on its detections)."""
    from pathlib import Path

    from qdtrack.evaluate import evaluate_mot, summary_metrics, write_per_sequence_csv
    from qdtrack.evaluate_tao import TAO_BENCHMARK, evaluate_tao
    from qdtrack.io_utils import read_json, write_json

    gt = Path(converted.path) / "val_gt"
    split = read_json(Path(converted.path) / "val.json")["split"]
    out = Path(metrics.path)
    for results, name, summary_path in (
        ("results", "qdtrack", summary.path),
        ("iou_results", "iou", out / "iou_same_detections.json"),
    ):
        if benchmark == TAO_BENCHMARK:
            scored = evaluate_tao(gt, Path(tracks.path) / results)
        else:
            scored = evaluate_mot(gt, Path(tracks.path) / results, benchmark=benchmark, split=split)
        write_json(out / f"{name}.json", scored)
        write_json(summary_path, summary_metrics(scored))
        write_per_sequence_csv(out / f"per_sequence_{name}.csv", scored)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate_local(
    summary: Input[Artifact],
    decision: Output[Artifact],
    model_repository: str,
    criteria: str = "",
    max_drop: str = "",
    model_name: str = "qdtrack",
) -> NamedTuple("GateOutputs", [("passed", bool)]):  # type: ignore[valid-type]
    """Twin of ``qdtrack gate --model-repository``: champion/challenger, decision JSON."""
    from collections import namedtuple

    from qdtrack.gate import champion_path, decide, metrics_from_document, read_champion
    from qdtrack.io_utils import read_json, write_json

    candidate = metrics_from_document(read_json(summary.path), summary.path)
    record = read_champion(model_repository, model_name)
    champion = None
    if record is not None:
        champion = metrics_from_document(record, str(champion_path(model_repository, model_name)))
    result = decide(candidate, champion=champion, gate=criteria or None, max_drop=max_drop or None)
    write_json(decision.path, result.to_dict())
    GateOutputs = namedtuple("GateOutputs", ["passed"])
    return GateOutputs(result.passed)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def export_local(
    model: Input[Model],
    exported: Output[Model],
    export_format: str = "onnx",
    model_name: str = "qdtrack",
) -> None:
    """Twin of ``qdtrack export`` (a Triton model repository folder)."""
    from pathlib import Path

    from qdtrack.export.repository import export_repository

    fp16 = export_format == "onnx-trt-fp16"
    export_repository(
        Path(model.path) / "last.pt",
        exported.path,
        model_name=model_name,
        fmt="onnx" if fp16 else export_format,
        trt_fp16=fp16,
        force=True,
    )


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy_local(
    exported: Input[Model],
    summary: Input[Artifact],
    decision: Input[Artifact],
    model_repository: str,
    model_name: str = "qdtrack",
    triton_url: str = "",
) -> NamedTuple("DeployOutputs", [("version", int), ("message", str)]):  # type: ignore[valid-type]
    """Twin of ``qdtrack deploy``: publish the next version, then Triton's load call."""
    from collections import namedtuple

    from qdtrack.deploy import publish_version, request_load, rollback
    from qdtrack.gate import GateDecision, metrics_from_document
    from qdtrack.io_utils import read_json

    published = publish_version(
        exported.path,
        model_repository,
        model_name=model_name,
        metrics=metrics_from_document(read_json(summary.path), summary.path),
        decision=GateDecision.from_dict(read_json(decision.path), decision.path),
    )
    if triton_url:
        try:
            request_load(triton_url, model_name)
        except RuntimeError:
            rollback(published)
            raise
    message = f"deployed {model_name} version {published.version} -> {published.path}"
    DeployOutputs = namedtuple("DeployOutputs", ["version", "message"])
    return DeployOutputs(published.version, message)


@dsl.pipeline(name="qdtrack-local", description="Local twin of qdtrack-train-deploy")
def local_pipeline(
    config: str,
    model_repository: str,
    overrides: list = [],  # noqa: B006 (KFP needs the literal default)
    tracker_config: str = "",
    benchmark: str = "MOT17",
    gate_criteria: str = "",
    gate_max_drop: str = "",
    model_name: str = "qdtrack",
    export_format: str = "onnx",
    triton_url: str = "",
) -> str:
    """Same graph as ``qdtrack_pipeline``; returns ``deployed ...`` or ``not deployed ...``."""
    data = prepare_data_local(config=config, overrides=overrides)
    converted = convert_data_local(
        dataset=data.outputs["dataset"], config=config, overrides=overrides
    )
    model = train_local(dataset=data.outputs["dataset"], config=config, overrides=overrides)
    model.after(converted)
    tracks = track_val_local(
        dataset=data.outputs["dataset"],
        converted=converted.outputs["converted"],
        model=model.outputs["model"],
        tracker_config=tracker_config,
    )
    scored = evaluate_local(
        converted=converted.outputs["converted"],
        tracks=tracks.outputs["tracks"],
        benchmark=benchmark,
    )
    log_metrics(summary=scored.outputs["summary"])
    decision = gate_local(
        summary=scored.outputs["summary"],
        model_repository=model_repository,
        criteria=gate_criteria,
        max_drop=gate_max_drop,
        model_name=model_name,
    )
    with dsl.If(decision.outputs["passed"] == True, name="gate-passed"):  # noqa: E712
        exported = export_local(
            model=model.outputs["model"], export_format=export_format, model_name=model_name
        )
        published = deploy_local(
            exported=exported.outputs["exported"],
            summary=scored.outputs["summary"],
            decision=decision.outputs["decision"],
            model_repository=model_repository,
            model_name=model_name,
            triton_url=triton_url,
        )
    with dsl.Else(name="gate-failed"):
        blocked = report_not_deployed(decision=decision.outputs["decision"])
    return dsl.OneOf(published.outputs["message"], blocked.outputs["message"])
