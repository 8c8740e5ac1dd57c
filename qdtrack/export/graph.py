"""The exported network: one resized uint8 BGR frame in, padded detections + embeddings out.

:class:`ExportableQDTrack` wraps a trained :class:`~qdtrack.model.qdtrack.QDTrack` without
re-implementing any of it: the graph normalises and pads the frame with the model's own
:func:`~qdtrack.model.preprocess.normalize_image` rule, then calls
:meth:`QDTrack.predict_tensors`, the same inference path as ``QDTrack.predict``. The tensor
names and shapes are those of :mod:`qdtrack.export.contract`.

The graph runs with a scale factor of 1, so its boxes are in the pixels of the image it was
given; the client divides them by its resize factor. The reference divides *before* the
final NMS (``nms_in_original_frame``); IoU does not change under a per-axis scaling, so the
kept boxes are the same up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qdtrack.export.contract import export_rows
from qdtrack.model.preprocess import SIZE_DIVISOR, ImageBatch, normalize_image
from qdtrack.model.qdtrack import QDTrack
from qdtrack.model.roi_heads import DetectionResult
from qdtrack.model.rpn import RPNOutput


def pad_to_divisor(image: Tensor, size_divisor: int = SIZE_DIVISOR) -> Tensor:
    """Zero-pad a (C, H, W) image bottom/right to multiples of ``size_divisor``.

    The same padding as :func:`~qdtrack.model.preprocess.batch_images` gives a batch of one
    image, written with shape arithmetic that a trace keeps dynamic.
    """
    height, width = image.shape[-2], image.shape[-1]
    pad_h = (size_divisor - height % size_divisor) % size_divisor
    pad_w = (size_divisor - width % size_divisor) % size_divisor
    return F.pad(image, (0, pad_w, 0, pad_h))


def pad_rows(rows: Tensor, num_rows: int) -> Tensor:
    """Zero-pad (N, ...) ``rows`` to (num_rows, ...) for N <= num_rows (trace-friendly)."""
    filler = rows.new_zeros((num_rows, *rows.shape[1:]))
    return torch.cat([rows, filler])[:num_rows]


Outputs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def padded_outputs(result: DetectionResult, embeddings: Tensor, rows: int) -> Outputs:
    """One image's detections as the contract's padded outputs (boxes ... num_detections)."""
    # A sum of ones rather than ``len``: the count must stay a graph value (int64 sum,
    # cast to the contract's int32).
    num_detections = torch.ones_like(result.labels).sum(0, keepdim=True).to(torch.int32)
    return (
        pad_rows(result.boxes_xyxy, rows),
        pad_rows(result.scores, rows),
        pad_rows(result.labels, rows),
        pad_rows(embeddings, rows),
        num_detections,
    )


def check_rows(model: QDTrack, max_detections: int | None) -> int:
    """The padded row count: ``max_detections`` or the default, at least ``max_per_img``."""
    max_per_img = model.detector.roi_heads.max_per_img
    rows = export_rows(max_per_img) if max_detections is None else max_detections
    if max_per_img > rows:
        raise ValueError(
            f"the box head keeps up to {max_per_img} detections per image but the "
            f"exported outputs hold {rows} rows"
        )
    return rows


class ExportableQDTrack(nn.Module):
    """QDTrack on one resized frame with fixed-size outputs, for ONNX / Triton.

    Input:
        image: (H, W, 3) uint8 BGR frame already resized by the client with
            :func:`qdtrack.resize.resize_frame` (H, W at most the model's ``img_scale``).

    Outputs (a tuple, in the order of :data:`qdtrack.export.contract.OUTPUTS`):
        boxes: (MAX_DETECTIONS, 4) float32 xyxy in the pixels of ``image``.
        scores: (MAX_DETECTIONS,) float32.
        labels: (MAX_DETECTIONS,) int64 0-based classes.
        embeddings: (MAX_DETECTIONS, D) float32.
        num_detections: (1,) int32; rows past it are zeros.

    Args:
        model: the trained network; put in eval mode by :meth:`forward`'s caller.
        max_detections: rows of the padded outputs; at least the box head's
            ``max_per_img`` (default: :func:`~qdtrack.export.contract.export_rows`).
    """

    def __init__(self, model: QDTrack, *, max_detections: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.max_detections = check_rows(model, max_detections)

    def forward(self, image: Tensor) -> Outputs:
        """Detections and embeddings of one frame (see the class docstring)."""
        norm = self.model.detector.normalization
        normalized = pad_to_divisor(
            normalize_image(
                image.permute(2, 0, 1), mean=norm.mean, std=norm.std, to_rgb=norm.to_rgb
            )
        )
        height, width = image.shape[0], image.shape[1]
        # The image size only matters for clip_border (the TAO settings). As a tensor it
        # stays a graph value (ONNX Shape); Python ints would be frozen into the trace.
        size = torch._shape_as_tensor(image)
        batch = ImageBatch(
            tensor=normalized[None],
            image_sizes=[(size[0], size[1])],  # type: ignore[list-item]
            pad_sizes=[(normalized.shape[1], normalized.shape[2])],
            scale_factors=normalized.new_ones((1, 4)),
            original_sizes=[(height, width)],
        )
        ((result, embeddings),) = self.model.predict_tensors(batch)
        return padded_outputs(result, embeddings, self.max_detections)


class ExportableTrunk(nn.Module):
    """The convolutional part of the batched graph: N equally sized frames at once.

    Input ``images``: (N, H, W, 3) uint8 BGR frames resized by the client. Outputs, each
    with the batch axis first: the FPN maps P2..P6, then the RPN objectness of each level
    (N, K_l), then the RPN deltas of each level (N, K_l, 4). Normalisation and padding are
    the unbatched graph's, frame by frame.
    """

    def __init__(self, model: QDTrack) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """Trunk outputs of a batch (see the class docstring)."""
        norm = self.model.detector.normalization
        count, height, width = images.shape[0], images.shape[1], images.shape[2]
        # normalize_image takes one (3, H, W) image: the frames are stacked along H.
        channels_first = images.permute(3, 0, 1, 2).reshape(3, -1, width)
        normalized = normalize_image(
            channels_first, mean=norm.mean, std=norm.std, to_rgb=norm.to_rgb
        )
        normalized = normalized.reshape(3, count, height, width).permute(1, 0, 2, 3)
        features = self.model.detector.extract_features(pad_to_divisor(normalized))
        rpn = self.model.detector.rpn(features)
        return (*features, *rpn.objectness, *rpn.deltas)


class ExportableImageHead(nn.Module):
    """The per-image part of the batched graph: one frame's trunk outputs to its detections.

    Inputs: ``image_hw`` (2,) int64, the (h, w) of the frame sent, then the outputs of
    :class:`ExportableTrunk` for this frame (batch axis of 1). Outputs: those of
    :class:`ExportableQDTrack`. It runs :meth:`QDTrack.predict_from_features`, the rest of
    the path that :class:`ExportableQDTrack` runs through ``predict_tensors``.
    """

    def __init__(self, model: QDTrack, *, max_detections: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.max_detections = check_rows(model, max_detections)

    def forward(self, image_hw: Tensor, *trunk: Tensor) -> Outputs:
        """Detections and embeddings of one frame (see the class docstring)."""
        levels = len(trunk) // 3
        features = list(trunk[:levels])
        rpn = self.model.detector.rpn
        rpn_output = RPNOutput(
            objectness=list(trunk[levels : 2 * levels]),
            deltas=list(trunk[2 * levels :]),
            anchors=rpn.anchor_generator(features),
            feature_sizes=[(int(f.shape[-2]), int(f.shape[-1])) for f in features],  # unused
        )
        finest = features[0]
        batch = ImageBatch(
            tensor=finest,  # only its batch size (1) is read after the trunk
            image_sizes=[(image_hw[0], image_hw[1])],  # type: ignore[list-item]
            pad_sizes=[(finest.shape[-2], finest.shape[-1])],
            scale_factors=finest.new_ones((1, 4)),
            original_sizes=[(finest.shape[-2], finest.shape[-1])],
        )
        ((result, embeddings),) = self.model.predict_from_features(features, rpn_output, batch)
        return padded_outputs(result, embeddings, self.max_detections)
