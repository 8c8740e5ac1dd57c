"""Tests of the track losses on hand-computed cases and against the reference algorithm."""

from __future__ import annotations

import math

import pytest
import torch

from qdtrack.model.losses import FLOAT32_EPS, embedding_l2_loss, multi_pos_cross_entropy

torch.set_flush_denormal(True)


def _reference_multi_pos_ce(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Transcription of mmtracking's ``multi_pos_cross_entropy`` (per-row losses)."""
    pos_inds = label >= 1
    neg_inds = label == 0
    pred_pos = pred * pos_inds.float()
    pred_neg = pred * neg_inds.float()
    pred_pos[neg_inds] = pred_pos[neg_inds] + float("inf")
    pred_neg[pos_inds] = pred_neg[pos_inds] + float("-inf")
    pos_expand = torch.repeat_interleave(pred_pos, pred.shape[1], dim=1)
    neg_expand = pred_neg.repeat(1, pred.shape[1])
    x = torch.nn.functional.pad(neg_expand - pos_expand, (0, 1), "constant", 0)
    return torch.logsumexp(x, dim=1)


# ----------------------------------------------------------------------------- multi-pos CE


@pytest.mark.parametrize("pairwise", [True, False])
def test_single_positive_row_is_softmax_cross_entropy(pairwise: bool) -> None:
    s_p, s_n1, s_n2 = 2.0, 1.0, -0.5
    logits = torch.tensor([[s_p, s_n1, s_n2]])
    targets = torch.tensor([[1, 0, 0]])
    loss = multi_pos_cross_entropy(logits, targets, torch.ones(1), pairwise=pairwise)
    expected = 0.25 * math.log(1 + math.exp(s_n1 - s_p) + math.exp(s_n2 - s_p)) / (1 + FLOAT32_EPS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("pairwise", [True, False])
def test_multiple_positives_sum_over_all_pairs(pairwise: bool) -> None:
    s = [1.0, 0.5, 0.0, 2.0]
    logits = torch.tensor([s])
    targets = torch.tensor([[1, 1, 0, 0]])
    pair_sum = sum(math.exp(s[j] - s[k]) for k in (0, 1) for j in (2, 3))
    loss = multi_pos_cross_entropy(
        logits, targets, torch.ones(1), loss_weight=1.0, pairwise=pairwise
    )
    assert loss.item() == pytest.approx(math.log(1 + pair_sum) / (1 + FLOAT32_EPS), rel=1e-6)


@pytest.mark.parametrize("pairwise", [True, False])
def test_rows_without_positives_or_negatives_give_zero(pairwise: bool) -> None:
    logits = torch.tensor([[3.0, -1.0], [0.2, 0.7]], requires_grad=True)
    targets = torch.tensor([[0, 0], [1, 1]])
    loss = multi_pos_cross_entropy(logits, targets, torch.ones(2), pairwise=pairwise)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.equal(logits.grad, torch.zeros(2, 2))


def test_weights_select_rows_and_normalise() -> None:
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 1.0]])
    targets = torch.tensor([[1, 0], [1, 0], [1, 0]])
    row = [math.log(1 + math.exp(-1.0)), math.log(1 + math.exp(3.0)), math.log(2.0)]
    weights = torch.tensor([1.0, 0.0, 1.0])
    loss = multi_pos_cross_entropy(logits, targets, weights, loss_weight=0.25)
    expected = 0.25 * (row[0] + row[2]) / (2 + FLOAT32_EPS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # loss_weight is a plain multiplier.
    doubled = multi_pos_cross_entropy(logits, targets, weights, loss_weight=0.5)
    assert doubled.item() == pytest.approx(2 * loss.item(), rel=1e-6)


def test_all_zero_weights_give_zero_not_nan() -> None:
    logits = torch.randn(3, 4)
    targets = torch.zeros(3, 4, dtype=torch.int32)
    assert multi_pos_cross_entropy(logits, targets, torch.zeros(3)).item() == 0.0
    empty = multi_pos_cross_entropy(torch.zeros(0, 5), torch.zeros(0, 5), torch.zeros(0))
    assert empty.item() == 0.0


def test_pairwise_matches_reference_bit_for_bit_and_closed_form_closely() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 40, generator=generator) * 20
    targets = (torch.rand(16, 40, generator=generator) < 0.1).int()
    targets[0] = 0  # a row without positives
    weights = (targets.sum(1) > 0).float()
    reference = _reference_multi_pos_ce(logits.clone(), targets)
    expected = 0.25 * (reference * weights).sum() / (weights.sum() + FLOAT32_EPS)
    assert torch.equal(multi_pos_cross_entropy(logits, targets, weights), expected)
    closed = multi_pos_cross_entropy(logits, targets, weights, pairwise=False)
    torch.testing.assert_close(closed, expected, rtol=1e-5, atol=1e-6)


def test_large_logits_stay_finite() -> None:
    logits = torch.tensor([[1000.0, -1000.0, 2000.0]], requires_grad=True)
    targets = torch.tensor([[1, 0, 0]], dtype=torch.bool)
    for pairwise in (True, False):
        loss = multi_pos_cross_entropy(logits, targets, torch.ones(1), pairwise=pairwise)
        assert loss.item() == pytest.approx(0.25 * 1000.0, rel=1e-6)
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all()


def test_bad_shapes_and_negative_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="same shape"):
        multi_pos_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2))
    with pytest.raises(ValueError, match="weights"):
        multi_pos_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="< 0"):
        multi_pos_cross_entropy(torch.zeros(1, 2), torch.tensor([[1, -1]]), torch.ones(1))


# ----------------------------------------------------------------------------- L2 loss


def test_l2_margins_and_clamp_without_mining() -> None:
    cosine = torch.tensor([[0.9, 0.5, 0.05, -0.2]])
    targets = torch.tensor([[1, 0, 0, 0]])
    # 3 negatives / (1 + 1e-6) positives = 2.999997, not above 3: no mining.
    # positive 0.9 -> 0.01; negatives 0.5-0.1=0.4 -> 0.16; -0.05 and -0.3 clamp to 0 -> 0.
    loss = embedding_l2_loss(cosine, targets)
    assert loss.item() == pytest.approx((0.01 + 0.16) / (4 + FLOAT32_EPS), rel=1e-5)


def test_l2_hard_mining_keeps_three_hardest_negatives_per_positive() -> None:
    cosine = torch.tensor([[0.8, 0.7, 0.3, 0.12, 0.05, 0.6]])
    targets = torch.tensor([[1, 0, 0, 0, 0, 0]])
    # negative losses after margin/clamp: 0.36, 0.04, 0.0004, 0, 0.25 -> keep 0.36, 0.25, 0.04.
    loss = embedding_l2_loss(cosine, targets)
    assert loss.item() == pytest.approx((0.04 + 0.36 + 0.25 + 0.04) / (4 + FLOAT32_EPS), rel=1e-5)


def test_l2_without_positives_is_zero() -> None:
    cosine = torch.tensor([[0.9, 0.5], [0.3, 0.7]], requires_grad=True)
    loss = embedding_l2_loss(cosine, torch.zeros(2, 2, dtype=torch.int64))
    assert loss.item() == 0.0
    loss.backward()
    assert cosine.grad is not None and torch.equal(cosine.grad, torch.zeros(2, 2))


def test_l2_positive_margin_upper_clamp_and_weight() -> None:
    cosine = torch.tensor([[1.3, 0.9]])
    targets = torch.tensor([[1, 1]])
    # 1.3 clamps to 1 (loss 0); 0.9 - 0.2 = 0.7 -> 0.09; 1.3 - 0.2 = 1.1 -> 1 -> 0.
    loss = embedding_l2_loss(cosine, targets, pos_margin=0.2, loss_weight=2.0)
    assert loss.item() == pytest.approx(2.0 * 0.09 / (2 + FLOAT32_EPS), rel=1e-5)


def test_l2_does_not_modify_inputs() -> None:
    cosine = torch.tensor([[0.9, 0.5, 0.3, 0.2, 0.1]])
    targets = torch.tensor([[1, 0, 0, 0, 0]])
    cosine_copy, targets_copy = cosine.clone(), targets.clone()
    embedding_l2_loss(cosine, targets)
    assert torch.equal(cosine, cosine_copy) and torch.equal(targets, targets_copy)


def test_l2_random_mining_is_seeded_and_counts_kept_entries() -> None:
    cosine = torch.tensor([[0.8, 0.7, 0.3, 0.12, 0.05, 0.6]])
    targets = torch.tensor([[1, 0, 0, 0, 0, 0]])

    def run(seed: int) -> float:
        generator = torch.Generator().manual_seed(seed)
        return embedding_l2_loss(cosine, targets, hard_mining=False, generator=generator).item()

    assert run(3) == run(3)
    values = {round(run(seed), 6) for seed in range(20)}
    hard = embedding_l2_loss(cosine, targets).item()
    assert max(values) <= hard + 1e-6 and len(values) > 1


def test_l2_empty_matrix_is_zero() -> None:
    assert embedding_l2_loss(torch.zeros(0, 3), torch.zeros(0, 3)).item() == 0.0
