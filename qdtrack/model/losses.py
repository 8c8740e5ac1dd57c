"""Track-head losses as pure functions (reference c.1, c.2).

Both functions reduce over **one image** (one key/reference pair). The reference averages the
per-image values over the batch (``loss = Σ_images loss_image / num_images``,
mmtracking ``QuasiDenseEmbedHead.loss``); that mean is the caller's job
(:class:`qdtrack.model.track_head.QuasiDenseTrackHead` does it).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["embedding_l2_loss", "multi_pos_cross_entropy", "weighted_mean"]

#: float32 machine epsilon, added to every average factor as mmdet's ``weight_reduce_loss``
#: does (reference h.9: present in mmdet >= 2.2x; immaterial numerically).
FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def weighted_mean(loss: Tensor, weights: Tensor, avg_factor: Tensor | float) -> Tensor:
    """``Σ loss·weights / (avg_factor + float32 eps)`` (mmdet ``weight_reduce_loss``, mean).

    Args:
        loss: Element-wise loss of any shape.
        weights: Weights broadcastable to ``loss``.
        avg_factor: Normaliser (a 0-d tensor or a number).

    Returns:
        0-d tensor.
    """
    return (loss * weights).sum() / (avg_factor + FLOAT32_EPS)


def _check_matrix_and_targets(name: str, scores: Tensor, targets: Tensor) -> None:
    if scores.dim() != 2 or scores.shape != targets.shape:
        raise ValueError(
            f"{name} and targets must be matrices of the same shape (P, R); "
            f"got {tuple(scores.shape)} and {tuple(targets.shape)}."
        )
    if targets.numel() > 0 and not targets.dtype == torch.bool and bool((targets < 0).any()):
        raise ValueError("targets must be 0 (negative pair) or 1 (positive pair); got a value < 0.")


def multi_pos_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    weights: Tensor,
    *,
    loss_weight: float = 0.25,
    pairwise: bool = True,
) -> Tensor:
    """Multi-positive cross-entropy of one image (mmtracking ``MultiPosCrossEntropyLoss``).

    For key row ``i`` with positives ``P_i`` (``targets >= 1``) and negatives ``N_i``
    (``targets == 0``): ``L_i = log(1 + Σ_{k∈P_i} Σ_{j∈N_i} exp(s_ij − s_ik))``; rows without a
    positive or without a negative give 0. The result is
    ``loss_weight · Σ_i w_i L_i / (Σ_i w_i + eps)`` with eps the float32 epsilon.

    Args:
        logits: Dot-product similarities of shape (P, R) (key positives × reference samples).
        targets: Integer or bool matrix of shape (P, R); 1 for a pair of the same instance.
        weights: Row weights of shape (P,), 1 for rows with at least one positive.
        loss_weight: Multiplier of the loss (0.25 in the reference).
        pairwise: True (default, the reference) takes the log-sum-exp over the P_i·N_i
            pairwise differences plus one 0 term: bit-identical to mmtracking, memory
            O(P·R²). False uses the equivalent closed form
            ``softplus(logsumexp_{j∈N_i} s_ij + logsumexp_{k∈P_i} −s_ik)`` in O(P·R) memory;
            it differs from the reference only by float rounding.

    Returns:
        0-d tensor.

    Raises:
        ValueError: If the shapes disagree or ``targets`` holds negative values.
    """
    _check_matrix_and_targets("logits", logits, targets)
    if weights.shape != logits.shape[:1]:
        raise ValueError(
            f"weights must have shape ({logits.shape[0]},); got {tuple(weights.shape)}."
        )
    positive = targets >= 1
    negative = targets == 0
    if pairwise:
        row_losses = _pairwise_log_sum_exp(logits, positive, negative)
    else:
        row_losses = _closed_form(logits, positive, negative)
    weights = weights.to(row_losses.dtype)
    return loss_weight * weighted_mean(row_losses, weights, weights.sum())


def _pairwise_log_sum_exp(logits: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """Per-row log(1 + Σ_pairs exp(s_j − s_k)), laid out as the reference (index k·R + j)."""
    num_rows, num_cols = logits.shape
    # differences[i, k, j] = s_ij − s_ik; kept only for k positive and j negative.
    differences = logits[:, None, :] - logits[:, :, None]
    pair_mask = positive[:, :, None] & negative[:, None, :]
    differences = differences.masked_fill(~pair_mask, float("-inf"))
    flat = differences.reshape(num_rows, num_cols * num_cols)
    # The extra 0 term is the "1 +" and keeps rows without pairs finite (log 1 = 0).
    padded = torch.nn.functional.pad(flat, (0, 1), value=0.0)
    return torch.logsumexp(padded, dim=1)


def _closed_form(logits: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """Per-row softplus(LSE_neg(s) + LSE_pos(−s)); rows without pairs give exactly 0."""
    valid = positive.any(dim=1) & negative.any(dim=1)
    # A finite fill (not -inf) keeps the gradient of rows without pairs at 0 instead of NaN.
    very_negative = torch.finfo(logits.dtype).min / 4
    negative_term = torch.logsumexp(logits.masked_fill(~negative, very_negative), dim=1)
    positive_term = torch.logsumexp((-logits).masked_fill(~positive, very_negative), dim=1)
    row_losses = torch.nn.functional.softplus(negative_term + positive_term)
    return torch.where(valid, row_losses, torch.zeros_like(row_losses))


def embedding_l2_loss(
    cosine: Tensor,
    targets: Tensor,
    *,
    neg_pos_ub: float = 3,
    pos_margin: float = 0.0,
    neg_margin: float = 0.1,
    hard_mining: bool = True,
    loss_weight: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Auxiliary squared-error loss on cosine similarities of one image (mmtracking ``L2Loss``).

    1. Positive entries (``targets == 1``) minus ``pos_margin`` (when > 0), negative entries
       (``targets == 0``) minus ``neg_margin`` (when > 0); then clamp every entry to [0, 1].
    2. Entry loss ``(c' − t)²``.
    3. If ``#neg / (#pos + 1e-6) > neg_pos_ub`` (and ``neg_pos_ub > 0``), keep only
       ``neg_pos_ub · #pos`` negatives: the largest losses with ``hard_mining``, otherwise a
       random subset; the others get weight 0. With ``#pos = 0`` no negative is kept and the
       loss is 0.
    4. ``loss_weight · Σ weighted entries / (#entries with weight > 0 + eps)``.

    Unlike the reference, the inputs are **not** modified: mmtracking's ``update_weight``
    subtracts the margins from ``cosine`` and writes −1 into ``targets`` in place.

    Args:
        cosine: Cosine similarities of shape (P, R) (key positives × reference samples).
        targets: Integer or bool matrix of shape (P, R); 1 for a pair of the same instance.
        neg_pos_ub: Upper bound of the negative/positive ratio (3); <= 0 disables it.
        pos_margin: Margin subtracted from positives (0).
        neg_margin: Margin subtracted from negatives (0.1).
        hard_mining: Keep the hardest negatives (True) or a random subset (False).
        loss_weight: Multiplier of the loss (1.0).
        generator: Random generator for ``hard_mining=False``.

    Returns:
        0-d tensor; 0 (connected to the graph) for an empty matrix, where the reference
        would fail an assertion.

    Raises:
        ValueError: If the shapes disagree or ``targets`` holds negative values.
    """
    _check_matrix_and_targets("cosine", cosine, targets)
    if cosine.numel() == 0:
        return cosine.sum() * 0.0
    positive = targets == 1
    negative = targets == 0
    margins = torch.zeros_like(cosine)
    if pos_margin > 0:
        margins = margins.masked_fill(positive, pos_margin)
    if neg_margin > 0:
        margins = margins.masked_fill(negative, neg_margin)
    prediction = (cosine - margins).clamp(min=0.0, max=1.0)
    target_values = targets.to(prediction.dtype)
    entry_losses = (prediction - target_values).abs() ** 2

    weights = torch.ones_like(entry_losses)
    num_pos = int(positive.sum())
    num_neg = int(negative.sum())
    if neg_pos_ub > 0 and num_neg / (num_pos + 1e-6) > neg_pos_ub:
        num_kept = int(num_pos * neg_pos_ub)
        negative_index = torch.nonzero(negative)
        if hard_mining:
            costs = entry_losses.detach()[negative_index[:, 0], negative_index[:, 1]]
            kept = negative_index[costs.topk(num_kept).indices]
        else:
            order = torch.randperm(len(negative_index), generator=generator)[:num_kept]
            kept = negative_index[order.to(negative_index.device)]
        kept_mask = torch.zeros_like(negative)
        kept_mask[kept[:, 0], kept[:, 1]] = True
        weights = weights.masked_fill(negative & ~kept_mask, 0.0)
    avg_factor = (weights > 0).sum()
    return loss_weight * weighted_mean(entry_losses, weights, avg_factor)
