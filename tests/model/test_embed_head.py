"""Tests of the embedding head (names, shapes, init) and the track head's training losses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qdtrack.model.embed_head import QuasiDenseEmbedHead
from qdtrack.model.roi_extractor import MultiLevelRoIExtractor
from qdtrack.model.track_head import QuasiDenseTrackHead, cosine_similarity_matrix

torch.set_flush_denormal(True)

KEYS_JSON = (
    Path(__file__).resolve().parents[3] / "shared" / "spec" / "mmtracking_qdtrack_r50_keys.json"
)
PREFIX = "track_head.embed_head."


def _small_head() -> QuasiDenseEmbedHead:
    return QuasiDenseEmbedHead(
        in_channels=16, conv_channels=16, num_groups=4, fc_channels=32, embed_channels=8
    )


def test_reference_head_shapes() -> None:
    torch.manual_seed(0)
    head = QuasiDenseEmbedHead()
    out = head(torch.randn(3, 256, 7, 7))
    assert out.shape == (3, 256)
    assert head(torch.zeros(0, 256, 7, 7)).shape == (0, 256)


def test_parameter_names_and_shapes_equal_the_checkpoint() -> None:
    if not KEYS_JSON.is_file():
        pytest.skip(f"{KEYS_JSON} not found")
    entries = json.loads(KEYS_JSON.read_text())["keys"]
    expected = {
        e["key"][len(PREFIX) :]: tuple(e["shape"]) for e in entries if e["key"].startswith(PREFIX)
    }
    with torch.device("meta"):
        head = QuasiDenseEmbedHead()
    actual = {name: tuple(t.shape) for name, t in head.state_dict().items()}
    assert actual == expected
    assert len(actual) == 16


def test_initialisation_follows_the_reference() -> None:
    torch.manual_seed(0)
    head = QuasiDenseEmbedHead()
    for block in head.convs:
        assert block.conv.bias is None
        assert torch.equal(block.gn.weight, torch.ones(256))
        assert torch.equal(block.gn.bias, torch.zeros(256))
        # kaiming normal, fan_out = 256 * 9, gain sqrt(2)
        expected_std = (2.0 / (256 * 9)) ** 0.5
        assert block.conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    fc = head.fcs[0]
    bound = (6.0 / (12544 + 1024)) ** 0.5  # xavier uniform
    assert fc.weight.abs().max().item() <= bound and fc.weight.abs().max().item() > 0.95 * bound
    assert torch.equal(fc.bias, torch.zeros(1024))
    assert head.fc_embed.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.equal(head.fc_embed.bias, torch.zeros(256))


def test_head_is_conv_gn_relu_flatten_fc_relu_fc() -> None:
    torch.manual_seed(0)
    head = _small_head()
    x = torch.randn(2, 16, 7, 7)
    y = x
    for block in head.convs:
        y = torch.relu(
            torch.nn.functional.group_norm(block.conv(y), 4, block.gn.weight, block.gn.bias)
        )
    y = torch.relu(head.fcs[0](y.flatten(1)))
    torch.testing.assert_close(head(x), head.fc_embed(y))


def test_wrong_input_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="roi_features"):
        _small_head()(torch.zeros(1, 16, 5, 5))
    with pytest.raises(ValueError, match="divisible"):
        QuasiDenseEmbedHead(conv_channels=20, num_groups=8)


# ----------------------------------------------------------------------------- track head


def _track_head() -> QuasiDenseTrackHead:
    torch.manual_seed(0)
    return QuasiDenseTrackHead(roi_extractor=MultiLevelRoIExtractor(), embed_head=_small_head())


def _features(batch: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 16, 128 // s, 128 // s, generator=generator) for s in (4, 8, 16, 32)]


def _jitter(boxes: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    repeated = boxes.repeat_interleave(count, dim=0)
    return repeated + (torch.rand(repeated.shape, generator=generator) - 0.5) * 6


def _pair_inputs(generator: torch.Generator) -> dict[str, list[torch.Tensor]]:
    key_gts = torch.tensor([[10.0, 10.0, 50.0, 90.0], [60.0, 20.0, 100.0, 100.0]])
    ref_gts = key_gts + 3.0
    background = torch.rand(40, 2, generator=generator) * 100
    background = torch.cat([background, background + 10], dim=1)
    return {
        "key_proposals": [torch.cat([_jitter(key_gts, 5, generator), background])],
        "ref_proposals": [torch.cat([_jitter(ref_gts, 5, generator), background])],
        "key_gt_boxes": [key_gts],
        "ref_gt_boxes": [ref_gts],
        "key_instance_ids": [torch.tensor([4, 9])],
        "ref_instance_ids": [torch.tensor([9, 4])],
    }


def test_forward_train_gives_finite_differentiable_losses() -> None:
    head = _track_head()
    inputs = _pair_inputs(torch.Generator().manual_seed(0))
    losses = head.forward_train(
        _features(1, 1), _features(1, 2), **inputs, generator=torch.Generator().manual_seed(0)
    )
    assert set(losses) == {"loss_track", "loss_track_aux"}
    assert all(torch.isfinite(v) and v.item() > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert head.embed_head.fc_embed.weight.grad is not None
    assert head.embed_head.fc_embed.weight.grad.abs().sum() > 0
    again = head.forward_train(
        _features(1, 1), _features(1, 2), **inputs, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(again["loss_track"], losses["loss_track"])


def test_forward_train_averages_over_images_and_survives_unmatched_pairs() -> None:
    head = _track_head()
    inputs = _pair_inputs(torch.Generator().manual_seed(0))
    single = head.forward_train(
        _features(1, 1), _features(1, 2), **inputs, generator=torch.Generator().manual_seed(0)
    )
    # Second image: same pair but no instance matches (ids 0 never match) -> zero losses.
    doubled = {name: values * 2 for name, values in inputs.items()}
    doubled["key_instance_ids"] = [inputs["key_instance_ids"][0], torch.tensor([0, 0])]
    key_feats = [torch.cat([f, f]) for f in _features(1, 1)]
    ref_feats = [torch.cat([f, f]) for f in _features(1, 2)]
    pair = head.forward_train(
        key_feats, ref_feats, **doubled, generator=torch.Generator().manual_seed(0)
    )
    assert pair["loss_track"].item() == pytest.approx(single["loss_track"].item() / 2, rel=1e-5)
    assert torch.isfinite(pair["loss_track_aux"])


def test_forward_train_without_gts_is_zero_and_finite() -> None:
    head = _track_head()
    proposals = [torch.tensor([[0.0, 0.0, 20.0, 20.0], [30.0, 30.0, 60.0, 70.0]])]
    empty_boxes = [torch.zeros(0, 4)]
    empty_ids = [torch.zeros(0, dtype=torch.long)]
    losses = head.forward_train(
        _features(1, 1), _features(1, 2), proposals, proposals, empty_boxes, empty_boxes,
        empty_ids, empty_ids,
    )  # fmt: skip
    assert losses["loss_track"].item() == 0.0 and losses["loss_track_aux"].item() == 0.0


def test_embed_and_cosine() -> None:
    head = _track_head().eval()
    boxes = [torch.tensor([[10.0, 10.0, 50.0, 90.0, 0.9]]), torch.zeros(0, 4)]
    features = _features(2, 3)
    assert head.embed(features, boxes).shape == (1, 8)
    torch.testing.assert_close(head(features, boxes), head.embed(features, boxes))
    a = torch.tensor([[3.0, 4.0]])
    b = torch.tensor([[4.0, 3.0], [0.0, 2.0]])
    torch.testing.assert_close(cosine_similarity_matrix(a, b), torch.tensor([[0.96, 0.8]]))


def test_mismatched_batch_lists_are_refused() -> None:
    head = _track_head()
    inputs = _pair_inputs(torch.Generator().manual_seed(0))
    inputs["ref_instance_ids"] = []
    with pytest.raises(ValueError, match="one entry per image"):
        head.forward_train(_features(1, 1), _features(1, 2), **inputs)
