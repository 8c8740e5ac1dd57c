"""Anchor grids of the reference RPN (mmdet ``AnchorGenerator``), docs/reference-behaviour.md a.4.

Differences from torchvision's ``AnchorGenerator`` (docs/checkpoint-keys.md item 4), each with an
option whose default is the reference:

* base anchors are **not rounded** (stride 4, ratio 0.5 -> +-22.627 x +-11.314; torchvision
  rounds to +-23 x +-11) -- ``rounded=False``;
* the stride of each level is **fixed** (4, 8, 16, 32, 64) instead of being derived as
  ``padded_size // feature_size`` (which gives 60 for P6 of a 608-high input).

Shared with torchvision: base size = stride x scale 8, ratios (0.5, 1, 2) in that order with
``h = sqrt(r)``, ``w = 1 / sqrt(r)``, centre at ``(x * stride, y * stride)`` (offset 0), and
location-major / anchor-minor flattening, so channel ``a`` of the RPN head at location
``(y, x)`` is anchor ``(y * W + x) * A + a``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

DEFAULT_STRIDES: tuple[int, ...] = (4, 8, 16, 32, 64)
DEFAULT_SCALES: tuple[float, ...] = (8.0,)
DEFAULT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)


def base_anchors(
    base_size: float,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    rounded: bool = False,
) -> Tensor:
    """Anchors centred at the origin, ratio-major then scale.

    Args:
        base_size: the level's stride.
        scales: anchor side = ``base_size * scale`` (for ratio 1).
        ratios: height / width ratios.
        rounded: round the corners to integers as torchvision does (not the reference).

    Returns:
        (len(ratios) * len(scales), 4) float32 xyxy anchors.
    """
    ratio_t = torch.as_tensor(ratios, dtype=torch.float32)
    scale_t = torch.as_tensor(scales, dtype=torch.float32)
    h_ratios = torch.sqrt(ratio_t)
    w_ratios = 1.0 / h_ratios
    widths = (base_size * w_ratios[:, None] * scale_t[None, :]).reshape(-1)
    heights = (base_size * h_ratios[:, None] * scale_t[None, :]).reshape(-1)
    anchors = torch.stack([-0.5 * widths, -0.5 * heights, 0.5 * widths, 0.5 * heights], dim=1)
    return anchors.round() if rounded else anchors


def grid_anchors(base: Tensor, feature_size: tuple[int, int], stride: float) -> Tensor:
    """Shift ``base`` (A, 4) over an (H, W) grid; returns (H * W * A, 4), location-major."""
    height, width = feature_size
    shifts_x = torch.arange(width, dtype=base.dtype, device=base.device) * stride
    shifts_y = torch.arange(height, dtype=base.dtype, device=base.device) * stride
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=-1).reshape(-1, 1, 4)
    return (shifts + base[None]).reshape(-1, 4)


def valid_anchor_mask(
    feature_size: tuple[int, int], stride: float, pad_size: tuple[int, int], num_base: int
) -> Tensor:
    """mmdet ``valid_flags``: anchors on locations inside one image's own padded area.

    In a batch padded to the largest image, locations beyond ``ceil(pad / stride)`` belong to
    another image's padding and are excluded from RPN targets (shape (H * W * A,), bool).
    """
    height, width = feature_size
    valid_h = min(math.ceil(pad_size[0] / stride), height)
    valid_w = min(math.ceil(pad_size[1] / stride), width)
    valid_y = torch.arange(height) < valid_h
    valid_x = torch.arange(width) < valid_w
    mask = valid_y[:, None] & valid_x[None, :]
    return mask.reshape(-1, 1).expand(-1, num_base).reshape(-1)


class AnchorGenerator(nn.Module):
    """Per-level anchors for FPN feature maps with fixed strides.

    Args:
        strides: stride of each level (P2..P6), also the base size.
        scales: anchor scales (one per level in the reference: 8).
        ratios: height/width ratios, in channel order of the RPN head.
        rounded: round base anchors (torchvision behaviour; reference ``False``).
    """

    def __init__(
        self,
        *,
        strides: Sequence[int] = DEFAULT_STRIDES,
        scales: Sequence[float] = DEFAULT_SCALES,
        ratios: Sequence[float] = DEFAULT_RATIOS,
        rounded: bool = False,
    ) -> None:
        super().__init__()
        self.strides = tuple(int(s) for s in strides)
        self.scales = tuple(float(s) for s in scales)
        self.ratios = tuple(float(r) for r in ratios)
        self.rounded = rounded
        self._base = [
            base_anchors(s, scales=self.scales, ratios=self.ratios, rounded=rounded)
            for s in self.strides
        ]

    @property
    def num_anchors_per_location(self) -> int:
        """Anchors per feature location (A = ratios x scales)."""
        return len(self.scales) * len(self.ratios)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Anchors of each level.

        Args:
            features: per level a (B, C, H_l, W_l) map; only its size, dtype and device are used.

        Returns:
            Per level a (H_l * W_l * A, 4) xyxy tensor in network-input pixels (shared by all
            images of the batch).
        """
        if len(features) != len(self.strides):
            raise ValueError(f"{len(features)} feature maps for {len(self.strides)} strides")
        # The sizes stay un-cast so that an ONNX trace keeps them dynamic (``qdtrack export``).
        return [
            grid_anchors(
                base.to(device=feat.device, dtype=feat.dtype),
                (feat.shape[-2], feat.shape[-1]),
                stride,
            )
            for base, feat, stride in zip(self._base, features, self.strides, strict=True)
        ]
