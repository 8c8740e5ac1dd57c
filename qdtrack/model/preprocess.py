"""Test-time resize, normalisation, padding and batching of video frames.

Reproduces the reference test pipeline (docs/reference-behaviour.md a.7;
docs/checkpoint-keys.md items 2-3):
``Resize(img_scale=(1088, 1088), keep_ratio=True)`` with cv2 bilinear on the uint8 BGR frame,
``Normalize(mean=(103.530, 116.280, 123.675), std=(1, 1, 1), to_rgb=False)`` and
``Pad(size_divisor=32)`` with zeros after normalisation. torchvision's ``GeneralizedRCNNTransform``
(RGB in [0, 1], ImageNet statistics, ``F.interpolate`` resize) is not used.

The training side (paired random resize / crop / flip) lives in the data package; it hands
already-resized float BGR images to :func:`batch_images`, which normalises, pads and batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor

# The resize needs no torch; it is re-exported here for the model-side callers.
from qdtrack.resize import DEFAULT_IMG_SCALE, rescale_size, resize_frame  # noqa: F401

#: Caffe-style per-channel mean in B, G, R order (reference a.7); std is 1 (0-255 scale kept).
BGR_MEAN: tuple[float, float, float] = (103.530, 116.280, 123.675)
BGR_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)
SIZE_DIVISOR = 32


@dataclass(frozen=True)
class Normalization:
    """How a 0-255 BGR image becomes the network input.

    Attributes:
        mean: per-channel mean, in the channel order of the output.
        std: per-channel std, same order.
        to_rgb: reverse the channels (BGR -> RGB) before normalising.
    """

    mean: tuple[float, float, float] = BGR_MEAN
    std: tuple[float, float, float] = BGR_STD
    to_rgb: bool = False


#: ``model.normalization`` values: ``caffe`` (the MOT17 reference, caffe-style backbones)
#: and ``pytorch`` (torchvision ImageNet weights; mmtracking's LVIS/TAO R-101 configs:
#: RGB, mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375)).
NORMALIZATIONS: dict[str, Normalization] = {
    "caffe": Normalization(),
    "pytorch": Normalization((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), True),
}


@dataclass(frozen=True)
class ImageBatch:
    """A padded batch of normalised images and the geometry needed to undo the resize.

    Attributes:
        tensor: (B, 3, H, W) float32, BGR, mean-subtracted, zero-padded bottom/right so that
            H and W are the largest per-image padded sizes (multiples of ``size_divisor``).
        image_sizes: per image, the resized unpadded ``(h, w)`` (mmdet ``img_shape``).
        pad_sizes: per image, ``(h, w)`` padded to ``size_divisor`` on its own (mmdet
            ``pad_shape``); anchors outside it are not used for RPN training targets.
        scale_factors: (B, 4) float32 ``(w_new/w, h_new/h, w_new/w, h_new/h)``; network-input
            boxes divided by it give original-frame boxes.
        original_sizes: per image, the frame's ``(h, w)`` before resizing.
    """

    tensor: Tensor
    image_sizes: list[tuple[int, int]]
    pad_sizes: list[tuple[int, int]]
    scale_factors: Tensor
    original_sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    def to(self, device: torch.device | str) -> ImageBatch:
        """The same batch with its tensors on ``device``."""
        return ImageBatch(
            self.tensor.to(device),
            self.image_sizes,
            self.pad_sizes,
            self.scale_factors.to(device),
            self.original_sizes,
        )


def normalize_image(
    image_bgr: Tensor,
    *,
    mean: Sequence[float] = BGR_MEAN,
    std: Sequence[float] = BGR_STD,
    to_rgb: bool = False,
) -> Tensor:
    """Subtract the per-channel mean and divide by std (B, G, R order unless ``to_rgb``).

    Args:
        image_bgr: (3, H, W) float or uint8 tensor on the 0-255 scale, BGR.
        mean: per-channel mean in the output's channel order.
        std: per-channel std.
        to_rgb: reverse the channels first.

    Returns:
        (3, H, W) float32 tensor.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got shape {tuple(image_bgr.shape)}")
    image = image_bgr.to(torch.float32)
    if to_rgb:
        image = image.flip(0)
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=image.device).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=image.device).view(3, 1, 1)
    return (image - mean_t) / std_t


def _round_up(value: int, divisor: int) -> int:
    return int(-(-value // divisor) * divisor)


def batch_images(
    images_bgr: Sequence[Tensor],
    *,
    scale_factors: Sequence[Sequence[float]] | Tensor | None = None,
    original_sizes: Sequence[tuple[int, int]] | None = None,
    mean: Sequence[float] = BGR_MEAN,
    std: Sequence[float] = BGR_STD,
    size_divisor: int = SIZE_DIVISOR,
    to_rgb: bool = False,
) -> ImageBatch:
    """Normalise already-resized images, pad them with zeros and stack them.

    This is the part shared by training (images resized by the paired augmentation) and
    testing (images resized by :func:`resize_frame`). Padding goes bottom/right and comes
    after normalisation, so padded pixels are 0 in the normalised space (mmdet ``Pad``).

    Args:
        images_bgr: per image a (3, h, w) tensor, BGR, 0-255 scale (uint8 or float).
        scale_factors: per image the 4 resize factors; identity when ``None``.
        original_sizes: per image the ``(h, w)`` before resizing; the resized size when
            ``None``.
        mean: per-channel mean (B, G, R).
        std: per-channel std.
        size_divisor: each side is padded up to a multiple of this.
        to_rgb: reverse the channels before normalising (``mean``/``std`` then R, G, B).

    Returns:
        The :class:`ImageBatch`.
    """
    if len(images_bgr) == 0:
        raise ValueError("batch_images needs at least one image")
    normalized = [normalize_image(img, mean=mean, std=std, to_rgb=to_rgb) for img in images_bgr]
    image_sizes = [(int(img.shape[1]), int(img.shape[2])) for img in normalized]
    pad_sizes = [(_round_up(h, size_divisor), _round_up(w, size_divisor)) for h, w in image_sizes]
    batch_h = max(h for h, _ in pad_sizes)
    batch_w = max(w for _, w in pad_sizes)
    tensor = torch.stack(
        [F.pad(img, (0, batch_w - img.shape[2], 0, batch_h - img.shape[1])) for img in normalized]
    )
    if scale_factors is None:
        factors = torch.ones(len(normalized), 4, dtype=torch.float32)
    else:
        factors = torch.as_tensor(scale_factors, dtype=torch.float32).reshape(-1, 4)
    if factors.shape[0] != len(normalized):
        raise ValueError(f"{factors.shape[0]} scale factors for {len(normalized)} images")
    originals = list(original_sizes) if original_sizes is not None else list(image_sizes)
    if len(originals) != len(normalized):
        raise ValueError(f"{len(originals)} original sizes for {len(normalized)} images")
    return ImageBatch(
        tensor=tensor,
        image_sizes=image_sizes,
        pad_sizes=pad_sizes,
        scale_factors=factors.to(tensor.device),
        original_sizes=[(int(h), int(w)) for h, w in originals],
    )


def preprocess_frames(
    frames_bgr: Sequence[npt.NDArray[np.uint8]],
    *,
    img_scale: tuple[int, int] = DEFAULT_IMG_SCALE,
    mean: Sequence[float] = BGR_MEAN,
    std: Sequence[float] = BGR_STD,
    size_divisor: int = SIZE_DIVISOR,
    to_rgb: bool = False,
) -> ImageBatch:
    """The reference test pipeline on raw frames: resize, normalise, pad, batch.

    Args:
        frames_bgr: per frame an (H, W, 3) uint8 BGR array.
        img_scale: resize limits ``(long, short)``; (1088, 1088) in the reference config, a
            smaller value such as (384, 384) for CPU runs.
        mean: per-channel mean (B, G, R).
        std: per-channel std.
        size_divisor: padding multiple.
        to_rgb: reverse the channels before normalising.

    Returns:
        The :class:`ImageBatch` ready for the detector.
    """
    images: list[Tensor] = []
    factors: list[npt.NDArray[np.float32]] = []
    originals: list[tuple[int, int]] = []
    for frame in frames_bgr:
        resized, factor = resize_frame(frame, img_scale)
        images.append(torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1))
        factors.append(factor)
        originals.append((int(frame.shape[0]), int(frame.shape[1])))
    return batch_images(
        images,
        scale_factors=torch.from_numpy(np.stack(factors)) if factors else None,
        original_sizes=originals,
        mean=mean,
        std=std,
        size_divisor=size_divisor,
        to_rgb=to_rgb,
    )
