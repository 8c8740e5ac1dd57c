"""Paired training augmentation (docs/reference-behaviour.md a.7) on hand-built images and boxes."""

from __future__ import annotations

import numpy as np
import pytest

from qdtrack.data.transforms import (
    AugmentedPair,
    ImageBoxes,
    PhotometricParams,
    augment_pair,
    crop,
    flip_horizontal,
    photometric_distortion,
    random_crop,
    random_flip,
    resize_keep_ratio,
    sample_photometric_params,
    sample_resize_scale,
    seq_resize,
)


def _frame(height: int, width: int, boxes: list[list[float]], seed: int = 0) -> ImageBoxes:
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, size=(height, width, 3)).astype(np.float32)
    return ImageBoxes(image, np.asarray(boxes, dtype=np.float32).reshape(-1, 4))


# --------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "scale", "expected"),
    [
        (1920, 1080, 1088, (1088, 612)),  # reference a.7 test-time example
        (640, 480, 1088, (1088, 816)),
        (300, 200, 100, (100, 67)),  # int(200 / 3 + 0.5)
        (200, 300, 100, (67, 100)),  # portrait: long side is the height
    ],
)
def test_resize_keep_ratio_uses_mmcv_rescale_rule(width, height, scale, expected):
    frame = _frame(height, width, [[10, 20, 50, 80]])
    resized, factor = resize_keep_ratio(frame, scale)
    assert resized.image.shape == (expected[1], expected[0], 3)
    assert resized.image.dtype == np.float32
    sx, sy = expected[0] / width, expected[1] / height
    np.testing.assert_allclose(factor, [sx, sy, sx, sy], rtol=1e-6)
    np.testing.assert_allclose(
        resized.boxes_xyxy, [[10 * sx, 20 * sy, 50 * sx, 80 * sy]], rtol=1e-6
    )


def test_sample_resize_scale_stays_in_ratio_range():
    rng = np.random.default_rng(0)
    scales = [sample_resize_scale(rng, 1088) for _ in range(2000)]
    assert min(scales) >= int(1088 * 0.8)
    assert max(scales) <= int(1088 * 1.2)  # 1088 * r < 1305.6
    assert len(set(scales)) > 100


def test_seq_resize_shares_the_ratio_and_scales_boxes_without_clipping():
    key = _frame(100, 200, [[-30, 10, 50, 90]], seed=1)  # starts left of the image
    ref = _frame(50, 100, [[90, 40, 130, 60]], seed=2)  # ends right of the image
    (key_r, ref_r), (key_f, ref_f) = seq_resize([key, ref], np.random.default_rng(3), img_scale=100)
    # One target long side for both frames, even though their sizes differ.
    assert key_r.image.shape[1] == ref_r.image.shape[1]
    assert 80 <= key_r.image.shape[1] < 120
    np.testing.assert_allclose(key_r.boxes_xyxy, key.boxes_xyxy * key_f, rtol=1e-6)
    np.testing.assert_allclose(ref_r.boxes_xyxy, ref.boxes_xyxy * ref_f, rtol=1e-6)
    assert key_r.boxes_xyxy[0, 0] < 0  # not clipped
    assert ref_r.boxes_xyxy[0, 2] > ref_r.image.shape[1]


# --------------------------------------------------------------------------------------
# Crop and flip
# --------------------------------------------------------------------------------------


def test_crop_translates_boxes_and_does_not_clip():
    frame = _frame(100, 120, [[0, 0, 30, 40], [100, 80, 140, 130]])
    cropped = crop(frame, (10, 20), (50, 60))
    assert cropped.image.shape == (50, 60, 3)
    np.testing.assert_array_equal(cropped.image, frame.image[10:60, 20:80])
    np.testing.assert_array_equal(cropped.boxes_xyxy, [[-20, -10, 10, 30], [80, 70, 120, 120]])


def test_random_crop_only_crops_a_side_longer_than_the_crop():
    frame = _frame(40, 90, [[5, 5, 20, 30]])
    for seed in range(20):
        cropped, (top, left) = random_crop(frame, np.random.default_rng(seed), crop_size=(64, 64))
        assert top == 0  # the height 40 is below the crop size
        assert 0 <= left <= 90 - 64
        assert cropped.image.shape == (40, 64, 3)
        np.testing.assert_array_equal(cropped.boxes_xyxy, frame.boxes_xyxy - [left, 0, left, 0])


def test_pair_crops_use_independent_offsets():
    key = _frame(100, 160, [[10, 10, 60, 90]])
    ref = _frame(100, 160, [[10, 10, 60, 90]])
    pairs = [augment_pair(key, ref, np.random.default_rng(s), img_scale=64) for s in range(10)]
    assert all(p is not None for p in pairs)
    offsets = [(p.key_crop_offset, p.ref_crop_offset) for p in pairs if p is not None]
    assert any(k != r for k, r in offsets)


def test_flip_mirrors_image_and_boxes_like_mmdet():
    frame = _frame(20, 100, [[10, 2, 30, 18], [-5, 0, 120, 10]])
    flipped = flip_horizontal(frame)
    np.testing.assert_array_equal(flipped.image, frame.image[:, ::-1])
    np.testing.assert_array_equal(flipped.boxes_xyxy, [[70, 2, 90, 18], [-20, 0, 105, 10]])
    twice = flip_horizontal(flipped)
    np.testing.assert_array_equal(twice.boxes_xyxy, frame.boxes_xyxy)


def test_random_flip_is_shared_by_both_frames():
    key, ref = _frame(10, 30, [[1, 1, 5, 5]]), _frame(10, 40, [[2, 2, 6, 6]])
    outcomes = set()
    for seed in range(20):
        (k, r), flipped = random_flip([key, ref], np.random.default_rng(seed))
        outcomes.add(flipped)
        assert (k.boxes_xyxy[0, 0] != 1) == flipped
        assert (r.boxes_xyxy[0, 0] != 2) == flipped
    assert outcomes == {True, False}


# --------------------------------------------------------------------------------------
# Photometric distortion
# --------------------------------------------------------------------------------------

_GREY = np.full((4, 5, 3), 100.0, np.float32)
_COLOUR = np.tile(np.array([50.0, 100.0, 200.0], np.float32), (4, 5, 1))


@pytest.mark.parametrize(
    ("params", "image", "expected"),
    [
        (PhotometricParams(), _COLOUR, _COLOUR),
        (PhotometricParams(brightness=10.0), _GREY, _GREY + 10),
        (PhotometricParams(contrast=1.5, contrast_first=True), _GREY, _GREY * 1.5),
        (
            PhotometricParams(brightness=10.0, contrast=2.0, contrast_first=True),
            _GREY,
            _GREY * 0 + 220,
        ),
        (
            PhotometricParams(brightness=10.0, contrast=2.0, contrast_first=False),
            _GREY,
            _GREY * 0 + 220,
        ),
        (PhotometricParams(saturation=0.0), _COLOUR, np.full((4, 5, 3), 200.0, np.float32)),
        (PhotometricParams(channel_permutation=(2, 1, 0)), _COLOUR, _COLOUR[..., ::-1]),
        (PhotometricParams(hue=360.0), _COLOUR, _COLOUR),  # a full turn wraps back
    ],
)
def test_photometric_distortion_steps(params, image, expected):
    out = photometric_distortion(image, params)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, expected, atol=1e-2)
    assert out is not image


def test_photometric_distortion_rejects_non_float_images():
    with pytest.raises(ValueError, match="float32"):
        photometric_distortion(np.zeros((4, 4, 3), np.uint8), PhotometricParams())


def test_photometric_params_draw_every_option():
    params = [sample_photometric_params(np.random.default_rng(s)) for s in range(200)]
    assert {p.contrast_first for p in params} == {True, False}
    for name, bound in (("brightness", (-32, 32)), ("contrast", (0.5, 1.5)), ("hue", (-18, 18))):
        values = [getattr(p, name) for p in params]
        assert None in values
        drawn = [v for v in values if v is not None]
        assert bound[0] <= min(drawn) and max(drawn) <= bound[1]
    assert any(p.channel_permutation is not None for p in params)


# --------------------------------------------------------------------------------------
# The whole pipeline
# --------------------------------------------------------------------------------------


def _assert_pairs_equal(a: AugmentedPair, b: AugmentedPair) -> None:
    for x, y in ((a.key, b.key), (a.ref, b.ref)):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.boxes_xyxy, y.boxes_xyxy)
    assert (a.key_crop_offset, a.ref_crop_offset, a.flipped) == (
        b.key_crop_offset,
        b.ref_crop_offset,
        b.flipped,
    )


def test_augment_pair_applies_identical_photometric_changes_to_both_frames():
    frame = _frame(48, 64, [[5, 5, 30, 40]])
    # img_scale 64 and a 0.8..1.0 ratio: no crop, so identical inputs stay identical.
    for seed in range(10):
        pair = augment_pair(
            frame, frame, np.random.default_rng(seed), img_scale=64, ratio_range=(0.8, 1.0)
        )
        assert pair is not None
        assert pair.key.image.dtype == np.float32
        np.testing.assert_array_equal(pair.key.image, pair.ref.image)
        np.testing.assert_array_equal(pair.key.boxes_xyxy, pair.ref.boxes_xyxy)
        resized, _ = resize_keep_ratio(frame, pair.key.image.shape[1])
        if not pair.flipped:
            assert not np.array_equal(pair.key.image, resized.image)  # pixels changed


def test_augment_pair_is_deterministic_for_a_seed():
    key, ref = _frame(90, 150, [[10, 10, 60, 80]], 1), _frame(90, 150, [[20, 10, 70, 80]], 2)
    a = augment_pair(key, ref, np.random.default_rng(7), img_scale=96)
    b = augment_pair(key, ref, np.random.default_rng(7), img_scale=96)
    c = augment_pair(key, ref, np.random.default_rng(8), img_scale=96)
    assert a is not None and b is not None and c is not None
    _assert_pairs_equal(a, b)
    assert not np.array_equal(a.key.image, c.key.image) or a.key.image.shape != c.key.image.shape
    np.testing.assert_array_equal(key.boxes_xyxy, [[10, 10, 60, 80]])  # inputs untouched


def test_augment_pair_rejects_frames_without_gt():
    key, empty = _frame(40, 40, [[1, 1, 20, 20]]), _frame(40, 40, [])
    rng = np.random.default_rng(0)
    assert augment_pair(key, empty, rng, img_scale=64) is None
    assert augment_pair(empty, key, rng, img_scale=64) is None


def test_boxes_outside_the_crop_are_kept_unless_opted_in():
    # The only box lies in the right half; crops of width 64 out of ~128 often miss it.
    key = _frame(64, 128, [[126, 10, 128, 60]])
    kept, rejected = 0, 0
    for seed in range(30):
        pair = augment_pair(key, key, np.random.default_rng(seed), img_scale=64)
        assert pair is not None and len(pair.key.boxes_xyxy) == 1  # reference: never dropped
        strict = augment_pair(
            key, key, np.random.default_rng(seed), img_scale=64, require_gt_in_crop=True
        )
        kept += strict is not None
        rejected += strict is None
    assert kept > 0 and rejected > 0
