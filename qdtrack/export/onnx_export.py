"""Trace :class:`~qdtrack.export.graph.ExportableQDTrack` to ONNX and read a graph's IO back.

The legacy TorchScript exporter (``dynamo=False``) at opset 17 is the one that handles the
whole two-stage detector (the dynamo exporter stops at the data-dependent
NMS). Opset 16+ is needed for RoIAlign's half-pixel (``aligned=True``) mode. Height and width
of the input stay dynamic; the outputs get their static contract shapes written into the
graph, so Triton and :func:`qdtrack.export.triton_config.check_config` can compare them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import torch

from qdtrack.export.contract import (
    INPUT_IMAGE,
    MAX_DETECTIONS,
    OUTPUTS,
    TensorSpec,
    output_specs,
)
from qdtrack.export.graph import ExportableQDTrack
from qdtrack.model.qdtrack import QDTrack
from qdtrack.resize import typical_input_hw as typical_input_hw  # the exporter's import

OPSET = 17
#: ONNX element type of each Triton data type of the contract.
ONNX_ELEMENT_TYPES = {
    "UINT8": onnx.TensorProto.UINT8,
    "FP32": onnx.TensorProto.FLOAT,
    "INT64": onnx.TensorProto.INT64,
    "INT32": onnx.TensorProto.INT32,
}


def embedding_width(model: QDTrack) -> int:
    """Width D of the model's embeddings."""
    return int(model.track_head.embed_head.embed_channels)


def sample_frames(count: int, hw: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """(count, h, w, 3) uint8 noise traced through the graph (noise, not zeros: the trace
    should see detections; every branch is kept anyway)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, hw[0], hw[1], 3), dtype=np.uint8)


def trace_to_onnx(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int = OPSET,
) -> None:
    """Trace ``module`` on ``args`` into an ONNX file with the legacy exporter."""
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated and about every Python number it
        # freezes; the graph's dynamic parts are covered by the parity tests instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
        )


def export_onnx(
    model: QDTrack, path: str | Path, *, img_scale: tuple[int, int], opset: int = OPSET
) -> None:
    """Write the model as an ONNX graph with the contract's tensor names.

    Args:
        model: the network (moved to the CPU and put in eval mode).
        path: ``.onnx`` file to write.
        img_scale: the model's resize limits; the traced sample has the size of a resized
            1920x1080 frame (any size works at run time).
        opset: ONNX opset (16 or later for aligned RoIAlign).
    """
    model = model.to("cpu").eval()
    wrapper = ExportableQDTrack(model).eval()
    height, width = typical_input_hw(img_scale)
    trace_to_onnx(
        wrapper,
        (torch.from_numpy(sample_frames(1, (height, width))[0]),),
        path,
        input_names=[INPUT_IMAGE.name],
        output_names=[spec.name for spec in OUTPUTS],
        dynamic_axes={INPUT_IMAGE.name: {0: "height", 1: "width"}},
        opset=opset,
    )
    graph = onnx.load(str(path))
    set_output_shapes(graph, output_specs(embedding_width(model), wrapper.max_detections))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def batch_specs(specs: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
    """``specs`` with a leading variable batch axis (the batched graph's IO)."""
    return tuple(TensorSpec(s.name, s.triton_dtype, (-1, *s.dims)) for s in specs)


def set_output_shapes(graph: onnx.ModelProto, specs: tuple[TensorSpec, ...]) -> None:
    """Write the contract shapes over the exporter's output dims (-1: a named ``batch``)."""
    by_name = {spec.name: spec for spec in specs}
    for output in graph.graph.output:
        shape = output.type.tensor_type.shape
        dims = by_name[output.name].dims
        if len(shape.dim) != len(dims):
            raise ValueError(f"output {output.name!r} has rank {len(shape.dim)}, want {dims}")
        for dim, size in zip(shape.dim, dims, strict=True):
            dim.Clear()
            if size < 0:
                dim.dim_param = "batch"
            else:
                dim.dim_value = size


def onnx_io(path: str | Path) -> dict[str, TensorSpec]:
    """Inputs and outputs of an ONNX file as contract specs (symbolic dims become -1)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    element_names = {code: name for name, code in ONNX_ELEMENT_TYPES.items()}
    specs = {}
    for value in [*graph.input, *graph.output]:
        tensor = value.type.tensor_type
        dtype = element_names.get(tensor.elem_type, f"ONNX type {tensor.elem_type}")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        specs[value.name] = TensorSpec(value.name, dtype, dims)
    return specs


def check_onnx_io(
    path: str | Path,
    embedding_dim: int,
    max_detections: int = MAX_DETECTIONS,
    *,
    batched: bool = False,
) -> None:
    """Raise ``ValueError`` unless the file's inputs and outputs are exactly the contract's.

    ``batched``: every tensor has a leading batch axis (the batched graph).
    """
    specs = (INPUT_IMAGE, *output_specs(embedding_dim, max_detections))
    expected = {spec.name: spec for spec in (batch_specs(specs) if batched else specs)}
    actual = onnx_io(path)
    if actual != expected:
        raise ValueError(f"{path}: graph IO {list(actual.values())} is not the contract")
