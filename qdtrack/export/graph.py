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
        max_per_img = model.detector.roi_heads.max_per_img
        if max_detections is None:
            max_detections = export_rows(max_per_img)
        if max_per_img > max_detections:
            raise ValueError(
                f"the box head keeps up to {max_per_img} detections per image but the "
                f"exported outputs hold {max_detections} rows"
            )
        self.model = model
        self.max_detections = max_detections

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
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
        rows = self.max_detections
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
