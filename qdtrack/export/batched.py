"""The batched ONNX graph: N equally sized frames per call, detections per frame.

Triton's dynamic batcher joins the single-frame requests of many streams into one call
when the model has a leading batch axis (``max_batch_size > 0``). The detector's
post-processing (per-level top-k, NMS, RoI pooling of a data-dependent number of boxes)
is written for one image, so the graph is built from two traces:

- the **trunk** (:class:`~qdtrack.export.graph.ExportableTrunk`): normalisation, backbone,
  FPN and RPN head on the whole (N, H, W, 3) batch, where batching pays;
- the **head** (:class:`~qdtrack.export.graph.ExportableImageHead`): the rest of
  ``QDTrack.predict_tensors`` for one image, traced once and run by an ONNX ``Loop`` over
  the batch; its padded outputs are stacked into (N, rows, ...) tensors.

All frames of one call must have the same size (Triton batches only requests of equal
shape); a stream's frames always have.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper

from qdtrack.export.contract import INPUT_IMAGE, OUTPUTS, output_specs
from qdtrack.export.graph import ExportableImageHead, ExportableTrunk
from qdtrack.export.onnx_export import (
    OPSET,
    batch_specs,
    embedding_width,
    sample_frames,
    set_output_shapes,
    trace_to_onnx,
    typical_input_hw,
)
from qdtrack.model.qdtrack import QDTrack

#: Frames in the traced sample batch (any count works at run time).
TRACE_BATCH = 2
IMAGE_HW = "image_hw"
#: Prefix of the head's names inside the loop body (keeps them apart from the trunk's).
HEAD_PREFIX = "head/"


def _trunk_names(levels: int) -> list[str]:
    return (
        [f"feature_{i}" for i in range(levels)]
        + [f"objectness_{i}" for i in range(levels)]
        + [f"deltas_{i}" for i in range(levels)]
    )


def _trunk_axes(names: list[str], levels: int, batch: bool) -> dict[str, dict[int, str]]:
    """Dynamic axes of the trunk outputs (with ``batch``) or of the head inputs (without)."""
    axes: dict[str, dict[int, str]] = {}
    for index, name in enumerate(names):
        level = index % levels
        dims = {2: f"h{level}", 3: f"w{level}"} if index < levels else {1: f"k{level}"}
        axes[name] = {0: "batch", **dims} if batch else dims
    return axes


def trace_trunk_and_head(
    model: QDTrack, folder: Path, *, img_scale: tuple[int, int], opset: int = OPSET
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Trace the two parts of the batched graph (files in ``folder``) and load them."""
    model = model.to("cpu").eval()
    trunk = ExportableTrunk(model).eval()
    head = ExportableImageHead(model).eval()
    images = torch.from_numpy(sample_frames(TRACE_BATCH, typical_input_hw(img_scale)))
    with torch.no_grad():
        trunk_out = trunk(images)
    levels = len(trunk_out) // 3
    names = _trunk_names(levels)
    trace_to_onnx(
        trunk,
        (images,),
        folder / "trunk.onnx",
        input_names=[INPUT_IMAGE.name],
        output_names=names,
        dynamic_axes={
            INPUT_IMAGE.name: {0: "batch", 1: "height", 2: "width"},
            **_trunk_axes(names, levels, batch=True),
        },
        opset=opset,
    )
    image_hw = torch.tensor(images.shape[1:3], dtype=torch.int64)
    trace_to_onnx(
        head,
        (image_hw, *(t[:1] for t in trunk_out)),
        folder / "head.onnx",
        input_names=[IMAGE_HW, *names],
        output_names=[spec.name for spec in OUTPUTS],
        dynamic_axes=_trunk_axes(names, levels, batch=False),
        opset=opset,
    )
    return onnx.load(str(folder / "trunk.onnx")), onnx.load(str(folder / "head.onnx"))


def compose_batched(trunk: onnx.ModelProto, head: onnx.ModelProto) -> onnx.ModelProto:
    """The trunk on the batch, then a ``Loop`` running the head once per frame.

    The head's inputs are ``image_hw`` and trunk outputs (by name); its outputs become the
    graph's outputs with a leading batch axis.
    """
    head_graph = onnx.compose.add_prefix_graph(head.graph, HEAD_PREFIX)
    trunk_outputs = [o.name for o in trunk.graph.output]
    # The exporter drops inputs the head does not read (image_hw without clip_border).
    wanted = {i.name.removeprefix(HEAD_PREFIX) for i in head_graph.input}
    unknown = wanted - {IMAGE_HW, *trunk_outputs}
    if unknown:
        raise ValueError(f"head inputs {sorted(unknown)} are not trunk outputs")
    graph = onnx.GraphProto()
    graph.CopyFrom(trunk.graph)
    del graph.output[:]
    image = INPUT_IMAGE.name
    graph.node.extend(
        [
            helper.make_node("Shape", [image], ["batch/shape"]),
            helper.make_node("Constant", [], ["batch/zero"], value_int=0),
            helper.make_node("Gather", ["batch/shape", "batch/zero"], ["batch/count"], axis=0),
            helper.make_node("Constant", [], ["batch/hw_from"], value_ints=[1]),
            helper.make_node("Constant", [], ["batch/hw_to"], value_ints=[3]),
            helper.make_node(
                "Slice", ["batch/shape", "batch/hw_from", "batch/hw_to"], [HEAD_PREFIX + IMAGE_HW]
            ),
        ]
    )
    # The head's weights live in the outer graph; the loop body sees them by name.
    graph.initializer.extend(head_graph.initializer)
    body_nodes = [
        helper.make_node("Constant", [], ["loop/axis0"], value_ints=[0]),
        helper.make_node("Unsqueeze", ["loop/i", "loop/axis0"], ["loop/index"]),
        helper.make_node("Identity", ["loop/cond_in"], ["loop/cond_out"]),
    ]
    for name in trunk_outputs:
        if name in wanted:
            target = HEAD_PREFIX + name
            body_nodes.append(helper.make_node("Gather", [name, "loop/index"], [target], axis=0))
    body_nodes.extend(head_graph.node)
    body = helper.make_graph(
        body_nodes,
        "per_image_head",
        [
            helper.make_tensor_value_info("loop/i", TensorProto.INT64, []),
            helper.make_tensor_value_info("loop/cond_in", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("loop/cond_out", TensorProto.BOOL, []), *head_graph.output],
    )
    outputs = [o.name.removeprefix(HEAD_PREFIX) for o in head_graph.output]
    graph.node.append(helper.make_node("Loop", ["batch/count", ""], outputs, body=body))
    for value in head.graph.output:
        tensor = value.type.tensor_type
        shape = [None] * (len(tensor.shape.dim) + 1)
        graph.output.append(helper.make_tensor_value_info(value.name, tensor.elem_type, shape))
    model = helper.make_model(graph, opset_imports=trunk.opset_import)
    model.ir_version = trunk.ir_version
    return model


def export_batched_onnx(
    model: QDTrack,
    path: str | Path,
    *,
    img_scale: tuple[int, int],
    opset: int = OPSET,
    parts: Path | None = None,
) -> None:
    """Write the batched graph: ``image`` (N, h, w, 3) uint8 -> the contract's outputs (N, ...).

    Args:
        model: the network (moved to the CPU and put in eval mode).
        path: ``.onnx`` file to write.
        img_scale: the model's resize limits (the traced sample is a resized 1920x1080 frame).
        opset: ONNX opset.
        parts: keep the two traces there (``trunk.onnx``, ``head.onnx``): INT8 quantises
            them one by one (:func:`qdtrack.export.quantize.quantize_int8`).
    """
    with tempfile.TemporaryDirectory(prefix="qdtrack-batched-") as folder:
        where = parts or Path(folder)
        trunk, head = trace_trunk_and_head(model, where, img_scale=img_scale, opset=opset)
    graph = compose_batched(trunk, head)
    rows = ExportableImageHead(model).max_detections
    set_output_shapes(graph, batch_specs(output_specs(embedding_width(model), rows)))
    save_checked(graph, path)


def save_checked(graph: onnx.ModelProto, path: str | Path) -> None:
    """Check ``graph`` with ONNX's checker and write it."""
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
