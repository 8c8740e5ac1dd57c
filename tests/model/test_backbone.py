"""ResNet-FPN backbone: caffe strides, freezing, torchvision names, FPN geometry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.ops.misc import FrozenBatchNorm2d

from qdtrack.model.backbone import build_backbone


def test_caffe_style_moves_stride_to_conv1_of_first_bottleneck() -> None:
    caffe = build_backbone(50, style="caffe")
    pytorch = build_backbone(50, style="pytorch")
    for name in ("layer2", "layer3", "layer4"):
        block_caffe = getattr(caffe.body, name)[0]
        block_pytorch = getattr(pytorch.body, name)[0]
        assert block_caffe.conv1.stride == (2, 2) and block_caffe.conv2.stride == (1, 1)
        assert block_pytorch.conv1.stride == (1, 1) and block_pytorch.conv2.stride == (2, 2)
        assert block_caffe.downsample[0].stride == (2, 2)
    # Same weights, different network: the outputs differ but have the same shapes.
    pytorch.load_state_dict(caffe.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out_caffe, out_pytorch = caffe(x), pytorch(x)
    assert [v.shape for v in out_caffe.values()] == [v.shape for v in out_pytorch.values()]
    assert not torch.allclose(out_caffe["0"], out_pytorch["0"])


def test_caffe_style_leaves_basic_blocks_unchanged() -> None:
    backbone = build_backbone(18, style="caffe")
    assert backbone.body.layer2[0].conv1.stride == (2, 2)


def test_frozen_stem_and_layer1_with_frozen_batchnorm() -> None:
    backbone = build_backbone(18)
    trainable = {n.split(".")[1] for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4", "inner_blocks", "layer_blocks"}
    norms = [m for m in backbone.body.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert norms and not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    assert norms[0].eps == 1e-5
    unfrozen = build_backbone(18, frozen_stages=-1, norm_eval=False)
    assert all(p.requires_grad for p in unfrozen.parameters())
    assert any(isinstance(m, nn.BatchNorm2d) for m in unfrozen.modules())


def test_fpn_levels_channels_and_p6_maxpool() -> None:
    backbone = build_backbone(18).eval()
    x = torch.randn(1, 3, 608, 96)
    with torch.no_grad():
        out = backbone(x)
    assert list(out) == ["0", "1", "2", "3", "pool"]
    assert [tuple(v.shape[-2:]) for v in out.values()] == [
        (152, 24),
        (76, 12),
        (38, 6),
        (19, 3),
        (10, 2),
    ]
    assert all(v.shape[1] == 256 for v in out.values())
    torch.testing.assert_close(out["pool"], out["3"][..., ::2, ::2])


def test_torchvision_names() -> None:
    keys = set(build_backbone(18).state_dict())
    assert {"body.conv1.weight", "body.layer4.1.bn2.running_var"} <= keys
    assert {"fpn.inner_blocks.0.0.weight", "fpn.layer_blocks.3.0.bias"} <= keys


def test_loads_local_torchvision_weights(tmp_path: Path) -> None:
    source = resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    backbone = build_backbone(18, weights_path=str(path))
    torch.testing.assert_close(backbone.body.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(
        backbone.body.layer3[1].bn1.running_mean, source.layer3[1].bn1.running_mean
    )


def test_rejects_unknown_depth_and_style() -> None:
    with pytest.raises(ValueError, match="depth"):
        build_backbone(152)
    with pytest.raises(ValueError, match="style"):
        build_backbone(18, style="tf")  # type: ignore[arg-type]
