"""Turning a request body into the resized uint8 BGR frame that Triton expects.

Formats: ``image/jpeg``, ``image/png``, or ``application/octet-stream`` raw pixels with
``X-Frame-Width`` / ``X-Frame-Height`` headers (``bgr24`` by default, ``rgb24`` on request).
The image size is read from the JPEG/PNG header **before** decoding, so a small
compressed body cannot expand into a huge frame (decompression bomb).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from qdtrack.resize import resize_frame
from serving.sidecar.errors import BadFrame, EmptyBody, PayloadTooLarge, UnsupportedMediaType

JPEG = "image/jpeg"
PNG = "image/png"
RAW = "application/octet-stream"
MEDIA_TYPES = (JPEG, PNG, RAW)
PIXEL_FORMATS = ("bgr24", "rgb24")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...); C4, C8 and CC are not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class RawShape:
    """Geometry of a raw-pixel body, from the request headers."""

    width: int | None
    height: int | None
    pixel_format: str = "bgr24"


@dataclass(frozen=True)
class Frame:
    """A decoded frame, resized for the network.

    Attributes:
        image: (h, w, 3) uint8 BGR, resized with the reference rule.
        scale_factor: (4,) float32 ``(w_new/w, h_new/h, w_new/w, h_new/h)``; boxes of the
            resized image divided by it are in original-frame pixels.
        original_size: ``(height, width)`` of the frame as sent.
    """

    image: npt.NDArray[np.uint8]
    scale_factor: npt.NDArray[np.float32]
    original_size: tuple[int, int]


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header; ``UnsupportedMediaType`` if not served."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    if bare not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; send one of {', '.join(MEDIA_TYPES)}"
        )
    return bare


def resize_for_model(image_bgr: npt.NDArray[np.uint8], img_scale: tuple[int, int]) -> Frame:
    """Resize a full frame with the reference rule (``qdtrack.resize.resize_frame``)."""
    height, width = image_bgr.shape[:2]
    resized, factor = resize_frame(image_bgr, img_scale)
    return Frame(np.ascontiguousarray(resized), factor, (height, width))


def png_size(body: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk."""
    if len(body) < 24 or not body.startswith(_PNG_SIGNATURE) or body[12:16] != b"IHDR":
        raise BadFrame("body is not a PNG image (bad signature or header)")
    width, height = struct.unpack(">II", body[16:24])
    return int(width), int(height)


def jpeg_size(body: bytes) -> tuple[int, int]:
    """``(width, height)`` from a JPEG's start-of-frame segment."""
    if not body.startswith(b"\xff\xd8"):
        raise BadFrame("body is not a JPEG image (no start-of-image marker)")
    pos = 2
    while pos + 4 <= len(body):
        if body[pos] != 0xFF:
            raise BadFrame("corrupt JPEG: expected a marker")
        marker = body[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        (length,) = struct.unpack(">H", body[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(body) or length < 7:
                break
            height, width = struct.unpack(">HH", body[pos + 5 : pos + 9])
            return int(width), int(height)
        if marker in (0xD9, 0xDA) or length < 2:  # end of image / scan before any frame
            break
        pos += 2 + length
    raise BadFrame("corrupt JPEG: no frame header")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Positive sides (any aspect ratio: 1xN frames are fine), at most ``max_pixels``."""
    if width <= 0 or height <= 0:
        raise BadFrame(f"image size must be positive, got {width}x{height}")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )


def declared_pixels(body: bytes, kind: str, raw: RawShape) -> int:
    """Pixel count the body declares (image header or raw headers); 0 when it cannot tell."""
    try:
        if kind == RAW:
            return (raw.width or 0) * (raw.height or 0)
        width, height = png_size(body) if kind == PNG else jpeg_size(body)
    except BadFrame:
        return 0  # decode_frame will say what is wrong
    return width * height


def decode_frame(body: bytes, kind: str, raw: RawShape, max_pixels: int) -> npt.NDArray[np.uint8]:
    """Decode a body of media type ``kind`` into an (H, W, 3) uint8 BGR frame.

    Raises:
        EmptyBody, BadFrame, PayloadTooLarge: with a message that names the problem.
    """
    if not body:
        raise EmptyBody("the request body is empty; send one encoded image or raw pixels")
    if kind == RAW:
        return _raw_pixels(body, raw, max_pixels)
    width, height = png_size(body) if kind == PNG else jpeg_size(body)
    _check_pixels(width, height, max_pixels)
    try:
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own text stays in the log, not in the answer
        raise BadFrame(f"cannot decode the body as {kind}") from exc
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise BadFrame(f"cannot decode the body as {kind}")
    # EXIF orientation may swap the sides; anything else means the header lied
    if image.shape[:2] not in ((height, width), (width, height)):
        raise BadFrame(
            f"the {kind} header says {width}x{height}, the image decodes to "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    return np.asarray(image, dtype=np.uint8)


def _raw_pixels(body: bytes, raw: RawShape, max_pixels: int) -> npt.NDArray[np.uint8]:
    if raw.width is None or raw.height is None:
        raise BadFrame("raw pixels need the X-Frame-Width and X-Frame-Height headers")
    if raw.pixel_format not in PIXEL_FORMATS:
        raise BadFrame(f"X-Pixel-Format must be one of {PIXEL_FORMATS}, got {raw.pixel_format!r}")
    _check_pixels(raw.width, raw.height, max_pixels)
    expected = raw.width * raw.height * 3
    if len(body) != expected:
        raise BadFrame(
            f"raw body has {len(body)} bytes; {raw.width}x{raw.height}x3 needs {expected}"
        )
    image = np.frombuffer(body, np.uint8).reshape(raw.height, raw.width, 3)
    return image[:, :, ::-1] if raw.pixel_format == "rgb24" else image
