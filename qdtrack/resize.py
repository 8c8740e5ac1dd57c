"""The reference test-time resize of a uint8 BGR frame (numpy + OpenCV, no torch).

mmcv ``Resize(img_scale=(1088, 1088), keep_ratio=True)`` with cv2 bilinear on the uint8
frame (docs/reference-behaviour.md a.7; docs/checkpoint-keys.md items 2-3). The model's
preprocessing
(:mod:`qdtrack.model.preprocess`) and the clients of the exported network
(:mod:`qdtrack.export.runtime`, the serving sidecar) share it, so a frame sent to Triton is
resized exactly as :meth:`qdtrack.model.qdtrack.QDTrack.predict` resizes it; it lives outside
the model package so that those clients do not import torch.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: Reference test scale: the long side becomes 1088 (the short side 1088 is never binding).
DEFAULT_IMG_SCALE: tuple[int, int] = (1088, 1088)
#: A typical frame (1920x1080, MOT17): the size of the sample traced through the exported
#: graph, of the warm-up frame, and the size TensorRT engines are tuned for.
TYPICAL_FRAME_WH = (1920, 1080)
#: The smallest side in a TensorRT shape profile: the network's padding unit
#: (``qdtrack.model.preprocess.SIZE_DIVISOR``).
MIN_PROFILE_SIDE = 32


def rescale_size(
    width: int, height: int, img_scale: tuple[int, int] = DEFAULT_IMG_SCALE
) -> tuple[int, int, float]:
    """Output ``(new_w, new_h, s)`` of a keep-ratio resize (mmcv ``rescale_size``).

    ``s = min(max(img_scale) / long_side, min(img_scale) / short_side)`` and each side is
    ``int(side * s + 0.5)``, so the order of ``img_scale`` does not matter. A side is never
    rounded down to 0: a very elongated frame (say 400x1 at scale 0.5) keeps 1 pixel.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if min(img_scale) <= 0:
        raise ValueError(f"img_scale must be positive, got {img_scale}")
    long_edge, short_edge = max(img_scale), min(img_scale)
    scale = min(long_edge / max(height, width), short_edge / min(height, width))
    return max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5)), scale


def typical_input_hw(img_scale: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of a 1920x1080 frame after the reference resize to ``img_scale``."""
    width, height, _ = rescale_size(*TYPICAL_FRAME_WH, img_scale)
    return height, width


def resized_hw_range(
    img_scale: tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(min, typical, max) (h, w) of frames resized with ``img_scale``: a shape profile.

    The keep-ratio resize makes the long side at most ``max(img_scale)`` whatever the
    frame's orientation, so both h and w stay within ``max(img_scale)``; the short side can
    be small for very wide frames, bounded here by the network's padding unit. A TensorRT
    engine built for this range serves every frame the clients send without a rebuild.
    """
    long_side = max(img_scale)
    if min(img_scale) < MIN_PROFILE_SIDE:
        raise ValueError(f"img_scale {list(img_scale)}: sides below {MIN_PROFILE_SIDE}")
    return (
        (MIN_PROFILE_SIDE, MIN_PROFILE_SIDE),
        typical_input_hw(img_scale),
        (long_side, long_side),
    )


def resize_frame(
    frame_bgr: npt.NDArray[np.uint8], img_scale: tuple[int, int] = DEFAULT_IMG_SCALE
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Resize one uint8 BGR frame as the reference test pipeline does.

    Args:
        frame_bgr: (H, W, 3) uint8 BGR frame (as read by ``cv2.imread``).
        img_scale: ``(long, short)`` edge limits; the reference uses (1088, 1088).

    Returns:
        The resized (h, w, 3) uint8 frame (cv2 bilinear, still uint8 as in mmcv) and the
        (4,) float32 scale factor ``(w_new/w, h_new/h, w_new/w, h_new/h)``.
    """
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame_bgr.shape}")
    height, width = frame_bgr.shape[:2]
    new_w, new_h, _ = rescale_size(width, height, img_scale)
    resized: npt.NDArray[np.uint8] = np.asarray(
        cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8
    )
    w_scale, h_scale = new_w / width, new_h / height
    scale_factor = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
    return resized, scale_factor
