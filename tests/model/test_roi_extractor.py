"""Tests of the multi-level RoI extractor: level rule, pooling and edge cases."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import roi_align
from torchvision.ops.poolers import LevelMapper

from qdtrack.model.roi_extractor import (
    INVALID_LEVEL,
    MultiLevelRoIExtractor,
    boxes_to_rois,
    map_roi_levels,
    roi_align_cpu_training,
)

torch.set_flush_denormal(True)

STRIDES = (4, 8, 16, 32)


def _square(side: float) -> list[float]:
    return [10.0, 20.0, 10.0 + side, 20.0 + side]


@pytest.mark.parametrize(
    ("side", "level"),
    [
        (1.0, 0),
        (55.9, 0),
        (111.9, 0),
        (112.0, 1),
        (223.9, 1),
        (224.0, 2),
        (447.9, 2),
        (448.0, 3),
        (2000.0, 3),
        (0.0, 0),  # zero area: log2(1e-6) clamps to level 0
    ],
)
def test_level_rule_at_boundaries(side: float, level: int) -> None:
    boxes = torch.tensor([_square(side)], dtype=torch.float32)
    assert map_roi_levels(boxes, num_levels=4).tolist() == [level]


def test_level_rule_uses_sqrt_of_area_and_num_levels() -> None:
    # 56 x 224 has sqrt(area) = 112 -> level 1; a 2-level pyramid clamps 448 to level 1.
    boxes = torch.tensor([[0.0, 0.0, 56.0, 224.0], [0.0, 0.0, 448.0, 448.0]])
    assert map_roi_levels(boxes, num_levels=4).tolist() == [1, 3]
    assert map_roi_levels(boxes, num_levels=2).tolist() == [1, 1]
    # finest_scale halves the thresholds.
    assert map_roi_levels(boxes, num_levels=4, finest_scale=28.0).tolist() == [2, 3]


def test_negative_area_gets_invalid_level() -> None:
    boxes = torch.tensor([[10.0, 10.0, 5.0, 20.0]])
    assert map_roi_levels(boxes, num_levels=4).tolist() == [INVALID_LEVEL]


def test_level_rule_agrees_with_torchvision_level_mapper() -> None:
    generator = torch.Generator().manual_seed(0)
    count = 20_000
    xy = torch.rand(count, 2, generator=generator) * 500
    wh = 4 + torch.rand(count, 2, generator=generator) * 896
    boxes = torch.cat([xy, xy + wh], dim=1)
    ours = map_roi_levels(boxes, num_levels=4)
    theirs = LevelMapper(2, 5)([boxes])
    assert int((ours != theirs).sum()) == 0


def test_bad_box_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        map_roi_levels(torch.zeros(3, 5), num_levels=4)


def _features(batch: int, channels: int, size: int = 128) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [
        torch.randn(batch, channels, math.ceil(size / s), math.ceil(size / s), generator=generator)
        for s in STRIDES
    ]


def test_output_equals_per_box_roi_align_on_its_level() -> None:
    features = _features(batch=2, channels=3, size=512)
    boxes = [
        torch.tensor([[0.0, 0.0, 50.0, 60.0], [10.0, 10.0, 300.0, 250.0]]),
        torch.tensor([[5.0, 7.0, 130.0, 140.0], [0.0, 0.0, 500.0, 480.0], [1.0, 2.0, 3.0, 4.0]]),
    ]
    extractor = MultiLevelRoIExtractor()
    pooled = extractor(features, boxes)
    assert pooled.shape == (5, 3, 7, 7)
    expected_levels = [0, 2, 1, 3, 0]
    rois = boxes_to_rois(boxes)
    for row, level in enumerate(expected_levels):
        expected = roi_align(
            features[level],
            rois[row : row + 1],
            output_size=(7, 7),
            spatial_scale=1.0 / STRIDES[level],
            sampling_ratio=0,
            aligned=True,
        )
        torch.testing.assert_close(pooled[row : row + 1], expected, rtol=0, atol=0)


def test_extra_p6_map_is_ignored_and_output_size_respected() -> None:
    features = _features(batch=1, channels=2)
    boxes = [torch.tensor([[0.0, 0.0, 40.0, 40.0]])]
    extractor = MultiLevelRoIExtractor(output_size=5)
    with_p6 = [*features, torch.randn(1, 2, 2, 2)]
    torch.testing.assert_close(extractor(with_p6, boxes), extractor(features, boxes))
    assert extractor(features, boxes).shape == (1, 2, 5, 5)


def test_empty_input_gives_empty_output() -> None:
    features = _features(batch=2, channels=4)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    pooled = MultiLevelRoIExtractor()(features, empty)
    assert pooled.shape == (0, 4, 7, 7)


def test_gradient_flows_to_features() -> None:
    features = [f.requires_grad_() for f in _features(batch=1, channels=2)]
    boxes = [torch.tensor([[0.0, 0.0, 40.0, 40.0], [0.0, 0.0, 120.0, 120.0]])]
    MultiLevelRoIExtractor()(features, boxes).sum().backward()
    assert features[0].grad is not None and features[0].grad.abs().sum() > 0
    assert features[1].grad is not None and features[1].grad.abs().sum() > 0


def _awkward_rois(batch: int, height: int, width: int, count: int, stride: int) -> torch.Tensor:
    """RoIs in image pixels: inside, across and beyond every border, tiny and inverted-free."""
    g = torch.Generator().manual_seed(1)
    size = torch.tensor([width * stride, height * stride], dtype=torch.float32)
    corner = torch.rand(count, 2, generator=g) * (size + 40.0) - 20.0
    extent = torch.rand(count, 2, generator=g) * 0.6 * size + 0.25
    image = torch.randint(0, batch, (count, 1), generator=g).float()
    fixed = torch.tensor(
        [
            [0.0, -30.0, -30.0, -2.0, -2.0],  # wholly outside: no gradient
            [0.0, -8.0, -8.0, 12.0, 12.0],  # samples in [-1, 0): read the border
            [
                0.0,
                width * stride - 6.0,
                height * stride - 6.0,
                width * stride + 3.0,
                height * stride + 9.0,
            ],
            [0.0, 10.0, 10.0, 10.0, 10.0],  # zero size: one point
        ]
    )
    return torch.cat([fixed, torch.cat([image, corner, corner + extent], dim=1)])


@pytest.mark.parametrize("sampling_ratio", [1, 2])
@pytest.mark.parametrize("stride", [4, 16])
def test_cpu_training_roi_align_matches_torchvision(sampling_ratio: int, stride: int) -> None:
    torch.manual_seed(0)
    # float64, so summation order cannot hide a wrong tap or weight
    feature = torch.randn(3, 5, 14, 23, dtype=torch.float64).requires_grad_()
    rois = _awkward_rois(3, 14, 23, 300, stride).double()
    grad = torch.randn(rois.shape[0], 5, 7, 7, dtype=torch.float64)
    args = dict(output_size=(7, 7), spatial_scale=1.0 / stride, sampling_ratio=sampling_ratio)
    expected = roi_align(feature, rois, aligned=True, **args)
    (expected_grad,) = torch.autograd.grad(expected, feature, grad)
    pooled = roi_align_cpu_training(feature, rois, 7, 1.0 / stride, sampling_ratio)
    (pooled_grad,) = torch.autograd.grad(pooled, feature, grad)
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)  # the same forward
    torch.testing.assert_close(pooled_grad, expected_grad, rtol=1e-10, atol=1e-10)
    assert expected_grad.abs().sum() > 0


def test_cpu_training_roi_align_keeps_a_bfloat16_feature_dtype() -> None:
    feature = torch.randn(1, 4, 10, 10).bfloat16().requires_grad_()
    rois = torch.tensor([[0.0, 2.0, 3.0, 30.0, 33.0]])
    pooled = roi_align_cpu_training(feature, rois, 7, 0.25, 1)
    assert pooled.dtype is torch.bfloat16
    pooled.float().sum().backward()
    assert feature.grad is not None and feature.grad.dtype is torch.bfloat16
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align_cpu_training(feature, rois, 7, 0.25, 0)


def test_extractor_gradient_is_the_same_with_the_fast_backward() -> None:
    """Training (features need grad, fixed ratio, CPU) takes the vectorised backward."""
    boxes = [
        torch.tensor([[0.0, 0.0, 50.0, 60.0], [10.0, 10.0, 300.0, 250.0], [-20.0, 5, 40, 90]]),
        torch.tensor([[5.0, 7.0, 130.0, 140.0], [0.0, 0.0, 500.0, 480.0]]),
    ]
    extractor = MultiLevelRoIExtractor(sampling_ratio=2)
    features = [f.requires_grad_() for f in _features(batch=2, channels=3, size=512)]
    weights = torch.randn(5, 3, 7, 7)
    (extractor(features, boxes) * weights).sum().backward()
    fast = [f.grad.clone() for f in features]
    rois = boxes_to_rois(boxes)
    levels = map_roi_levels(rois[:, 1:], 4)
    reference = [f.detach().clone().requires_grad_() for f in features]
    total = torch.zeros(())
    for row in range(rois.shape[0]):
        level = int(levels[row])
        pooled = roi_align(
            reference[level], rois[row : row + 1], (7, 7), 1.0 / STRIDES[level], 2, True
        )
        total = total + (pooled * weights[row]).sum()
    total.backward()
    for got, want in zip(fast, reference, strict=True):
        torch.testing.assert_close(got, want.grad, rtol=1e-5, atol=1e-5)


def test_wrong_inputs_are_refused() -> None:
    features = _features(batch=2, channels=2)
    extractor = MultiLevelRoIExtractor()
    with pytest.raises(ValueError, match="feature maps"):
        extractor(features[:3], [torch.zeros(0, 4)] * 2)
    with pytest.raises(ValueError, match="one box tensor per image"):
        extractor(features, [torch.zeros(0, 4)])
