"""Anchors: unrounded, fixed strides, torchvision's ordering (reference a.4, keys item 4)."""

from __future__ import annotations

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TorchvisionAnchors
from torchvision.models.detection.image_list import ImageList

from qdtrack.model.anchors import AnchorGenerator, base_anchors, valid_anchor_mask

SIZES = ((32,), (64,), (128,), (256,), (512,))
RATIOS = ((0.5, 1.0, 2.0),) * 5


def _features(height: int, width: int) -> list[torch.Tensor]:
    sizes = [(-(-height // s), -(-width // s)) for s in (4, 8, 16, 32)]
    sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))  # P6: max-pool k1 s2
    return [torch.zeros(1, 1, h, w) for h, w in sizes]


def _torchvision(height: int, width: int) -> list[torch.Tensor]:
    generator = TorchvisionAnchors(SIZES, RATIOS)
    images = ImageList(torch.zeros(1, 3, height, width), [(height, width)])
    feats = _features(height, width)
    anchors = generator(images, feats)[0]
    return list(anchors.split([f.shape[-2] * f.shape[-1] * 3 for f in feats]))


def test_base_anchors_are_not_rounded() -> None:
    ours = base_anchors(4)
    torch.testing.assert_close(ours[0], torch.tensor([-22.6274, -11.3137, 22.6274, 11.3137]))
    torch.testing.assert_close(ours[1], torch.tensor([-16.0, -16.0, 16.0, 16.0]))
    tv_base = TorchvisionAnchors(SIZES, RATIOS).cell_anchors[0]
    torch.testing.assert_close(tv_base[0], torch.tensor([-23.0, -11.0, 23.0, 11.0]))
    torch.testing.assert_close(base_anchors(4, rounded=True), tv_base)


def test_rounded_option_equals_torchvision_when_strides_divide() -> None:
    generator = AnchorGenerator(rounded=True)
    for ours, theirs in zip(generator(_features(640, 128)), _torchvision(640, 128), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_p6_stride_is_fixed_at_64() -> None:
    # 608 is a multiple of 32 but not 64: torchvision derives 608 // 10 = 60 for P6.
    ours = AnchorGenerator(rounded=True)(_features(608, 64))[4]
    theirs = _torchvision(608, 64)[4]
    width = 1  # P6 is 10 x 1
    ours_centres_y = (ours[::3, 1] + ours[::3, 3]) / 2
    theirs_centres_y = (theirs[::3, 1] + theirs[::3, 3]) / 2
    assert ours_centres_y[width * 9].item() == 9 * 64
    assert theirs_centres_y[width * 9].item() == 9 * 60


def test_location_major_anchor_minor_order() -> None:
    feature = torch.zeros(1, 1, 3, 5)
    anchors = AnchorGenerator(strides=(8,))([feature])[0]
    assert anchors.shape == (3 * 5 * 3, 4)
    base = base_anchors(8)
    y, x, a = 2, 4, 1
    index = (y * 5 + x) * 3 + a
    torch.testing.assert_close(anchors[index], base[a] + torch.tensor([32.0, 16.0, 32.0, 16.0]))


def test_valid_mask_excludes_other_images_padding() -> None:
    mask = valid_anchor_mask((4, 6), 16, (32, 64), num_base=3).reshape(4, 6, 3)
    assert mask[:2, :4].all()
    assert not mask[2:].any() and not mask[:, 4:].any()
