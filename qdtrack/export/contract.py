"""The tensor contract between the exported network, Triton and the tracking sidecar.

One place names the model and its tensors, so the exporter, the rendered ``config.pbtxt``,
the local PyTriton server and the sidecar's client cannot drift apart. This module imports
nothing heavy (no torch, no onnx), so the sidecar can use it.

The client resizes each frame with the reference rule (:func:`qdtrack.resize.resize_frame`,
also reachable as ``qdtrack.model.preprocess.resize_frame``) and sends the resized **uint8
BGR** pixels; mean subtraction, padding to a multiple of 32 and everything after happen
inside the graph. Outputs are padded to ``MAX_DETECTIONS`` rows per image;
``num_detections`` says how many rows are real. Boxes are in the pixel coordinates of the
image that was sent (divide by the resize scale factor to get original-frame boxes).

Batching: by default the graph takes **one frame per request** (``MAX_BATCH_SIZE = 0``), so
every ``dims`` below is the full tensor shape and throughput scales with model instances
(``instance_group { count: N }``). The batched export (``export.batching``,
:mod:`qdtrack.export.batched`) adds a leading batch axis of equally sized frames, the
frames of many streams of one camera type: ``max_batch_size > 0``, Triton's dynamic
batcher joins single-frame requests, and the ``dims`` below are per frame, without the
batch axis (Triton's convention). Post-processing stays per frame. :mod:`qdtrack.export.runtime`
has the pure request/response helpers (resize + pack, unpack to ``Detections``).
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_NAME = "qdtrack"
MAX_DETECTIONS = 100  # the reference (MOT17) test_cfg max_per_img; the fewest rows exported
#: Triton ``max_batch_size`` of the default graph: 0 = no batch axis, one frame per request
#: (see above); the batched graph declares the configured ``export.max_batch_size``.
MAX_BATCH_SIZE = 0

#: File names inside a model version folder ``<repository>/<model>/<version>/``.
ONNX_FILENAME = "model.onnx"  # Triton's default for platform onnxruntime_onnx
PLAN_FILENAME = "model.plan"  # Triton's default for platform tensorrt_plan
#: Export record beside the model file: checkpoint sha256, model config, img_scale,
#: embedding width and ``model_version`` (JSON).
METADATA_FILENAME = "export.json"
#: ``config.pbtxt`` parameter carrying the same ``model_version`` string, so a client can
#: read it from Triton's model-config endpoint; tracker state is tagged with it because
#: embeddings of different weights are not comparable.
MODEL_VERSION_PARAMETER = "qdtrack_model_version"


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: Triton data type and shape without the batch dimension."""

    name: str
    triton_dtype: str  # "UINT8", "FP32", "INT64", "INT32"
    dims: tuple[int, ...]  # -1 = variable


# Input: one resized frame, (H, W, 3) uint8 BGR as OpenCV decodes it.
INPUT_IMAGE = TensorSpec("image", "UINT8", (-1, -1, 3))

# Outputs, per image. ``embeddings`` has the model's embedding width (-1 here; the
# exporter writes the actual width into config.pbtxt).
OUTPUT_BOXES = TensorSpec("boxes", "FP32", (MAX_DETECTIONS, 4))  # x1, y1, x2, y2
OUTPUT_SCORES = TensorSpec("scores", "FP32", (MAX_DETECTIONS,))
OUTPUT_LABELS = TensorSpec("labels", "INT64", (MAX_DETECTIONS,))
OUTPUT_EMBEDDINGS = TensorSpec("embeddings", "FP32", (MAX_DETECTIONS, -1))
OUTPUT_NUM_DETECTIONS = TensorSpec("num_detections", "INT32", (1,))

INPUTS = (INPUT_IMAGE,)
OUTPUTS = (OUTPUT_BOXES, OUTPUT_SCORES, OUTPUT_LABELS, OUTPUT_EMBEDDINGS, OUTPUT_NUM_DETECTIONS)

#: numpy dtype name of each Triton data type used above.
NUMPY_DTYPES = {"UINT8": "uint8", "FP32": "float32", "INT64": "int64", "INT32": "int32"}


def export_rows(max_per_img: int) -> int:
    """Rows of the padded outputs for a box head keeping ``max_per_img`` boxes (TAO: 300)."""
    return max(MAX_DETECTIONS, int(max_per_img))


def output_specs(
    embedding_dim: int, max_detections: int = MAX_DETECTIONS
) -> tuple[TensorSpec, ...]:
    """:data:`OUTPUTS` with the embedding width and the number of rows filled in."""
    if embedding_dim < 1:
        raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
    if max_detections < 1:
        raise ValueError(f"max_detections must be positive, got {max_detections}")
    out = []
    for spec in OUTPUTS:
        if spec.name == OUTPUT_EMBEDDINGS.name:
            spec = TensorSpec(spec.name, spec.triton_dtype, (max_detections, embedding_dim))
        elif spec.dims and spec.dims[0] == MAX_DETECTIONS:
            spec = TensorSpec(spec.name, spec.triton_dtype, (max_detections, *spec.dims[1:]))
        out.append(spec)
    return tuple(out)
