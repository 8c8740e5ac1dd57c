"""Paired training augmentation of a key and a reference image (docs/reference-behaviour.md a.7).

The reference train pipeline (mmtracking ``qdtrack_faster-rcnn_r50_fpn_4e_mot17-private-half``)
runs on both frames of a pair, in this order::

    SeqResize(img_scale=(S, S), ratio_range=(0.8, 1.2), keep_ratio=True,
              bbox_clip_border=False, share_params=True)
    SeqPhotoMetricDistortion(share_params=True)
    SeqRandomCrop(crop_size=(S, S), share_params=False, bbox_clip_border=False)
    SeqRandomFlip(flip_ratio=0.5, share_params=True)

with ``S = 1088`` (smaller for CPU configurations). The TAO / LVIS configurations instead
use a shared multi-scale keep-ratio resize and a shared flip, without photometric distortion
or crop (:func:`augment_pair_multiscale`). Normalisation and padding come later, in
:func:`qdtrack.model.preprocess.batch_images`.

Every random choice is drawn from a ``numpy.random.Generator`` passed in, so the same seed
gives the same pair. Images are (H, W, 3) float32 BGR on the 0-255 scale; boxes are (N, 4)
float32 ``(x1, y1, x2, y2)``. No function modifies its inputs. Boxes are never clipped and
never dropped (``bbox_clip_border=False``), so the rows of the output boxes stay aligned with
the input rows (and with instance ids / labels kept elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

from qdtrack.model.preprocess import rescale_size
from qdtrack.structures import FloatArray

#: ``SeqResize(ratio_range=...)``: r ~ U[0.8, 1.2), target long side int(S * r).
RESIZE_RATIO_RANGE: tuple[float, float] = (0.8, 1.2)
#: ``SeqRandomFlip(flip_ratio=0.5)``.
FLIP_RATIO = 0.5
#: mmtracking TAO / LVIS train resize: ``img_scale=[(1333, 640), (1333, 672), ...,
#: (1333, 800)], multiscale_mode='value', keep_ratio=True`` (one scale drawn uniformly).
LVIS_SCALES: tuple[tuple[int, int], ...] = tuple((1333, short) for short in range(640, 801, 32))
# mmdet ``PhotoMetricDistortion`` defaults.
BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE: tuple[float, float] = (0.5, 1.5)
SATURATION_RANGE: tuple[float, float] = (0.5, 1.5)
HUE_DELTA = 18.0
# OpenCV's float HSV has hue in degrees.
_HUE_PERIOD = 360.0


class ImageBoxes(NamedTuple):
    """One image and its gt boxes.

    Attributes:
        image: (H, W, 3) float32 BGR image, 0-255 scale.
        boxes_xyxy: (N, 4) float32 ``(x1, y1, x2, y2)`` boxes in pixels of ``image``.
    """

    image: FloatArray
    boxes_xyxy: FloatArray


@dataclass(frozen=True)
class PhotometricParams:
    """The random choices of one photometric distortion (``None`` = step not applied).

    Attributes:
        brightness: added to every pixel.
        contrast_first: apply the contrast factor before the HSV steps (else after them).
        contrast: every pixel is multiplied by it.
        saturation: the HSV saturation is multiplied by it.
        hue: degrees added to the HSV hue (wrapped to [0, 360]).
        channel_permutation: the B, G, R channels are reordered by it (mmdet's last step).
    """

    brightness: float | None = None
    contrast_first: bool = False
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    channel_permutation: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class AugmentedPair:
    """A key / reference pair after :func:`augment_pair`.

    Attributes:
        key: the augmented key image and its boxes (rows aligned with the input boxes).
        ref: the augmented reference image and its boxes.
        scale_factor: (4,) float32 ``(w_new/w, h_new/h, w_new/w, h_new/h)`` of the key resize
            (the reference uses the same target scale; for frames of equal size the factors
            are equal).
        ref_scale_factor: (4,) float32 resize factors of the reference frame.
        key_crop_offset: ``(top, left)`` of the key crop in the resized image.
        ref_crop_offset: ``(top, left)`` of the reference crop in the resized image.
        flipped: both frames were mirrored horizontally.
    """

    key: ImageBoxes
    ref: ImageBoxes
    scale_factor: FloatArray
    ref_scale_factor: FloatArray
    key_crop_offset: tuple[int, int]
    ref_crop_offset: tuple[int, int]
    flipped: bool


def _check(frame: ImageBoxes) -> None:
    image, boxes = frame
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"expected (N, 4) boxes, got shape {boxes.shape}")


# --------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------


def sample_resize_scale(
    rng: np.random.Generator,
    img_scale: int,
    ratio_range: tuple[float, float] = RESIZE_RATIO_RANGE,
) -> int:
    """Target long side ``int(img_scale * r)`` with ``r ~ U[low, high)``.

    mmdet ``Resize.random_sample_ratio`` draws one ratio and scales both entries of
    ``img_scale = (S, S)``; with keep_ratio the square target means "long side = int(S r)".
    """
    low, high = ratio_range
    if not 0 < low <= high:
        raise ValueError(f"ratio_range must satisfy 0 < low <= high, got {ratio_range}")
    ratio = rng.random() * (high - low) + low
    return int(img_scale * ratio)


def resize_to_scale(
    frame: ImageBoxes, img_scale: tuple[int, int], *, as_uint8: bool = False
) -> tuple[ImageBoxes, FloatArray]:
    """Keep-ratio resize to ``img_scale = (long, short)`` edge limits (mmcv ``imrescale``).

    The factor is ``s = min(long / long_side, short / short_side)`` and each side becomes
    ``int(side * s + 0.5)``; the image is resized with cv2 bilinear and the boxes are
    multiplied by the per-axis factors, not clipped.

    Args:
        frame: the image (float32, 0-255) and its boxes.
        img_scale: the ``(long, short)`` edge limits; the order does not matter.
        as_uint8: resize the image as uint8 (a pipeline that loads images without
            ``to_float32``) and return it as float32 again; the input must hold integers in
            0-255, as images read from disk do.

    Returns:
        The resized frame and the (4,) float32 scale factor ``(sx, sy, sx, sy)``.
    """
    _check(frame)
    height, width = frame.image.shape[:2]
    new_w, new_h, _ = rescale_size(width, height, img_scale)
    source = frame.image.astype(np.uint8) if as_uint8 else frame.image
    image = cv2.resize(source, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    w_scale, h_scale = new_w / width, new_h / height
    factor = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
    boxes = (frame.boxes_xyxy * factor).astype(np.float32, copy=False)
    return ImageBoxes(image.astype(np.float32, copy=False), boxes), factor


def resize_keep_ratio(frame: ImageBoxes, scale: int) -> tuple[ImageBoxes, FloatArray]:
    """Resize so that the long side becomes ``scale`` (mmcv ``imrescale`` rule).

    The new size is ``int(side * s + 0.5)`` with ``s = scale / long_side``; the image is
    resized with cv2 bilinear in float32 and the boxes are multiplied by the per-axis factors,
    not clipped.

    Returns:
        The resized frame and the (4,) float32 scale factor ``(sx, sy, sx, sy)``.
    """
    return resize_to_scale(frame, (scale, scale))


def seq_resize(
    frames: Sequence[ImageBoxes],
    rng: np.random.Generator,
    *,
    img_scale: int,
    ratio_range: tuple[float, float] = RESIZE_RATIO_RANGE,
) -> tuple[list[ImageBoxes], list[FloatArray]]:
    """``SeqResize(share_params=True)``: one random target scale for all frames.

    Args:
        frames: the frames of the pair.
        rng: random source (one ratio is drawn).
        img_scale: the configured long side ``S`` (1088 in the reference).
        ratio_range: ``r ~ U[low, high)``; the long side becomes ``int(S * r)``.

    Returns:
        The resized frames and their (4,) scale factors.
    """
    scale = sample_resize_scale(rng, img_scale, ratio_range)
    resized = [resize_keep_ratio(frame, scale) for frame in frames]
    return [frame for frame, _ in resized], [factor for _, factor in resized]


# --------------------------------------------------------------------------------------
# Photometric distortion
# --------------------------------------------------------------------------------------


def sample_photometric_params(
    rng: np.random.Generator,
    *,
    brightness_delta: float = BRIGHTNESS_DELTA,
    contrast_range: tuple[float, float] = CONTRAST_RANGE,
    saturation_range: tuple[float, float] = SATURATION_RANGE,
    hue_delta: float = HUE_DELTA,
) -> PhotometricParams:
    """Draw the parameters as mmtracking's ``SeqPhotoMetricDistortion.get_params`` does.

    Each step is applied with probability 0.5; the draw order (brightness, contrast position,
    contrast, saturation, hue, channel swap) follows the reference.
    """
    brightness = (
        float(rng.uniform(-brightness_delta, brightness_delta)) if rng.integers(2) else None
    )
    contrast_first = bool(rng.integers(2))
    contrast = float(rng.uniform(*contrast_range)) if rng.integers(2) else None
    saturation = float(rng.uniform(*saturation_range)) if rng.integers(2) else None
    hue = float(rng.uniform(-hue_delta, hue_delta)) if rng.integers(2) else None
    permutation = None
    if rng.integers(2):
        a, b, c = (int(v) for v in rng.permutation(3))
        permutation = (a, b, c)
    return PhotometricParams(
        brightness=brightness,
        contrast_first=contrast_first,
        contrast=contrast,
        saturation=saturation,
        hue=hue,
        channel_permutation=permutation,
    )


def photometric_distortion(
    image: npt.NDArray[np.float32], params: PhotometricParams
) -> npt.NDArray[np.float32]:
    """mmdet ``PhotoMetricDistortion`` with fixed parameters (no clipping, as mmdet).

    Steps: brightness; contrast (if ``contrast_first``); BGR -> HSV (OpenCV float: hue in
    degrees); saturation; hue (wrapped into [0, 360]); HSV -> BGR; contrast (otherwise);
    channel swap.

    Args:
        image: (H, W, 3) float32 BGR image, 0-255 scale.
        params: the random choices, shared by both frames of a pair.

    Returns:
        A new (H, W, 3) float32 image.
    """
    if image.dtype != np.float32:
        raise ValueError(f"photometric_distortion needs a float32 image, got {image.dtype}")
    img = image.copy()
    if params.brightness is not None:
        img += np.float32(params.brightness)
    if params.contrast_first and params.contrast is not None:
        img *= np.float32(params.contrast)
    # mmdet always round-trips through HSV, even when neither saturation nor hue changes;
    # OpenCV's float conversion is not an exact identity (e.g. V = 0 with negative channels
    # after a brightness shift), so neither do we skip it.
    hsv: FloatArray = np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2HSV), dtype=np.float32)
    if params.saturation is not None:
        hsv[..., 1] *= np.float32(params.saturation)
    if params.hue is not None:
        hue = hsv[..., 0]
        hue += np.float32(params.hue)
        hue[hue > _HUE_PERIOD] -= _HUE_PERIOD
        hue[hue < 0] += _HUE_PERIOD
    img = np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), dtype=np.float32)
    if not params.contrast_first and params.contrast is not None:
        img *= np.float32(params.contrast)
    if params.channel_permutation is not None:
        img = np.ascontiguousarray(img[..., list(params.channel_permutation)])
    return img.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------
# Crop and flip
# --------------------------------------------------------------------------------------


def sample_crop_offset(
    rng: np.random.Generator, image_shape: tuple[int, ...], crop_size: tuple[int, int]
) -> tuple[int, int]:
    """``(top, left)`` drawn uniformly in ``[0, max(side - crop, 0)]`` per axis (mmtracking)."""
    margin_h = max(int(image_shape[0]) - crop_size[0], 0)
    margin_w = max(int(image_shape[1]) - crop_size[1], 0)
    top = int(rng.integers(0, margin_h + 1))
    left = int(rng.integers(0, margin_w + 1))
    return top, left


def crop(frame: ImageBoxes, offset: tuple[int, int], crop_size: tuple[int, int]) -> ImageBoxes:
    """Cut ``crop_size = (h, w)`` at ``offset = (top, left)``; boxes translated, not clipped.

    A side shorter than the crop is kept whole (numpy slicing), as in mmtracking.
    """
    _check(frame)
    top, left = offset
    image = frame.image[top : top + crop_size[0], left : left + crop_size[1]].copy()
    shift = np.array([left, top, left, top], dtype=np.float32)
    return ImageBoxes(image, (frame.boxes_xyxy - shift).astype(np.float32, copy=False))


def random_crop(
    frame: ImageBoxes, rng: np.random.Generator, *, crop_size: tuple[int, int]
) -> tuple[ImageBoxes, tuple[int, int]]:
    """``SeqRandomCrop`` for one frame (the pair uses independent offsets per frame).

    Returns:
        The cropped frame and its ``(top, left)`` offset.
    """
    offset = sample_crop_offset(rng, frame.image.shape, crop_size)
    return crop(frame, offset, crop_size), offset


def boxes_in_image(boxes_xyxy: FloatArray, height: int, width: int) -> npt.NDArray[np.bool_]:
    """(N,) mask of boxes with a positive-area intersection with the ``height x width`` image."""
    inter_w = np.minimum(boxes_xyxy[:, 2], width) - np.maximum(boxes_xyxy[:, 0], 0)
    inter_h = np.minimum(boxes_xyxy[:, 3], height) - np.maximum(boxes_xyxy[:, 1], 0)
    return np.asarray((inter_w > 0) & (inter_h > 0))


def flip_horizontal(frame: ImageBoxes) -> ImageBoxes:
    """Mirror the image and the boxes as mmdet ``bbox_flip``: ``x1' = w - x2, x2' = w - x1``."""
    _check(frame)
    width = frame.image.shape[1]
    image = np.ascontiguousarray(frame.image[:, ::-1])
    boxes = frame.boxes_xyxy.copy()
    boxes[:, 0] = width - frame.boxes_xyxy[:, 2]
    boxes[:, 2] = width - frame.boxes_xyxy[:, 0]
    return ImageBoxes(image, boxes)


def random_flip(
    frames: Sequence[ImageBoxes], rng: np.random.Generator, *, flip_ratio: float = FLIP_RATIO
) -> tuple[list[ImageBoxes], bool]:
    """``SeqRandomFlip(share_params=True)``: flip all frames or none.

    Returns:
        The (possibly) flipped frames and whether they were flipped.
    """
    if not 0.0 <= flip_ratio <= 1.0:
        raise ValueError(f"flip_ratio must be in [0, 1], got {flip_ratio}")
    flip = bool(rng.random() < flip_ratio)
    if not flip:
        return list(frames), False
    return [flip_horizontal(frame) for frame in frames], True


# --------------------------------------------------------------------------------------
# The whole pipeline
# --------------------------------------------------------------------------------------


def augment_pair(
    key: ImageBoxes,
    ref: ImageBoxes,
    rng: np.random.Generator,
    *,
    img_scale: int,
    ratio_range: tuple[float, float] = RESIZE_RATIO_RANGE,
    flip_ratio: float = FLIP_RATIO,
    require_gt_in_crop: bool = False,
) -> AugmentedPair | None:
    """The reference train augmentation of a key / reference pair (reference a.7 steps 2-5).

    Order: shared random resize, shared photometric distortion, independent random crops of
    ``(img_scale, img_scale)``, shared horizontal flip. Random draws happen in that order.

    Args:
        key: the key frame (float32 BGR image and (N, 4) xyxy boxes).
        ref: the reference frame.
        rng: random source; the same seed gives the same pair.
        img_scale: ``S``: the resize base long side and the crop size (1088 in the reference).
        ratio_range: random resize ratio range.
        flip_ratio: probability of flipping both frames.
        require_gt_in_crop: opt-in stricter rule. By default (the reference, with
            ``bbox_clip_border=False``) every translated box stays valid, so a pair is
            rejected only when a frame has no gt box at all; when ``True`` a pair is also
            rejected when no box of a frame intersects its crop. Boxes are never dropped.

    Returns:
        The augmented pair, or ``None`` when it is rejected (the dataset then draws another).
    """
    _check(key)
    _check(ref)
    if img_scale <= 0:
        raise ValueError(f"img_scale must be positive, got {img_scale}")
    # mmtracking SeqRandomCrop returns None when a frame has no (valid) gt box.
    if len(key.boxes_xyxy) == 0 or len(ref.boxes_xyxy) == 0:
        return None
    (key_r, ref_r), (key_factor, ref_factor) = seq_resize(
        [key, ref], rng, img_scale=img_scale, ratio_range=ratio_range
    )
    params = sample_photometric_params(rng)
    key_p = ImageBoxes(photometric_distortion(key_r.image, params), key_r.boxes_xyxy)
    ref_p = ImageBoxes(photometric_distortion(ref_r.image, params), ref_r.boxes_xyxy)
    crop_size = (img_scale, img_scale)
    key_c, key_offset = random_crop(key_p, rng, crop_size=crop_size)
    ref_c, ref_offset = random_crop(ref_p, rng, crop_size=crop_size)
    if require_gt_in_crop:
        for frame in (key_c, ref_c):
            height, width = frame.image.shape[:2]
            if not boxes_in_image(frame.boxes_xyxy, height, width).any():
                return None
    (key_f, ref_f), flipped = random_flip([key_c, ref_c], rng, flip_ratio=flip_ratio)
    return AugmentedPair(
        key=key_f,
        ref=ref_f,
        scale_factor=key_factor,
        ref_scale_factor=ref_factor,
        key_crop_offset=key_offset,
        ref_crop_offset=ref_offset,
        flipped=flipped,
    )


def augment_pair_multiscale(
    key: ImageBoxes,
    ref: ImageBoxes,
    rng: np.random.Generator,
    *,
    scales: Sequence[tuple[int, int]] = LVIS_SCALES,
    flip_ratio: float = FLIP_RATIO,
) -> AugmentedPair | None:
    """The mmtracking TAO / LVIS train augmentation of a key / reference pair.

    ``SeqResize(img_scale=scales, multiscale_mode='value', keep_ratio=True,
    share_params=True)`` then ``SeqRandomFlip(flip_ratio, share_params=True)``: one
    ``(long, short)`` scale is drawn uniformly from ``scales`` and both frames are resized
    to it with the keep-ratio rule (:func:`resize_to_scale`), then both or neither are
    mirrored. No photometric distortion and no crop. The reference loads these images as
    uint8 (``LoadMultiImagesFromFile`` without ``to_float32``), so the resize runs on uint8.
    Random draws: the scale index, then the flip.

    Args:
        key: the key frame (float32 BGR image with integer values, (N, 4) xyxy boxes).
        ref: the reference frame.
        rng: random source; the same seed gives the same pair.
        scales: the ``(long, short)`` edge limits to draw from (:data:`LVIS_SCALES`).
        flip_ratio: probability of flipping both frames.

    Returns:
        The augmented pair (crop offsets ``(0, 0)``), or ``None`` when a frame has no gt
        box (the dataset then draws another, as for :func:`augment_pair`).
    """
    _check(key)
    _check(ref)
    if not scales or any(min(scale) <= 0 for scale in scales):
        raise ValueError(f"scales must be non-empty (long, short) pairs > 0, got {scales}")
    if len(key.boxes_xyxy) == 0 or len(ref.boxes_xyxy) == 0:
        return None
    scale = scales[int(rng.integers(len(scales)))]
    key_r, key_factor = resize_to_scale(key, scale, as_uint8=True)
    ref_r, ref_factor = resize_to_scale(ref, scale, as_uint8=True)
    (key_f, ref_f), flipped = random_flip([key_r, ref_r], rng, flip_ratio=flip_ratio)
    return AugmentedPair(
        key=key_f,
        ref=ref_f,
        scale_factor=key_factor,
        ref_scale_factor=ref_factor,
        key_crop_offset=(0, 0),
        ref_crop_offset=(0, 0),
        flipped=flipped,
    )
