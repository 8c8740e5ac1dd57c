"""Run the exported network with ONNX Runtime; the request/response helpers of the contract.

:func:`prepare_frame` (client side: resize, pack) and :func:`unpack_detections` (padded
outputs -> :class:`~qdtrack.structures.Detections` in original-frame pixels) are pure
functions, shared by :class:`OnnxDetector`, the PyTriton server and the sidecar's Triton
client. Together they reproduce :meth:`qdtrack.model.qdtrack.QDTrack.predict`. Nothing here
imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qdtrack.export.contract import (
    INPUT_IMAGE,
    METADATA_FILENAME,
    MODEL_NAME,
    ONNX_FILENAME,
    OUTPUT_BOXES,
    OUTPUT_EMBEDDINGS,
    OUTPUT_LABELS,
    OUTPUT_NUM_DETECTIONS,
    OUTPUT_SCORES,
    OUTPUTS,
)
from qdtrack.resize import resize_frame
from qdtrack.structures import Detections


def prepare_frame(
    frame_bgr: npt.NDArray[np.uint8], img_scale: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """The request for one frame: the resized (h, w, 3) uint8 BGR image and its scale factor.

    Args:
        frame_bgr: (H, W, 3) uint8 BGR frame as decoded by OpenCV.
        img_scale: the model's resize limits (``export.json`` ``img_scale``).

    Returns:
        ``(image, scale_factor)``: ``image`` is C-contiguous, ready for the ``image`` input;
        ``scale_factor`` (4,) float32 is kept by the client for :func:`unpack_detections`.
    """
    resized, scale_factor = resize_frame(np.asarray(frame_bgr, dtype=np.uint8), img_scale)
    return np.ascontiguousarray(resized), scale_factor


def unpack_detections(
    outputs: Mapping[str, npt.NDArray[Any]], scale_factor: npt.NDArray[np.float32]
) -> Detections:
    """Padded outputs of one frame -> its detections in original-frame pixels.

    Args:
        outputs: the five contract outputs by name (as ONNX Runtime or Triton return them;
            a leading batch axis of 1 is accepted).
        scale_factor: (4,) from :func:`prepare_frame`.

    Returns:
        The first ``num_detections`` rows, boxes divided by the scale factor (the division
        the reference applies before its final NMS).
    """
    count = int(np.asarray(outputs[OUTPUT_NUM_DETECTIONS.name]).reshape(-1)[0])
    boxes = np.asarray(outputs[OUTPUT_BOXES.name], dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(outputs[OUTPUT_SCORES.name], dtype=np.float32).reshape(-1)
    labels = np.asarray(outputs[OUTPUT_LABELS.name], dtype=np.int64).reshape(-1)
    embeddings = np.asarray(outputs[OUTPUT_EMBEDDINGS.name], dtype=np.float32)
    embeddings = embeddings.reshape(boxes.shape[0], -1)
    if not 0 <= count <= boxes.shape[0]:
        raise ValueError(f"num_detections {count} outside [0, {boxes.shape[0]}]")
    scale = np.asarray(scale_factor, dtype=np.float32).reshape(1, 4)
    return Detections(
        boxes_xyxy=boxes[:count] / scale,
        scores=scores[:count],
        labels=labels[:count],
        embeddings=embeddings[:count],
    )


def read_metadata(version_dir: str | Path) -> dict[str, Any]:
    """The ``export.json`` of a model version folder."""
    path = Path(version_dir) / METADATA_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no export record (not written by qdtrack export?)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def latest_version_dir(model_dir: str | Path) -> Path:
    """The highest-numbered version folder of a Triton model folder (Triton's default)."""
    versions = [p for p in Path(model_dir).iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"{model_dir}: no numbered version folder")
    return max(versions, key=lambda p: int(p.name))


class OnnxDetector:
    """The exported network under ONNX Runtime, with ``QDTrack.predict``'s interface.

    Either graph works: the single-frame one, or the batched one (``batched`` is then
    true, and :meth:`predict` runs consecutive frames of equal resized size as one batch).

    Args:
        model_path: the ``model.onnx`` file.
        img_scale: the model's resize limits (from ``export.json``).
        intra_op_threads: ONNX Runtime threads per operator (default: all CPU cores).
        providers: ONNX Runtime execution providers (default: CPU).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        img_scale: tuple[int, int],
        intra_op_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or os.cpu_count() or 1
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=list(providers)
        )
        self.img_scale = (int(img_scale[0]), int(img_scale[1]))
        self._output_names = [spec.name for spec in OUTPUTS]
        image_rank = len(self.session.get_inputs()[0].shape)
        #: The graph takes (N, h, w, 3) batches (the batched export).
        self.batched = image_rank == len(INPUT_IMAGE.dims) + 1

    @classmethod
    def from_repository(
        cls,
        repository: str | Path,
        *,
        model_name: str = MODEL_NAME,
        version: int | None = None,
        intra_op_threads: int | None = None,
    ) -> OnnxDetector:
        """Open ``<repository>/<model_name>/<version>/model.onnx`` (latest version if None)."""
        model_dir = Path(repository) / model_name
        version_dir = model_dir / str(version) if version is not None else None
        version_dir = version_dir or latest_version_dir(model_dir)
        metadata = read_metadata(version_dir)
        img_scale = metadata["img_scale"]
        return cls(
            version_dir / ONNX_FILENAME,
            img_scale=(int(img_scale[0]), int(img_scale[1])),
            intra_op_threads=intra_op_threads,
        )

    def infer(self, image: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[Any]]:
        """Raw contract outputs for one resized (h, w, 3) uint8 BGR image."""
        if self.batched:
            return self.infer_batch(image[None])[0]
        values = self.session.run(self._output_names, {INPUT_IMAGE.name: image})
        return dict(zip(self._output_names, values, strict=True))

    def infer_batch(self, images: npt.NDArray[np.uint8]) -> list[dict[str, npt.NDArray[Any]]]:
        """Raw outputs per image for (N, h, w, 3) equally sized images (batched graph)."""
        if not self.batched:
            return [self.infer(image) for image in images]
        values = self.session.run(self._output_names, {INPUT_IMAGE.name: images})
        return [
            {name: value[index] for name, value in zip(self._output_names, values, strict=True)}
            for index in range(images.shape[0])
        ]

    def predict(self, frames_bgr: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detections with embeddings for raw uint8 BGR frames.

        The single-frame graph runs one call per frame; the batched graph one call per run
        of consecutive frames with the same resized size.
        """
        requests = [prepare_frame(frame, self.img_scale) for frame in frames_bgr]
        results: list[Detections] = []
        start = 0
        while start < len(requests):
            stop = start + 1
            shape = requests[start][0].shape
            while self.batched and stop < len(requests) and requests[stop][0].shape == shape:
                stop += 1
            group = requests[start:stop]
            outputs = self.infer_batch(np.stack([image for image, _ in group]))
            scales = [scale for _, scale in group]
            results.extend(map(unpack_detections, outputs, scales))
            start = stop
        return results
