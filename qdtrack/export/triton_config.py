"""``config.pbtxt`` of the exported model: built as Triton's protobuf, validated by parsing.

Never edit a generated ``config.pbtxt`` by hand; re-run ``qdtrack export``. The config is
built as Triton's own ``ModelConfig`` message (shipped with ``tritonclient[grpc]``) and
written with protobuf's text format, so it cannot be malformed; Triton has no offline
validator, so :func:`check_config` compares names, data types and dims with the exported
ONNX graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from qdtrack.export.contract import (
    INPUTS,
    MAX_BATCH_SIZE,
    MAX_DETECTIONS,
    MODEL_VERSION_PARAMETER,
    TensorSpec,
    output_specs,
)
from qdtrack.export.serving_contract import (
    CONTRACT_PARAMETER,
    QUALITY_PREFIX,
    ServingContract,
    contract_parameters,
    quality_parameters,
    repository_contracts,
    repository_quality,
)
from qdtrack.io_utils import atomic_write
from qdtrack.resize import resized_hw_range

#: ``qdtrack export --format`` -> Triton platform.
PLATFORMS = {"onnx": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
#: ORT-TRT scratch memory (the backend's default, 1 GiB).
TRT_WORKSPACE_BYTES = 1 << 30


def _tensors(message: Any, specs: Sequence[TensorSpec]) -> None:
    for spec in specs:
        tensor = message.add()
        tensor.name = spec.name
        tensor.data_type = model_config_pb2.DataType.Value(f"TYPE_{spec.triton_dtype}")
        tensor.dims.extend(spec.dims)


def trt_profile_shapes(img_scale: tuple[int, int], max_batch_size: int = 0) -> dict[str, str]:
    """ORT-TRT shape profile of the image input, from the model's resize rule.

    Without one, ORT-TRT builds an engine for the first frame's exact shape and rebuilds
    (seconds to minutes, at request time) whenever a frame of another aspect ratio comes.
    The profile spans every (h, w) the resize can produce
    (:func:`qdtrack.resize.resized_hw_range`), tuned for a resized full-HD frame; the
    batched graph's batch axis spans 1 to ``max_batch_size`` (tuned for the largest).
    """
    shapes = dict(zip(("min", "opt", "max"), resized_hw_range(img_scale), strict=True))
    batch = {"min": 1, "opt": max_batch_size, "max": max_batch_size}
    return {
        f"trt_profile_{kind}_shapes": f"{INPUTS[0].name}:"
        + (f"{batch[kind]}x" if max_batch_size > 0 else "")
        + f"{h}x{w}x3"
        for kind, (h, w) in shapes.items()
    }


def _trt_accelerator(
    config: model_config_pb2.ModelConfig, cache_dir: str, img_scale: tuple[int, int]
) -> None:
    # the batched graph's input has a batch axis: its profile does too
    max_batch_size = config.max_batch_size
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add()
    accelerator.name = "tensorrt"
    accelerator.parameters.update(
        {
            "precision_mode": "FP16",
            "max_workspace_size_bytes": str(TRT_WORKSPACE_BYTES),
            "trt_engine_cache_enable": "1",
            "trt_engine_cache_path": cache_dir,
            # tactic timings survive too: a new model version builds its engines faster
            "trt_timing_cache_enable": "1",
            "trt_timing_cache_path": cache_dir,
            **trt_profile_shapes(img_scale, max_batch_size),
        }
    )


def set_parameters(config: model_config_pb2.ModelConfig, parameters: Mapping[str, str]) -> None:
    """Set string ``parameters`` of a model config (existing keys are replaced)."""
    for key, value in parameters.items():
        config.parameters[key].string_value = value


def config_text(config: model_config_pb2.ModelConfig, header: str = "") -> str:
    """``config.pbtxt`` text of a model config, ``header`` lines first as ``#`` comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    body = text_format.MessageToString(config)
    return "\n".join(lines) + ("\n" if lines else "") + body


def config_header(text: str) -> str:
    """The leading comment lines of a ``config.pbtxt`` (without ``#``), as ``header``."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines)


def _check_settings(
    *,
    platform: str,
    instance_kind: str,
    instance_count: int,
    trt_fp16: bool,
    img_scale: tuple[int, int] | None,
    max_batch_size: int,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_us: int,
) -> None:
    """``ValueError`` naming the first :func:`build_config` setting that cannot work."""
    if platform not in PLATFORMS.values():
        raise ValueError(f"platform must be one of {sorted(PLATFORMS.values())}, got {platform!r}")
    if instance_kind not in INSTANCE_KINDS.values():
        raise ValueError(f"instance_kind must be KIND_CPU or KIND_GPU, got {instance_kind!r}")
    if instance_count < 1:
        raise ValueError(f"instance_count must be at least 1, got {instance_count}")
    if platform == PLATFORMS["tensorrt"] and instance_kind != "KIND_GPU":
        raise ValueError("a TensorRT plan runs on GPU instances only (KIND_GPU)")
    if trt_fp16 and (platform != PLATFORMS["onnx"] or instance_kind != "KIND_GPU"):
        raise ValueError("the TensorRT accelerator applies to an ONNX model on KIND_GPU")
    if trt_fp16 and img_scale is None:
        raise ValueError("the TensorRT accelerator needs img_scale for its shape profile")
    if max_batch_size < 0:
        raise ValueError(f"max_batch_size must be >= 0, got {max_batch_size}")
    if max_batch_size == 0 and (preferred_batch_sizes or max_queue_delay_us):
        raise ValueError("dynamic batching settings need a batched graph (max_batch_size > 0)")
    if any(not 1 <= size <= max_batch_size for size in preferred_batch_sizes):
        raise ValueError(
            f"preferred batch sizes {list(preferred_batch_sizes)} outside 1..{max_batch_size}"
        )


def build_config(
    *,
    name: str,
    platform: str,
    embedding_dim: int,
    max_detections: int = MAX_DETECTIONS,
    instance_kind: str = "KIND_CPU",
    instance_count: int = 1,
    model_version: str,
    warmup_hw: tuple[int, int] | None = None,
    trt_fp16_cache_dir: str | None = None,
    img_scale: tuple[int, int] | None = None,
    parameters: Mapping[str, str] | None = None,
    max_batch_size: int = MAX_BATCH_SIZE,
    preferred_batch_sizes: Sequence[int] = (),
    max_queue_delay_us: int = 0,
) -> model_config_pb2.ModelConfig:
    """Triton's ``ModelConfig`` of the exported network.

    By default one frame per request, no batch axis (``max_batch_size`` 0, so every
    ``dims`` is the full shape). With ``max_batch_size > 0`` (the batched graph) the
    ``dims`` are per frame and Triton's dynamic batcher joins requests of equal shape,
    waiting up to ``max_queue_delay_us`` for a preferred batch size. The input is the
    resized uint8 BGR frame (normalisation and padding happen in the graph); outputs are
    padded to ``max_detections`` rows, ``num_detections`` says how many are real.

    Args:
        name: Triton model name (the model folder's name).
        platform: ``"onnxruntime_onnx"`` or ``"tensorrt_plan"``.
        embedding_dim: width of the ``embeddings`` output.
        max_detections: rows of the padded outputs.
        instance_kind: ``"KIND_CPU"`` or ``"KIND_GPU"``.
        instance_count: model instances (per GPU for ``KIND_GPU``).
        model_version: the export's version string, stored as a model parameter (tracker
            state in the sidecar is tagged with it: embeddings of other weights differ).
        warmup_hw: (h, w) of a zero frame run by every instance before the model is READY
            (allocations; with TensorRT, the engine build); ``None`` for no warm-up.
        trt_fp16_cache_dir: add the ORT TensorRT accelerator (FP16) with its engine cache
            there (ONNX models on ``KIND_GPU`` only). TensorRT runs the convolution trunks;
            NMS, NonZero and RoiAlign fall back to the CUDA EP. Put the cache on a
            persistent volume: engines are built on first use.
        img_scale: the model's resize limits; with ``trt_fp16_cache_dir``, the TensorRT
            shape profile spans every frame size they produce (required there).
        parameters: further string parameters (the serving contracts).
        max_batch_size: 0 for the single-frame graph, else the largest batch of the
            batched graph.
        preferred_batch_sizes: the dynamic batcher's preferred sizes (batched graph only).
        max_queue_delay_us: the dynamic batcher's queue delay (batched graph only).
    """
    _check_settings(
        platform=platform,
        instance_kind=instance_kind,
        instance_count=instance_count,
        trt_fp16=trt_fp16_cache_dir is not None,
        img_scale=img_scale,
        max_batch_size=max_batch_size,
        preferred_batch_sizes=preferred_batch_sizes,
        max_queue_delay_us=max_queue_delay_us,
    )
    config = model_config_pb2.ModelConfig(
        name=name, platform=platform, max_batch_size=max_batch_size
    )
    if max_batch_size > 0:
        config.dynamic_batching.preferred_batch_size.extend(preferred_batch_sizes)
        config.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    _tensors(config.input, INPUTS)
    _tensors(config.output, output_specs(embedding_dim, max_detections))
    group = config.instance_group.add()
    group.count = instance_count
    group.kind = model_config_pb2.ModelInstanceGroup.Kind.Value(instance_kind)
    set_parameters(config, {MODEL_VERSION_PARAMETER: model_version, **(parameters or {})})
    if trt_fp16_cache_dir is not None and img_scale is not None:
        _trt_accelerator(config, trt_fp16_cache_dir, img_scale)
    if warmup_hw is not None:
        warmup = config.model_warmup.add(name="zero_frame", batch_size=1)
        frame = warmup.inputs[INPUTS[0].name]
        frame.data_type = model_config_pb2.DataType.Value(f"TYPE_{INPUTS[0].triton_dtype}")
        frame.dims.extend([warmup_hw[0], warmup_hw[1], 3])
        frame.zero_data = True
    return config


def render_config(*, header: str = "", **settings: Any) -> str:
    """The ``config.pbtxt`` text of :func:`build_config` (``header`` lines as comments).

    :func:`parse_config` reads it back.
    """
    return config_text(build_config(**settings), header)


def parse_config(text: str) -> model_config_pb2.ModelConfig:
    """Parse ``config.pbtxt`` text into Triton's ``ModelConfig`` (``ValueError`` if invalid)."""
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"config.pbtxt does not parse as a Triton ModelConfig: {exc}") from exc


def _config_specs(tensors: Sequence[model_config_pb2.ModelInput]) -> dict[str, TensorSpec]:
    dtype_names = model_config_pb2.DataType.Name
    return {
        t.name: TensorSpec(t.name, dtype_names(t.data_type).removeprefix("TYPE_"), tuple(t.dims))
        for t in tensors
    }


def check_config(config: model_config_pb2.ModelConfig, graph_io: Mapping[str, TensorSpec]) -> None:
    """Raise ``ValueError`` naming every tensor whose name, type or dims differ from the graph.

    Args:
        config: the parsed ``config.pbtxt``.
        graph_io: the graph's inputs and outputs (:func:`qdtrack.export.onnx_export.onnx_io`).
    """
    if config.max_batch_size < 0:
        raise ValueError(f"max_batch_size is {config.max_batch_size}, must be >= 0")
    image = graph_io.get(INPUTS[0].name)
    graph_batched = image is not None and len(image.dims) == len(INPUTS[0].dims) + 1
    if graph_batched != (config.max_batch_size > 0):
        want = "a positive max_batch_size" if graph_batched else "max_batch_size 0"
        raise ValueError(f"max_batch_size is {config.max_batch_size}, the graph needs {want}")
    if graph_batched:  # config dims are per frame, without the batch axis
        graph_io = {
            name: TensorSpec(spec.name, spec.triton_dtype, spec.dims[1:])
            for name, spec in graph_io.items()
        }
    declared = {**_config_specs(config.input), **_config_specs(config.output)}
    problems = [
        f"{name}: config {declared.get(name)} vs graph {graph_io.get(name)}"
        for name in sorted(set(declared) | set(graph_io))
        if declared.get(name) != graph_io.get(name)
    ]
    if problems:
        raise ValueError("config.pbtxt does not match the graph: " + "; ".join(problems))


def write_contract_parameters(model_dir: Path) -> dict[int, ServingContract]:
    """Rewrite ``<model_dir>/config.pbtxt`` with the contract of every version folder.

    Triton has one configuration per model, so the contract of each version still in the
    repository is kept under its own key (a replica that still serves an older version
    must find it), and so are the metrics a deployed version passed the gate with (its
    ``deploy.json``; the sidecar's quality gauge follows the served version); stale keys
    of removed versions are dropped. The header comments are kept; the file is replaced
    atomically.

    Returns:
        The contracts written, by version.
    """
    path = model_dir / "config.pbtxt"
    text = path.read_text(encoding="utf-8")
    config = parse_config(text)
    ours = (CONTRACT_PARAMETER, QUALITY_PREFIX)
    for key in [k for k in config.parameters if k.startswith(ours)]:
        del config.parameters[key]
    contracts = repository_contracts(model_dir)
    set_parameters(config, contract_parameters(contracts))
    set_parameters(config, quality_parameters(repository_quality(model_dir)))
    if contracts:
        newest = contracts[max(contracts)]
        set_parameters(config, {MODEL_VERSION_PARAMETER: newest.model_version})
    with atomic_write(path, "w") as handle:
        handle.write(config_text(config, config_header(text)))
    return contracts
