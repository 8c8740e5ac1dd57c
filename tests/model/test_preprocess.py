"""Reference test resize, BGR normalisation, /32 padding and batching (reference a.7)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from qdtrack.model.preprocess import (
    BGR_MEAN,
    batch_images,
    preprocess_frames,
    rescale_size,
    resize_frame,
)


@pytest.mark.parametrize(
    ("width", "height", "resized", "padded"),
    [
        (1920, 1080, (1088, 612), (1088, 640)),
        (640, 480, (1088, 816), (1088, 832)),
        (1080, 1920, (612, 1088), (640, 1088)),
    ],
)
def test_reference_resize_and_pad_sizes(
    width: int, height: int, resized: tuple[int, int], padded: tuple[int, int]
) -> None:
    frame = np.zeros((height, width, 3), np.uint8)
    batch = preprocess_frames([frame])
    assert batch.image_sizes == [(resized[1], resized[0])]
    assert tuple(batch.tensor.shape) == (1, 3, padded[1], padded[0])
    assert batch.original_sizes == [(height, width)]
    w_scale, h_scale = resized[0] / width, resized[1] / height
    expected = torch.tensor([[w_scale, h_scale, w_scale, h_scale]], dtype=torch.float32)
    torch.testing.assert_close(batch.scale_factors, expected)


def test_scale_factor_is_new_over_old_per_axis() -> None:
    resized, factor = resize_frame(np.zeros((1080, 1920, 3), np.uint8))
    assert resized.shape == (612, 1088, 3) and resized.dtype == np.uint8
    np.testing.assert_allclose(factor, [1088 / 1920, 612 / 1080, 1088 / 1920, 612 / 1080])
    # Rounding the short side makes the two axes differ in general (333 * 1.088 = 362.3).
    _, factor = resize_frame(np.zeros((333, 1000, 3), np.uint8))
    np.testing.assert_allclose(factor, [1.088, 362 / 333, 1.088, 362 / 333], rtol=1e-6)
    assert factor[0] != factor[1]


def test_img_scale_is_a_parameter_and_order_free() -> None:
    assert rescale_size(1920, 1080, (384, 384))[:2] == (384, 216)
    assert rescale_size(640, 480, (1333, 800)) == rescale_size(640, 480, (800, 1333))
    batch = preprocess_frames([np.zeros((1080, 1920, 3), np.uint8)], img_scale=(384, 384))
    assert tuple(batch.tensor.shape) == (1, 3, 224, 384)


def test_resize_is_cv2_bilinear_on_uint8_then_bgr_mean_subtracted() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    batch = preprocess_frames([frame], img_scale=(160, 160))
    expected = cv2.resize(frame, (160, 96), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    expected -= np.asarray(BGR_MEAN, np.float32)
    got = batch.tensor[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, expected)


def test_mean_is_subtracted_in_bgr_order_without_rgb_swap() -> None:
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 30  # B, G, R
    tensor = preprocess_frames([frame], img_scale=(32, 32)).tensor[0]
    torch.testing.assert_close(
        tensor[:, 0, 0], torch.tensor([10 - 103.530, 20 - 116.280, 30 - 123.675])
    )


def test_batch_pads_bottom_right_with_zeros_after_normalisation() -> None:
    small = torch.full((3, 40, 50), 200.0)
    large = torch.full((3, 70, 90), 200.0)
    batch = batch_images([small, large])
    assert tuple(batch.tensor.shape) == (2, 3, 96, 96)
    assert batch.image_sizes == [(40, 50), (70, 90)]
    assert batch.pad_sizes == [(64, 64), (96, 96)]
    assert torch.all(batch.tensor[0, :, 40:, :] == 0)
    assert torch.all(batch.tensor[0, :, :, 50:] == 0)
    torch.testing.assert_close(batch.tensor[0, 0, :40, :50], torch.full((40, 50), 200 - 103.53))
    torch.testing.assert_close(batch.scale_factors, torch.ones(2, 4))


def test_batch_images_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        batch_images([])
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        batch_images([torch.zeros(4, 8, 8)])
