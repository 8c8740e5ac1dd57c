"""``config.pbtxt`` of the exported model: rendered by code, validated by parsing.

Never edit a generated ``config.pbtxt`` by hand; re-run ``qdtrack export`` (STYLE §2.14).
Triton has no offline validator, so :func:`parse_config` reads the text into Triton's own
``ModelConfig`` protobuf (shipped with ``tritonclient[grpc]``) and :func:`check_config`
compares names, data types and dims with the exported ONNX graph (platform-notes §8.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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

#: ``qdtrack export --format`` -> Triton platform.
PLATFORMS = {"onnx": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
#: ORT-TRT scratch memory (the backend's default, 1 GiB).
TRT_WORKSPACE_BYTES = 1 << 30


def _tensor_block(specs: Sequence[TensorSpec]) -> str:
    entries = []
    for spec in specs:
        dims = ", ".join(str(d) for d in spec.dims)
        entries.append(
            f'  {{\n    name: "{spec.name}"\n    data_type: TYPE_{spec.triton_dtype}\n'
            f"    dims: [ {dims} ]\n  }}"
        )
    return "[\n" + ",\n".join(entries) + "\n]"


def _parameters(values: Mapping[str, str]) -> str:
    return "".join(f'    parameters {{ key: "{k}" value: "{v}" }}\n' for k, v in values.items())


def _trt_accelerator(cache_dir: str) -> str:
    parameters = {
        "precision_mode": "FP16",
        "max_workspace_size_bytes": str(TRT_WORKSPACE_BYTES),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": cache_dir,
    }
    return (
        "# ORT-TRT: TensorRT (FP16) runs the convolution trunks; NMS, NonZero and RoiAlign fall\n"
        "# back to the CUDA EP. Engines are built on first use and cached in\n"
        "# trt_engine_cache_path: put it on a persistent volume.\n"
        "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n"
        '      {\n        name: "tensorrt"\n'
        + _parameters(parameters).replace("    parameters", "        parameters")
        + "      }\n    ]\n  }\n}\n"
    )


def render_config(
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
    header: str = "",
) -> str:
    """The ``config.pbtxt`` text of the exported network.

    Args:
        name: Triton model name (the model folder's name).
        platform: ``"onnxruntime_onnx"`` or ``"tensorrt_plan"``.
        embedding_dim: width of the ``embeddings`` output.
        max_detections: rows of the padded outputs.
        instance_kind: ``"KIND_CPU"`` or ``"KIND_GPU"``.
        instance_count: model instances (per GPU for ``KIND_GPU``).
        model_version: the export's version string, stored as a model parameter.
        warmup_hw: (h, w) of a zero frame run by every instance before the model is READY;
            ``None`` for no warm-up.
        trt_fp16_cache_dir: add the ORT TensorRT accelerator (FP16) with its engine cache
            there (ONNX models on ``KIND_GPU`` only).
        header: comment lines put first (each prefixed with ``#``).

    Returns:
        The text; :func:`parse_config` reads it back.
    """
    if platform not in PLATFORMS.values():
        raise ValueError(f"platform must be one of {sorted(PLATFORMS.values())}, got {platform!r}")
    if instance_kind not in INSTANCE_KINDS.values():
        raise ValueError(f"instance_kind must be KIND_CPU or KIND_GPU, got {instance_kind!r}")
    if instance_count < 1:
        raise ValueError(f"instance_count must be at least 1, got {instance_count}")
    if platform == PLATFORMS["tensorrt"] and instance_kind != "KIND_GPU":
        raise ValueError("a TensorRT plan runs on GPU instances only (KIND_GPU)")
    if trt_fp16_cache_dir is not None and (
        platform != PLATFORMS["onnx"] or instance_kind != "KIND_GPU"
    ):
        raise ValueError("the TensorRT accelerator applies to an ONNX model on KIND_GPU")
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    text = "\n".join(lines) + ("\n" if lines else "")
    text += f'name: "{name}"\nplatform: "{platform}"\n'
    text += (
        "# One frame per request, no batch axis: frames differ in size and the detector's\n"
        "# post-processing (RPN top-k + NMS, final NMS, RoI pooling of a data-dependent number\n"
        "# of boxes) is traced for one image, so Triton cannot batch requests. Scale with\n"
        "# instance_group count instead. All dims below are full shapes.\n"
        f"max_batch_size: {MAX_BATCH_SIZE}\n"
    )
    text += "# The resized uint8 BGR frame; normalisation and padding happen in the graph.\n"
    text += f"input {_tensor_block(INPUTS)}\n"
    text += "# Padded to a fixed number of rows; num_detections says how many are real.\n"
    text += f"output {_tensor_block(output_specs(embedding_dim, max_detections))}\n"
    text += (
        f"instance_group [\n  {{\n    count: {instance_count}\n    kind: {instance_kind}\n  }}\n]\n"
    )
    text += (
        "# Tracker state in the sidecar is tagged with this: embeddings of other weights differ.\n"
        f'parameters {{\n  key: "{MODEL_VERSION_PARAMETER}"\n'
        f'  value: {{ string_value: "{model_version}" }}\n}}\n'
    )
    if trt_fp16_cache_dir is not None:
        text += _trt_accelerator(trt_fp16_cache_dir)
    if warmup_hw is not None:
        height, width = warmup_hw
        text += (
            "# One zero frame of the typical size per instance before READY (allocations; with\n"
            "# TensorRT, the engine build).\n"
            'model_warmup [\n  {\n    name: "zero_frame"\n    batch_size: 1\n'
            f'    inputs {{\n      key: "{INPUTS[0].name}"\n      value: {{\n'
            f"        data_type: TYPE_{INPUTS[0].triton_dtype}\n"
            f"        dims: [ {height}, {width}, 3 ]\n        zero_data: true\n"
            "      }\n    }\n  }\n]\n"
        )
    return text


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
    if config.max_batch_size != MAX_BATCH_SIZE:
        raise ValueError(f"max_batch_size is {config.max_batch_size}, the graph needs 0")
    declared = {**_config_specs(config.input), **_config_specs(config.output)}
    problems = [
        f"{name}: config {declared.get(name)} vs graph {graph_io.get(name)}"
        for name in sorted(set(declared) | set(graph_io))
        if declared.get(name) != graph_io.get(name)
    ]
    if problems:
        raise ValueError("config.pbtxt does not match the graph: " + "; ".join(problems))
