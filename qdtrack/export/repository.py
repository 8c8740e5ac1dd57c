"""``qdtrack export``: a trained checkpoint -> a Triton model repository.

Layout (Triton's model repository)::

    REPO/<model>/config.pbtxt            rendered by code, validated against the graph
    REPO/<model>/<version>/model.onnx    (--format onnx)   or model.plan (--format tensorrt)
    REPO/<model>/<version>/export.json   checkpoint sha256, model + tracker config,
                                         img_scale, embedding width, model_version, parity

The version folder is written in a staging folder and moved into place, so a failed export
leaves the repository as it was. An existing version folder holding another model (another
checkpoint or format, or files not written by this command) is only replaced with
``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qdtrack.checkpoint import checkpoint_config, load_checkpoint, model_from_state
from qdtrack.config import ExportConfig, QDTrackConfig, stage_config
from qdtrack.export.batched import export_batched_onnx
from qdtrack.export.contract import (
    METADATA_FILENAME,
    ONNX_FILENAME,
    PLAN_FILENAME,
    export_rows,
)
from qdtrack.export.onnx_export import (
    OPSET,
    check_onnx_io,
    embedding_width,
    export_onnx,
    onnx_io,
    typical_input_hw,
)
from qdtrack.export.parity import BOX_RTOL, compare_detections
from qdtrack.export.runtime import OnnxDetector
from qdtrack.export.serving_contract import contract_for
from qdtrack.export.triton_config import (
    INSTANCE_KINDS,
    PLATFORMS,
    check_config,
    parse_config,
    render_config,
    write_contract_parameters,
)
from qdtrack.io_utils import atomic_write, read_json
from qdtrack.model.qdtrack import QDTrack
from qdtrack.schema import to_plain

FORMATS = tuple(PLATFORMS)
CONFIG_FILENAME = "config.pbtxt"
EXPORT_FORMAT = "qdtrack-export/1"
#: Default engine cache of the ORT TensorRT accelerator (a path on the Triton server).
DEFAULT_TRT_CACHE_DIR = "/trt-cache"
#: Export-time parity check: share of detections allowed to go unpaired (threshold flips).
UNMATCHED_FRACTION = 0.02
#: Record fields older exports did not write, with the value they had.
RECORD_DEFAULTS = {"max_batch_size": 0, "precision": "float32"}


class ExportError(ValueError):
    """A user error (bad checkpoint, occupied output, missing TensorRT): exit code 2."""


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and what it recorded.

    Attributes:
        model_dir: ``REPO/<model>``.
        version_dir: ``REPO/<model>/<version>``.
        model_file: the ``model.onnx`` or ``model.plan``.
        config_path: ``REPO/<model>/config.pbtxt``.
        metadata: the content of ``export.json``.
    """

    model_dir: Path
    version_dir: Path
    model_file: Path
    config_path: Path
    metadata: dict[str, Any]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_version_string(model_name: str, checkpoint_sha256: str) -> str:
    """``<model>-<first 12 hex of the checkpoint's sha256>``: names the weights.

    It does not contain the Triton version number, which ``qdtrack deploy`` may change
    when it publishes the folder as a later version.
    """
    return f"{model_name}-{checkpoint_sha256[:12]}"


def load_model(
    checkpoint: str | Path, config_path: str | Path | None = None, overrides: Sequence[str] = ()
) -> tuple[QDTrack, QDTrackConfig]:
    """The network of a project checkpoint and the export's configuration.

    The configuration is the checkpoint's, or ``config_path``'s blocks with the
    checkpoint's model block (see :func:`qdtrack.config.stage_config`), plus
    ``overrides``. Checkpoint errors are raised as :class:`ExportError`.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise ExportError(f"{path}: checkpoint not found")
    try:
        state = load_checkpoint(path)
        stored = checkpoint_config(state, path)
    except (ValueError, TypeError, KeyError) as exc:
        raise ExportError(
            f"{exc} (expected a checkpoint written by qdtrack train or convert-checkpoint)"
        ) from exc
    config = stage_config(config_path, overrides, checkpoint=stored)
    try:
        model = model_from_state(state, config.model)
    except RuntimeError as exc:  # load_state_dict(strict=True) on foreign weights
        first = str(exc).strip().splitlines()[0]
        raise ExportError(
            f"{path}: weights do not fit the checkpoint's own config: {first}"
        ) from exc
    return model.eval(), config


def _resolve_instance_kind(fmt: str, instance_kind: str | None, trt_fp16: bool) -> str:
    needs_gpu = fmt == "tensorrt" or trt_fp16
    kind = instance_kind or ("gpu" if needs_gpu else "cpu")
    if kind not in INSTANCE_KINDS:
        raise ExportError(f"instance kind must be one of {sorted(INSTANCE_KINDS)}, got {kind!r}")
    if needs_gpu and kind != "gpu":
        what = "--format tensorrt" if fmt == "tensorrt" else "--trt-fp16"
        raise ExportError(f"{what} runs on GPU instances: use --instance-kind gpu")
    return INSTANCE_KINDS[kind]


def _check_target(
    model_dir: Path, version_dir: Path, metadata: dict[str, Any], force: bool
) -> None:
    """Refuse, without ``force``, to replace another model or to break a shared config.

    The target version folder may only be overwritten by the same checkpoint and format;
    other version folders must keep working with the new ``config.pbtxt`` (same platform
    and embedding width), since Triton reads one config for all versions.
    """
    if model_dir.exists() and not model_dir.is_dir():
        raise ExportError(f"{model_dir} exists and is not a folder")
    if force or not model_dir.is_dir():
        return
    if version_dir.exists():
        old = {**RECORD_DEFAULTS, **_read_record(version_dir)}
        keys = ("checkpoint_sha256", "model_format", "opset", "max_batch_size", "precision")
        if any(old.get(key) != metadata[key] for key in keys):
            raise ExportError(
                f"{version_dir} holds another model ({old.get('model_version')}, "
                f"{old.get('model_format')}); use --force to replace it or choose another "
                "--version"
            )
    for sibling in sorted(model_dir.iterdir()):
        if sibling == version_dir or not (sibling.is_dir() and sibling.name.isdigit()):
            continue
        old = {**RECORD_DEFAULTS, **_read_record(sibling)}
        # what config.pbtxt fixes for every version
        shared = ("platform", "embedding_dim", "max_detections", "max_batch_size")
        if any(old.get(key) != metadata[key] for key in shared):
            theirs = ", ".join(f"{key} {old.get(key)}" for key in shared)
            ours = ", ".join(f"{key} {metadata[key]}" for key in shared)
            raise ExportError(
                f"{sibling} ({theirs}) cannot share config.pbtxt with this export ({ours}); "
                "use --force or another --model-name"
            )


def _read_record(version_dir: Path) -> dict[str, Any]:
    record = version_dir / METADATA_FILENAME
    if not record.is_file():
        raise ExportError(
            f"{version_dir} was not written by qdtrack export (no {METADATA_FILENAME}); "
            "use --force to export anyway"
        )
    data: dict[str, Any] = json.loads(record.read_text())
    return data


def check_parity(model: QDTrack, onnx_path: Path, img_scale: tuple[int, int]) -> dict[str, Any]:
    """Run one noise frame through PyTorch and ONNX Runtime; raise if they disagree.

    A decision sitting exactly on an NMS or score threshold may flip with float rounding,
    so up to 2 % of the detections (at least one) may go unpaired; paired boxes must agree
    within :data:`~qdtrack.export.parity.BOX_RTOL`.

    Returns:
        The :class:`~qdtrack.export.parity.ParityReport` fields plus ``frame_hw``.
    """
    height, width = typical_input_hw(img_scale)
    frame = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    (eager,) = model.predict([frame])
    (exported,) = OnnxDetector(onnx_path, img_scale=img_scale).predict([frame])
    report = compare_detections(exported, eager)
    allowed = max(1, int(UNMATCHED_FRACTION * len(eager)))
    if report.unmatched > allowed or report.max_box_rel_diff > BOX_RTOL:
        raise ExportError(f"the exported graph disagrees with PyTorch on a test frame: {report}")
    return {"frame_hw": [height, width], **report.to_dict()}


def _metadata(
    checkpoint: Path,
    config: QDTrackConfig,
    model: QDTrack,
    *,
    model_name: str,
    version: int,
    fmt: str,
) -> dict[str, Any]:
    sha256 = file_sha256(checkpoint)
    img_scale = [int(v) for v in config.model.img_scale]
    contract = contract_for(
        model_version=model_version_string(model_name, sha256),
        img_scale=config.model.img_scale,
        class_names=config.model.class_names(),
        tracker=config.tracker,
        embedding_dim=embedding_width(model),
        max_detections=export_rows(model.detector.roi_heads.max_per_img),
        normalization=config.model.normalization,
    )
    return {
        "format": EXPORT_FORMAT,
        "model_name": model_name,
        "triton_version": version,
        "model_version": model_version_string(model_name, sha256),
        "model_format": fmt,
        "platform": PLATFORMS[fmt],
        "model_file": ONNX_FILENAME if fmt == "onnx" else PLAN_FILENAME,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha256,
        "model_config": config.to_dict()["model"],
        "tracker": config.tracker.tracker_type,
        "tracker_config": config.tracker.to_dict(),
        "class_names": list(config.model.class_names()),
        "img_scale": img_scale,
        "embedding_dim": embedding_width(model),
        "max_detections": export_rows(model.detector.roi_heads.max_per_img),
        "opset": OPSET,
        "max_batch_size": config.export.max_batch_size if config.export.batching else 0,
        "precision": "int8" if config.export.int8 else "float32",
        "torch_version": torch.__version__,
        "serving_contract": to_plain(contract),
    }


def export_repository(
    checkpoint: str | Path,
    out: str | Path,
    *,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    model_name: str | None = None,
    version: int = 1,
    fmt: str = "onnx",
    instance_kind: str | None = None,
    instance_count: int = 1,
    trt_fp16: bool = False,
    trt_cache_dir: str = DEFAULT_TRT_CACHE_DIR,
    force: bool = False,
    val_manifest: str | Path | None = None,
    val_gt: str | Path | None = None,
) -> ExportResult:
    """Export a checkpoint into a Triton model repository.

    Args:
        checkpoint: a project checkpoint (``qdtrack train`` or ``convert-checkpoint``).
        out: the model repository folder (created if needed; other models are left alone).
        config_path: params file whose blocks (tracker, deploy, ...) the export records
            (default: the checkpoint's own configuration).
        overrides: ``--set`` values applied on top.
        model_name: Triton model name (folder name); default ``deploy.model_name``.
        version: Triton version folder (integer >= 1).
        fmt: ``"onnx"`` (ONNX Runtime backend) or ``"tensorrt"`` (a ``model.plan``; needs
            TensorRT and a CUDA GPU here).
        instance_kind: ``"cpu"`` or ``"gpu"``; default gpu for TensorRT, else cpu.
        instance_count: Triton model instances.
        trt_fp16: ONNX on GPU with the ORT TensorRT accelerator in FP16.
        trt_cache_dir: the accelerator's engine cache path on the server.
        force: replace a version folder holding another model.
        val_manifest: ``val.json`` of ``qdtrack data convert`` (the validation sequences
            the INT8 gate tracks); needed with ``export.int8``.
        val_gt: their ground truth folder (``val_gt``); needed with ``export.int8``.

    The configuration's ``export`` block picks the graph (``batching``: the batched graph
    and Triton's dynamic batcher) and the precision (``int8``: static INT8, kept only if
    its HOTA and IDF1 on the validation sequences stay within the allowed drops).

    Returns:
        :class:`ExportResult`.

    Raises:
        ExportError: user errors (missing or foreign checkpoint, occupied output, no
            TensorRT, an INT8 model failing its quality gate); the CLI turns them into
            exit code 2.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {list(FORMATS)}")
    if version < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    if trt_fp16 and fmt != "onnx":
        raise ExportError("--trt-fp16 applies to --format onnx; a TensorRT plan is built in FP16")
    kind = _resolve_instance_kind(fmt, instance_kind, trt_fp16)
    if fmt == "tensorrt":
        from qdtrack.export.tensorrt_engine import tensorrt_unavailable_reason

        reason = tensorrt_unavailable_reason()
        if reason is not None:
            raise ExportError(f"--format tensorrt needs TensorRT and a CUDA GPU: {reason}")
    checkpoint = Path(checkpoint)
    model, config = load_model(checkpoint, config_path, overrides)
    check_variant(config.export, fmt, kind, trt_fp16, val_manifest, val_gt)
    model_name = model_name or config.deploy.model_name
    metadata = _metadata(checkpoint, config, model, model_name=model_name, version=version, fmt=fmt)
    model_dir = Path(out) / model_name
    version_dir = model_dir / str(version)
    if Path(out).exists() and not Path(out).is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    _check_target(model_dir, version_dir, metadata, force)
    model_dir.mkdir(parents=True, exist_ok=True)
    img_scale = (metadata["img_scale"][0], metadata["img_scale"][1])
    staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=".staging-"))  # not a version
    batched = config.export.batching
    parts = Path(tempfile.mkdtemp(prefix="qdtrack-parts-")) if batched else None
    try:
        onnx_path = staging / ONNX_FILENAME
        if batched:
            export_batched_onnx(model, onnx_path, img_scale=img_scale, parts=parts)
        else:
            export_onnx(model, onnx_path, img_scale=img_scale)
        check_onnx_io(
            onnx_path, metadata["embedding_dim"], metadata["max_detections"], batched=batched
        )
        metadata["parity"] = check_parity(model, onnx_path, img_scale)
        if config.export.int8:
            assert val_manifest is not None and val_gt is not None  # check_variant
            metadata["int8"] = _int8(onnx_path, config, img_scale, val_manifest, val_gt, parts)
            check_onnx_io(
                onnx_path, metadata["embedding_dim"], metadata["max_detections"], batched=batched
            )
        config_text = render_config(
            name=model_name,
            platform=metadata["platform"],
            embedding_dim=metadata["embedding_dim"],
            max_detections=metadata["max_detections"],
            instance_kind=kind,
            instance_count=instance_count,
            model_version=metadata["model_version"],
            warmup_hw=typical_input_hw(img_scale),
            trt_fp16_cache_dir=f"{trt_cache_dir.rstrip('/')}/{model_name}" if trt_fp16 else None,
            img_scale=img_scale,
            header=_header(metadata),
            **_batching(config.export),
        )
        check_config(parse_config(config_text), onnx_io(onnx_path))
        if fmt == "tensorrt":
            _build_plan(onnx_path, staging / PLAN_FILENAME, img_scale)
            onnx_path.unlink()
        metadata["instance_group"] = {"kind": kind, "count": instance_count}
        metadata["trt_fp16"] = trt_fp16
        (staging / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n")
        # Install: replace the version folder, then the shared config.
        if version_dir.exists():
            shutil.rmtree(version_dir)
        staging.rename(version_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if parts is not None:
            shutil.rmtree(parts, ignore_errors=True)
    config_path = model_dir / CONFIG_FILENAME
    with atomic_write(config_path, "w") as handle:
        handle.write(config_text)
    write_contract_parameters(model_dir)  # every version's serving contract
    return ExportResult(
        model_dir, version_dir, version_dir / metadata["model_file"], config_path, metadata
    )


def check_variant(
    settings: ExportConfig,
    fmt: str,
    kind: str,
    trt_fp16: bool,
    val_manifest: str | Path | None,
    val_gt: str | Path | None,
) -> None:
    """Refuse combinations of ``export.batching`` / ``export.int8`` with other options."""
    if settings.batching and fmt == "tensorrt":
        raise ExportError(
            "export.batching applies to --format onnx (the batched graph runs its per-image "
            "part in an ONNX Loop); use --format onnx-trt-fp16 for TensorRT with batching"
        )
    if settings.int8 and (fmt != "onnx" or trt_fp16 or kind != INSTANCE_KINDS["cpu"]):
        raise ExportError(
            "export.int8 is for CPU serving: --format onnx on --instance-kind cpu "
            "(on a GPU use TensorRT FP16)"
        )
    if settings.int8 and (val_manifest is None or val_gt is None):
        raise ExportError(
            "export.int8 needs --val-manifest and --val-gt (qdtrack data convert's val.json "
            "and val_gt): the INT8 model is kept only if it tracks the validation sequences "
            "about as well as the float model"
        )


def _batching(settings: ExportConfig) -> dict[str, Any]:
    """``build_config`` arguments of the batching settings."""
    if not settings.batching:
        return {}
    return {
        "max_batch_size": settings.max_batch_size,
        "preferred_batch_sizes": settings.preferred_batch_sizes,
        "max_queue_delay_us": settings.max_queue_delay_us,
    }


def _int8(
    onnx_path: Path,
    config: QDTrackConfig,
    img_scale: tuple[int, int],
    val_manifest: str | Path,
    val_gt: str | Path,
    parts: Path | None,
) -> dict[str, Any]:
    """Replace ``onnx_path`` with its INT8 version if it passes the gate; the gate record.

    ``parts``: the batched graph's traces (quantised one by one).
    """
    from qdtrack.export.int8_gate import build_int8
    from qdtrack.export.quantize import CalibrationError

    if not Path(val_manifest).is_file():
        raise ExportError(f"--val-manifest {val_manifest}: file not found")
    if not Path(val_gt).is_dir():
        raise ExportError(f"--val-gt {val_gt}: folder not found")
    int8_path = onnx_path.with_name("model.int8.onnx")
    try:
        report = build_int8(
            onnx_path,
            int8_path,
            config,
            img_scale=img_scale,
            batched=config.export.batching,
            parts=parts,
            manifest=read_json(val_manifest),
            gt_dir=val_gt,
        )
    except CalibrationError as exc:
        raise ExportError(str(exc)) from exc
    failures = report.failures()
    if failures:
        raise ExportError(
            "the INT8 model fails its quality gate on the validation sequences: "
            + "; ".join(failures)
            + " (export.max_hota_drop / export.max_idf1_drop)"
        )
    int8_path.replace(onnx_path)
    return {**report.to_dict(), "calibration_frames": config.export.calibration_frames}


def _build_plan(onnx_path: Path, plan_path: Path, img_scale: tuple[int, int]) -> None:
    from qdtrack.export.tensorrt_engine import build_engine

    build_engine(
        onnx_path, plan_path, fp16=True, opt_hw=typical_input_hw(img_scale), max_side=max(img_scale)
    )


def _header(metadata: dict[str, Any]) -> str:
    checkpoint = Path(metadata["checkpoint"]).name
    return (
        "Generated by `qdtrack export`: do not edit, re-export instead.\n"
        f"model_version {metadata['model_version']}, checkpoint {checkpoint} "
        f"(sha256 {metadata['checkpoint_sha256'][:12]}), img_scale {metadata['img_scale']}.\n"
        "Clients send the frame resized with qdtrack.resize.resize_frame(frame, img_scale)."
    )


def main(args: argparse.Namespace) -> int:
    """``qdtrack export``."""
    trt_fp16 = args.trt_fp16 or args.format == "onnx-trt-fp16"
    result = export_repository(
        args.checkpoint,
        args.out,
        config_path=args.config,
        overrides=args.set,
        version=args.version,
        fmt="onnx" if args.format == "onnx-trt-fp16" else args.format,
        instance_kind=args.instance_kind,
        instance_count=args.instance_count,
        trt_fp16=trt_fp16,
        trt_cache_dir=args.trt_cache_dir,
        force=args.force,
        val_manifest=args.val_manifest,
        val_gt=args.val_gt,
    )
    meta = result.metadata
    size_mb = result.model_file.stat().st_size / 2**20
    parity = meta["parity"]
    sys.stdout.write(
        f"export: {meta['model_format']} {result.model_file} ({size_mb:.1f} MB), "
        f"{result.config_path}; model_version {meta['model_version']}; parity with PyTorch on "
        f"a test frame: {parity['detections_exported']}/{parity['detections_pytorch']} "
        f"detections, {parity['unmatched']} unpaired, boxes within "
        f"{parity['max_box_rel_diff']:.1e} (relative)\n"
    )
    if meta["max_batch_size"]:
        sys.stdout.write(f"export: batched graph, max_batch_size {meta['max_batch_size']}\n")
    if "int8" in meta:
        gate = meta["int8"]
        sys.stdout.write(
            f"export: INT8 kept: HOTA {gate['int8']['hota']:.2f} vs {gate['float32']['hota']:.2f} "
            f"(float32), IDF1 {gate['int8']['idf1']:.2f} vs {gate['float32']['idf1']:.2f}\n"
        )
    return 0


__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "export_repository",
    "file_sha256",
    "main",
    "model_version_string",
]
