"""ResNet + FPN backbone with torchvision module names and the reference's caffe strides.

The module is a plain torchvision ``BackboneWithFPN``
(``body.conv1 ... body.layer4``, ``fpn.inner_blocks.i.0``, ``fpn.layer_blocks.i.0``), so the
mmtracking weights load through the key map of docs/checkpoint-keys.md. Reference behaviour
(docs/reference-behaviour.md a.2-a.3), each a named option of :func:`build_backbone`:

* ``style="caffe"``: the stride 2 of the first Bottleneck of layer2/3/4 sits on the 1x1
  ``conv1``, not on the 3x3 ``conv2`` (torchvision's "pytorch" style).
* ``norm_eval=True``: BatchNorm statistics *and* affine parameters frozen
  (``FrozenBatchNorm2d``, eps 1e-5).
* ``frozen_stages=1``: stem and layer1 get no gradient.
* FPN with 256 channels, nearest upsampling to the lower level's size and
  P6 = ``max_pool2d(P5, kernel 1, stride 2)`` -- torchvision's FPN already does exactly this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

BackboneStyle = Literal["caffe", "pytorch"]

_RESNETS: dict[int, Callable[..., resnet.ResNet]] = {
    18: resnet.resnet18,
    34: resnet.resnet34,
    50: resnet.resnet50,
    101: resnet.resnet101,
}
#: Output strides of P2..P6 (the last one from the FPN's max-pool).
FPN_STRIDES: tuple[int, ...] = (4, 8, 16, 32, 64)
FPN_OUT_CHANNELS = 256


def apply_caffe_strides(body: resnet.ResNet) -> None:
    """Move the stride of layer2/3/4 block 0 from the 3x3 ``conv2`` to the 1x1 ``conv1``.

    mmdet ``style='caffe'`` (docs/checkpoint-keys.md item 1). Only a Bottleneck has a strided 1x1
    ``conv1``; BasicBlock (resnet18/34) has the stride on its 3x3 ``conv1`` in both styles,
    so this is a no-op for them. The downsample branch (1x1 conv, stride 2) is unchanged.
    """
    for layer in (body.layer2, body.layer3, body.layer4):
        block = layer[0]
        if isinstance(block, resnet.Bottleneck):
            block.conv1.stride = (2, 2)
            block.conv2.stride = (1, 1)


def freeze_stages(body: nn.Module, frozen_stages: int) -> None:
    """Turn off gradients of the stem (``frozen_stages >= 0``) and of layer1..layer{n}.

    mmdet semantics: -1 freezes nothing, 0 the stem (conv1 + bn1), 1 also layer1, etc.
    """
    if not -1 <= frozen_stages <= 4:
        raise ValueError(f"frozen_stages must be in [-1, 4], got {frozen_stages}")
    frozen: list[str] = []
    if frozen_stages >= 0:
        frozen += ["conv1", "bn1"]
    frozen += [f"layer{i}" for i in range(1, frozen_stages + 1)]
    for name in frozen:
        for parameter in getattr(body, name).parameters():
            parameter.requires_grad_(False)


def _load_resnet_weights(body: resnet.ResNet, weights_path: str) -> None:
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    body.fc = nn.Identity()
    body.load_state_dict(state, strict=True)


def build_backbone(
    depth: int = 50,
    *,
    style: BackboneStyle = "caffe",
    frozen_stages: int = 1,
    norm_eval: bool = True,
    out_channels: int = FPN_OUT_CHANNELS,
    weights_path: str | None = None,
) -> BackboneWithFPN:
    """Build the ResNet-FPN backbone of the QDTrack detector.

    Args:
        depth: ResNet depth, one of 18, 34, 50, 101 (the reference uses 50).
        style: ``"caffe"`` (reference) puts the stride of layer2/3/4 block 0 on the 1x1
            ``conv1``; ``"pytorch"`` is torchvision's placement on ``conv2``. Only affects
            Bottleneck ResNets (50/101).
        frozen_stages: stem + this many stages get no gradient (reference 1; -1 = none).
        norm_eval: ``True`` (reference) uses ``FrozenBatchNorm2d`` (fixed statistics and
            affine). ``False`` uses trainable ``nn.BatchNorm2d`` updated in train mode.
        out_channels: FPN channels (256 in the reference).
        weights_path: optional local torchvision-format ResNet state dict (``conv1.weight``,
            ``layer1.0...``; ``fc.*`` ignored) loaded before freezing. Nothing is downloaded.

    Returns:
        A ``BackboneWithFPN`` mapping a (B, 3, H, W) batch to an ordered dict
        ``{"0": P2, "1": P3, "2": P4, "3": P5, "pool": P6}`` of (B, out_channels, H/s, W/s)
        maps, strides 4, 8, 16, 32, 64.
    """
    if depth not in _RESNETS:
        raise ValueError(f"depth must be one of {sorted(_RESNETS)}, got {depth}")
    if style not in ("caffe", "pytorch"):
        raise ValueError(f"style must be 'caffe' or 'pytorch', got {style!r}")
    norm_layer: Callable[..., nn.Module] = FrozenBatchNorm2d if norm_eval else nn.BatchNorm2d
    body = _RESNETS[depth](weights=None, norm_layer=norm_layer)
    if style == "caffe":
        apply_caffe_strides(body)
    if weights_path is not None:
        _load_resnet_weights(body, weights_path)
    freeze_stages(body, frozen_stages)
    stage2_channels = body.inplanes // 8  # 64 for BasicBlock nets, 256 for Bottleneck nets
    return BackboneWithFPN(
        body,
        return_layers={f"layer{i}": str(i - 1) for i in range(1, 5)},
        in_channels_list=[stage2_channels * 2**i for i in range(4)],
        out_channels=out_channels,
        extra_blocks=LastLevelMaxPool(),
    )
