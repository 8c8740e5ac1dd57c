"""Static INT8 quantisation of the exported ONNX graph (ONNX Runtime, for CPU serving).

Weights are quantised per output channel to int8 and activations to uint8 (QDQ format,
the form ONNX Runtime fuses into integer convolutions and matrix products; with AVX-512
VNNI or AVX-VNNI they run on the integer dot-product units). Activation ranges are
measured on frames of the training data, resized exactly as a client resizes them. Only
convolutions and matrix products are quantised: box decoding, NMS and RoI pooling stay in
float32, so box coordinates keep their precision. The batched graph is quantised in its
two traced parts (ONNX Runtime's quantiser does not enter the ``Loop`` that runs the
per-image head): the trunk on the calibration frames, the head on the float trunk's outputs
for them; the quantised parts are joined as the float ones were.

Whether the result is good enough is not assumed: :mod:`qdtrack.export.int8_gate` tracks
the validation sequences with both models and compares HOTA and IDF1.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnx

from qdtrack.config import DatasetSource
from qdtrack.data.sources import load_source
from qdtrack.export.batched import IMAGE_HW, compose_batched, save_checked
from qdtrack.export.contract import INPUT_IMAGE
from qdtrack.export.runtime import prepare_frame

#: Operators quantised (the arithmetic); everything else stays float32.
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
#: Nodes kept in float32 (name fragments): the RPN's 1x1 objectness and box-delta
#: convolutions. They are cheap, their outputs rank and place every proposal, and in the
#: batched graph their outputs enter the per-image loop, where ONNX Runtime's QDQ clean-up
#: must not move quantisation nodes.
FLOAT_NODES = ("/rpn/head/cls_logits", "/rpn/head/bbox_pred")


class CalibrationError(ValueError):
    """No usable calibration frames (missing or empty training sources)."""


def spread(items: Sequence[Path], count: int) -> list[Path]:
    """``count`` items evenly spaced over ``items`` (all of them when there are fewer)."""
    if count >= len(items):
        return list(items)
    positions = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[int(i)] for i in positions]


def calibration_images(
    sources: Sequence[DatasetSource], class_names: Sequence[str], count: int
) -> list[Path]:
    """Paths of ``count`` training frames spread evenly over every frame of ``sources``.

    Raises:
        CalibrationError: no sources, a source that cannot be loaded, or no frames.
    """
    if not sources:
        raise CalibrationError("INT8 calibration needs training frames: train.sources is empty")
    paths: list[Path] = []
    for source in sources:
        try:
            loaded = load_source(source, class_names)
        except (FileNotFoundError, ValueError) as exc:
            message = f"INT8 calibration: training source {source.path}: {exc}"
            raise CalibrationError(message) from exc
        paths.extend(frame.image_path for video in loaded.videos for frame in video.frames)
    if not paths:
        raise CalibrationError("INT8 calibration: the training sources hold no frames")
    return spread(paths, count)


def read_bgr(path: Path) -> npt.NDArray[np.uint8]:
    """One image as OpenCV's uint8 BGR array (``CalibrationError`` if unreadable)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CalibrationError(f"INT8 calibration: cannot read image {path}")
    return np.asarray(image, dtype=np.uint8)


class FrameReader:
    """ONNX Runtime's calibration data reader over resized frames, one request each.

    Args:
        paths: image files.
        img_scale: the model's resize limits.
        batched: the graph takes a leading batch axis (a batch of one is sent).
    """

    def __init__(self, paths: Sequence[Path], img_scale: tuple[int, int], batched: bool) -> None:
        self._paths = list(paths)
        self._img_scale = img_scale
        self._batched = batched
        self._iterator: Iterator[dict[str, npt.NDArray[np.uint8]]] = self._feeds()

    def _feeds(self) -> Iterator[dict[str, npt.NDArray[np.uint8]]]:
        for path in self._paths:
            image, _ = prepare_frame(read_bgr(path), self._img_scale)
            yield {INPUT_IMAGE.name: image[None] if self._batched else image}

    def get_next(self) -> dict[str, npt.NDArray[np.uint8]] | None:
        """The next input feed, ``None`` at the end (ONNX Runtime's reader protocol)."""
        return next(self._iterator, None)

    def rewind(self) -> None:
        """Start again from the first frame."""
        self._iterator = self._feeds()


def quantize_int8(
    float_path: str | Path,
    int8_path: str | Path,
    frames: Sequence[Path],
    *,
    img_scale: tuple[int, int],
    batched: bool,
    parts: Path | None = None,
) -> None:
    """Write the static INT8 (QDQ) version of ``float_path`` to ``int8_path``.

    Args:
        float_path: the exported float32 graph.
        int8_path: where to write the quantised graph.
        frames: calibration images (training frames), read with OpenCV.
        img_scale: the model's resize limits.
        batched: ``float_path`` is the batched graph.
        parts: the batched graph's two traces (``export_batched_onnx(parts=...)``): each
            is quantised on its own, the head on the float trunk's outputs for the
            calibration frames, and the two are joined again; without them the per-image
            head stays float32 (ONNX Runtime's quantiser does not enter the loop).
    """
    if batched and parts is not None:
        _quantize_parts(Path(float_path), Path(int8_path), frames, img_scale, parts)
    else:
        _quantize_file(Path(float_path), Path(int8_path), FrameReader(frames, img_scale, batched))


def _quantize_file(float_path: Path, int8_path: Path, reader: Any) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):  # ORT checks the base class
        def get_next(self) -> dict[str, npt.NDArray[Any]] | None:
            return reader.get_next()

    with tempfile.TemporaryDirectory(prefix="qdtrack-int8-") as folder:
        # ONNX Runtime's graph clean-up first: the quantiser needs every weight and bias as
        # an initializer (the trace shares the RPN head's across levels through Identity
        # nodes). Symbolic shape inference stops at the data-dependent NMS, so it is off.
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8_path),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=float_nodes(prepared),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


class HeadReader:
    """Calibration feeds of the batched graph's head: the float trunk's outputs per frame."""

    def __init__(
        self, trunk: Path, head: Path, paths: Sequence[Path], img_scale: tuple[int, int]
    ) -> None:
        import onnxruntime as ort

        self._trunk = ort.InferenceSession(str(trunk), providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in onnx.load(str(head)).graph.input]
        self._frames = FrameReader(paths, img_scale, batched=True)

    def get_next(self) -> dict[str, npt.NDArray[Any]] | None:
        """The head's inputs for the next frame, ``None`` at the end."""
        feed = self._frames.get_next()
        if feed is None:
            return None
        images = feed[INPUT_IMAGE.name]
        names = [o.name for o in self._trunk.get_outputs()]
        values = dict(zip(names, self._trunk.run(names, feed), strict=True))
        values[IMAGE_HW] = np.asarray(images.shape[1:3], dtype=np.int64)
        return {name: values[name] for name in self._inputs}


def _quantize_parts(
    float_path: Path,
    int8_path: Path,
    frames: Sequence[Path],
    img_scale: tuple[int, int],
    parts: Path,
) -> None:
    trunk, head = parts / "trunk.onnx", parts / "head.onnx"
    _quantize_file(trunk, parts / "trunk.int8.onnx", FrameReader(frames, img_scale, True))
    _quantize_file(head, parts / "head.int8.onnx", HeadReader(trunk, head, frames, img_scale))
    graph = compose_batched(
        onnx.load(str(parts / "trunk.int8.onnx")), onnx.load(str(parts / "head.int8.onnx"))
    )
    graph.graph.ClearField("output")  # the float graph's, with the contract's shapes
    graph.graph.output.extend(onnx.load(str(float_path)).graph.output)
    save_checked(graph, int8_path)


def float_nodes(path: Path) -> list[str]:
    """Names of the nodes of :data:`FLOAT_NODES` in the graph at ``path``."""
    graph = onnx.load(str(path)).graph
    return [node.name for node in graph.node if any(f in node.name for f in FLOAT_NODES)]
