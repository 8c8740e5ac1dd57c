"""The quasi-dense track head: RoI extraction, embedding, sampling and losses (reference b, c).

Equivalent of mmtracking's ``QuasiDenseTrackHead`` with its MOT17 ``train_cfg``. Submodule
names give the state-dict prefix ``embed_head.``, which becomes ``track_head.embed_head.`` in the
full model, as in the released checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qdtrack.model.embed_head import QuasiDenseEmbedHead
from qdtrack.model.losses import embedding_l2_loss, multi_pos_cross_entropy
from qdtrack.model.roi_extractor import MultiLevelRoIExtractor
from qdtrack.model.sampling import (
    SamplingResult,
    assign_max_iou,
    match_instances,
    sample_proposals,
    track_targets,
)

__all__ = ["QuasiDenseTrackHead", "cosine_similarity_matrix"]


def cosine_similarity_matrix(key_embeds: Tensor, ref_embeds: Tensor) -> Tensor:
    """Cosine similarities (P, R) of (P, D) and (R, D) embeddings (``F.normalize`` eps 1e-12)."""
    return F.normalize(key_embeds, p=2, dim=1) @ F.normalize(ref_embeds, p=2, dim=1).t()


class QuasiDenseTrackHead(nn.Module):
    """Quasi-dense similarity learning head.

    Training (:meth:`forward_train`): on each key/reference pair, proposals are assigned to the
    gts (max IoU, pos >= 0.7, neg < 0.5), sampled (256, half positives, instance balanced,
    negatives <= 3 × positives, gts added as proposals), embedded (key positives; all reference
    samples) and compared: ``loss_track`` is the multi-positive cross-entropy on dot products
    (× 0.25), ``loss_track_aux`` the margin L2 loss on cosine similarities; both are averaged
    over the images of the batch.

    Inference (:meth:`forward` / :meth:`embed`): embeddings (ΣK, 256) of given boxes.

    Args:
        roi_extractor: RoI feature extractor; default: the reference's 7×7 aligned RoIAlign on
            P2–P5.
        embed_head: Embedding network; default: the reference's 4 conv + 1 fc head.
        pos_iou_thr: Assigner: minimum IoU of a positive proposal.
        neg_iou_thr: Assigner: IoU below which a proposal is negative.
        min_pos_iou: Assigner: minimum IoU of a low-quality match (unused while
            ``match_low_quality`` is False, as in the reference).
        match_low_quality: Assigner: give every gt its best-matching proposals.
        num_samples: Sampler: samples per image.
        pos_fraction: Sampler: maximum fraction of positives.
        neg_pos_ub: Sampler: maximum negative/positive ratio.
        track_loss_weight: Weight of ``loss_track``.
        aux_loss_weight: Weight of ``loss_track_aux``; 0 drops the auxiliary loss.
        aux_neg_pos_ub: L2 loss: negative/positive ratio of hard mining.
        aux_pos_margin: L2 loss: margin of positives.
        aux_neg_margin: L2 loss: margin of negatives.
        aux_hard_mining: L2 loss: keep the hardest negatives (else random ones).
    """

    def __init__(
        self,
        *,
        roi_extractor: MultiLevelRoIExtractor | None = None,
        embed_head: QuasiDenseEmbedHead | None = None,
        # assignment and sampling (track_head.train_cfg)
        pos_iou_thr: float = 0.7,
        neg_iou_thr: float = 0.5,
        min_pos_iou: float = 0.5,
        match_low_quality: bool = False,
        num_samples: int = 256,
        pos_fraction: float = 0.5,
        neg_pos_ub: float = 3,
        # losses
        track_loss_weight: float = 0.25,
        aux_loss_weight: float = 1.0,
        aux_neg_pos_ub: float = 3,
        aux_pos_margin: float = 0.0,
        aux_neg_margin: float = 0.1,
        aux_hard_mining: bool = True,
    ) -> None:
        super().__init__()
        self.roi_extractor = (
            roi_extractor if roi_extractor is not None else MultiLevelRoIExtractor()
        )
        self.embed_head = embed_head if embed_head is not None else QuasiDenseEmbedHead()
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.match_low_quality = match_low_quality
        self.num_samples = num_samples
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.track_loss_weight = track_loss_weight
        self.aux_loss_weight = aux_loss_weight
        self.aux_neg_pos_ub = aux_neg_pos_ub
        self.aux_pos_margin = aux_pos_margin
        self.aux_neg_margin = aux_neg_margin
        self.aux_hard_mining = aux_hard_mining

    def embed(self, features: Sequence[Tensor], boxes_per_image: Sequence[Tensor]) -> Tensor:
        """Embeddings of boxes.

        Args:
            features: FPN maps finest first, each (B, C, H_l, W_l); P6 may be included.
            boxes_per_image: One (K_i, 4) xyxy tensor per image, network-input coordinates
                (a fifth score column is ignored).

        Returns:
            Tensor (ΣK_i, embed_channels) in the order of the concatenated boxes.
        """
        boxes = [b[:, :4].detach() for b in boxes_per_image]
        if torch.jit.is_tracing():
            # ONNX has GroupNorm only as a reshape to (N, groups, -1), which fails for N = 0:
            # a traced graph (``qdtrack export``) embeds one extra empty box and drops it.
            boxes[-1] = torch.cat([boxes[-1], boxes[-1].new_zeros((1, 4))])
            return self.embed_head(self.roi_extractor(features, boxes))[:-1]
        return self.embed_head(self.roi_extractor(features, boxes))

    def forward(self, features: Sequence[Tensor], boxes_per_image: Sequence[Tensor]) -> Tensor:
        """Same as :meth:`embed` (inference)."""
        return self.embed(features, boxes_per_image)

    def sample(
        self, proposals: Tensor, gt_boxes: Tensor, generator: torch.Generator | None
    ) -> SamplingResult:
        """Assign and sample the proposals of one image (gts are added as proposals)."""
        proposals = proposals[:, :4].detach()
        assign = assign_max_iou(
            proposals,
            gt_boxes,
            pos_iou_thr=self.pos_iou_thr,
            neg_iou_thr=self.neg_iou_thr,
            min_pos_iou=self.min_pos_iou,
            match_low_quality=self.match_low_quality,
        )
        return sample_proposals(
            assign,
            proposals,
            gt_boxes,
            num=self.num_samples,
            pos_fraction=self.pos_fraction,
            neg_pos_ub=self.neg_pos_ub,
            add_gt_as_proposals=True,
            instance_balanced=True,
            generator=generator,
        )

    def forward_train(
        self,
        key_feats: Sequence[Tensor],
        ref_feats: Sequence[Tensor],
        key_proposals: Sequence[Tensor],
        ref_proposals: Sequence[Tensor],
        key_gt_boxes: Sequence[Tensor],
        ref_gt_boxes: Sequence[Tensor],
        key_instance_ids: Sequence[Tensor],
        ref_instance_ids: Sequence[Tensor],
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Track losses of a batch of key/reference pairs.

        Args:
            key_feats: Key-frame FPN maps, each (B, C, H_l, W_l).
            ref_feats: Reference-frame FPN maps, each (B, C, H_l, W_l).
            key_proposals: Per image (N_i, 4 or 5) key proposals (train RPN setting), xyxy.
            ref_proposals: Per image (M_i, 4 or 5) reference proposals (test RPN setting).
            key_gt_boxes: Per image (G_i, 4) key gt boxes, xyxy, network-input coordinates.
            ref_gt_boxes: Per image (H_i, 4) reference gt boxes.
            key_instance_ids: Per image (G_i,) instance ids of the key gts.
            ref_instance_ids: Per image (H_i,) instance ids of the reference gts.
            generator: Random generator (CPU) for the samplers.

        Returns:
            ``{"loss_track": 0-d, "loss_track_aux": 0-d}`` (the latter only when
            ``aux_loss_weight > 0``).

        Raises:
            ValueError: If the per-image lists differ in length.
        """
        per_image = [
            key_proposals,
            ref_proposals,
            key_gt_boxes,
            ref_gt_boxes,
            key_instance_ids,
            ref_instance_ids,
        ]
        num_images = len(key_proposals)
        if num_images == 0 or any(len(values) != num_images for values in per_image):
            raise ValueError(
                "key/reference proposals, gt boxes and instance ids need one entry per image; "
                f"got lengths {[len(values) for values in per_image]}."
            )
        # Key then reference per image, the reference's order of random draws.
        key_samples, ref_samples = [], []
        for index in range(num_images):
            key_samples.append(self.sample(key_proposals[index], key_gt_boxes[index], generator))
            ref_samples.append(self.sample(ref_proposals[index], ref_gt_boxes[index], generator))
        key_embeds = self.embed(key_feats, [s.pos_boxes for s in key_samples])
        ref_embeds = self.embed(ref_feats, [s.sampled_boxes for s in ref_samples])
        # The losses in float32 whatever autocast ran the head in (a bfloat16 or float16
        # logit carries 8 or 11 bits: too coarse for a softmax over hundreds of RoIs).
        key_embeds_per_image = key_embeds.float().split([len(s.pos_index) for s in key_samples])
        ref_embeds_per_image = ref_embeds.float().split([len(s.sampled_boxes) for s in ref_samples])

        with torch.autocast(key_embeds.device.type, enabled=False):
            track_losses, aux_losses = [], []
            for index in range(num_images):
                key_to_ref_gt = match_instances(key_instance_ids[index], ref_instance_ids[index])
                targets, weights = track_targets(
                    key_samples[index].pos_assigned_gt,
                    ref_samples[index].sampled_assigned_gt,
                    key_to_ref_gt.to(key_samples[index].gt_index.device),
                )
                key_embed, ref_embed = key_embeds_per_image[index], ref_embeds_per_image[index]
                logits = key_embed @ ref_embed.t()
                track_losses.append(
                    multi_pos_cross_entropy(
                        logits,
                        targets,
                        weights.to(logits.device),
                        loss_weight=self.track_loss_weight,
                    )
                )
                if self.aux_loss_weight > 0:
                    aux_losses.append(
                        embedding_l2_loss(
                            cosine_similarity_matrix(key_embed, ref_embed),
                            targets,
                            neg_pos_ub=self.aux_neg_pos_ub,
                            pos_margin=self.aux_pos_margin,
                            neg_margin=self.aux_neg_margin,
                            hard_mining=self.aux_hard_mining,
                            loss_weight=self.aux_loss_weight,
                            generator=generator,
                        )
                    )
        losses = {"loss_track": torch.stack(track_losses).sum() / num_images}
        if aux_losses:
            losses["loss_track_aux"] = torch.stack(aux_losses).sum() / num_images
        return losses
