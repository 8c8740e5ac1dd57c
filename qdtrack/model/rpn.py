"""Region proposal network with the reference (mmdet 2.x ``RPNHead``) settings.

Pure box-coding functions first (the RoI head uses them too), then
:class:`RegionProposalNetwork`. Assignment and sampling are mmdet's ``MaxIoUAssigner`` and
``RandomSampler`` from :mod:`qdtrack.model.sampling`. Reference behaviour,
docs/reference-behaviour.md a.4
and docs/checkpoint-keys.md items 4-7 and 11, each a named option whose default is the reference:

* sigmoid objectness, top ``nms_pre`` per level ranked by score (2000 train / 1000 test),
  per-level NMS 0.7, ``max_per_img`` 1000;
* decoding with means 0 / stds 1, dw and dh clamped to +-|ln(16/1000)| on **both** sides
  (``clamp_dwh_both_sides=True``; torchvision clamps only the upper side);
* **no clipping** to the image (``clip_border=False``; torchvision always clips);
* keep boxes with w > 0 and h > 0 (``min_bbox_size=0``; torchvision drops < 1e-3);
* training targets: ``MaxIoUAssigner(0.7, 0.3, min_pos_iou=0.3, match_low_quality=True)``,
  ``RandomSampler(256, 0.5)``, anchors outside each image's own padded area ignored.

Loss averaging (mmdet ``AnchorHead.loss``): both losses are sums over the batch divided by
``sum_i max(#pos_i, 1) + sum_i max(#neg_i, 1)``, the number of sampled anchors of the batch
(with each image counting at least one positive and one negative). BCE-with-logits on every
sampled anchor; SmoothL1 (beta 1/9) on the 4 deltas of positive anchors only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.onnx.operators import shape_as_tensor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import batched_nms

from qdtrack.model.anchors import AnchorGenerator, valid_anchor_mask
from qdtrack.model.preprocess import ImageBatch
from qdtrack.model.sampling import assign_max_iou, sample_proposals

#: mmdet ``wh_ratio_clip``: log-size deltas are clamped to +-|ln(16/1000)| = +-4.135.
WH_RATIO_CLIP = 16 / 1000

# ---------------------------------------------------------------------------------------------
# Box coding and overlaps
# ---------------------------------------------------------------------------------------------


def encode_deltas(
    boxes: Tensor, targets: Tensor, stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0)
) -> Tensor:
    """Regression targets ``(dx, dy, dw, dh) / stds`` from (N, 4) boxes to (N, 4) targets.

    mmdet ``DeltaXYWHBBoxCoder.encode`` with means 0 (no +1 in widths). Equal to torchvision's
    ``BoxCoder(weights=1/stds)``.
    """
    pw, ph = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    px, py = boxes[:, 0] + 0.5 * pw, boxes[:, 1] + 0.5 * ph
    gw, gh = targets[:, 2] - targets[:, 0], targets[:, 3] - targets[:, 1]
    gx, gy = targets[:, 0] + 0.5 * gw, targets[:, 1] + 0.5 * gh
    deltas = torch.stack(
        [(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=1
    )
    return deltas / deltas.new_tensor(stds)


def decode_deltas(
    boxes: Tensor,
    deltas: Tensor,
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    *,
    wh_ratio_clip: float = WH_RATIO_CLIP,
    clamp_dwh_both_sides: bool = True,
) -> Tensor:
    """Apply (N, 4) or (N, 4k) deltas to (N, 4) boxes (mmdet ``delta2bbox``, no clipping).

    Args:
        boxes: (N, 4) xyxy reference boxes (anchors or proposals).
        deltas: (N, 4k) ``(dx, dy, dw, dh)`` per group of 4 columns, in units of ``stds``.
        stds: the coder's stds (RPN 1, RCNN (0.1, 0.1, 0.2, 0.2)).
        wh_ratio_clip: dw, dh are clamped to ``|ln(wh_ratio_clip)|``.
        clamp_dwh_both_sides: ``True`` (reference) clamps to ``[-c, c]``; ``False`` only to
            ``(-inf, c]`` as torchvision's ``BoxCoder``.

    Returns:
        (N, 4k) decoded xyxy boxes.
    """
    num, width = deltas.shape
    deltas = deltas.reshape(num, width // 4, 4) * deltas.new_tensor(stds)
    max_ratio = abs(math.log(wh_ratio_clip))
    min_ratio = -max_ratio if clamp_dwh_both_sides else None
    dwh = deltas[..., 2:].clamp(min=min_ratio, max=max_ratio)
    pxy = ((boxes[:, :2] + boxes[:, 2:]) * 0.5)[:, None, :]
    pwh = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    gxy = pxy + pwh * deltas[..., :2]
    gwh = pwh * dwh.exp()
    return torch.cat([gxy - 0.5 * gwh, gxy + 0.5 * gwh], dim=-1).reshape(num, width)


def clip_boxes(boxes: Tensor, image_size: tuple[int, int] | tuple[Tensor, Tensor]) -> Tensor:
    """Clip (N, 4k) xyxy boxes to an (h, w) image (torchvision behaviour, off by default).

    The size may be two 0-d tensors (the ONNX export keeps it a graph value that way).
    """
    height, width = (torch.as_tensor(v, dtype=boxes.dtype, device=boxes.device) for v in image_size)
    shaped = boxes.reshape(boxes.shape[0], boxes.shape[1] // 4, 4)
    x = torch.minimum(shaped[..., 0::2].clamp(min=0), width)
    y = torch.minimum(shaped[..., 1::2].clamp(min=0), height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1).reshape(boxes.shape)


# ---------------------------------------------------------------------------------------------
# The RPN
# ---------------------------------------------------------------------------------------------


class RPNOutput(NamedTuple):
    """Raw per-level RPN head outputs, flattened location-major / anchor-minor.

    Attributes:
        objectness: per level (B, H_l * W_l * A) logits.
        deltas: per level (B, H_l * W_l * A, 4) regression deltas.
        anchors: per level (H_l * W_l * A, 4) xyxy anchors (shared by the batch).
        feature_sizes: per level the (H_l, W_l) of the feature map.
    """

    objectness: list[Tensor]
    deltas: list[Tensor]
    anchors: list[Tensor]
    feature_sizes: list[tuple[int, int]]


class RegionProposalNetwork(nn.Module):
    """Anchor-based RPN: head, proposal generation and training loss.

    Submodule ``head`` is torchvision's ``RPNHead`` (``head.conv.0.0``, ``head.cls_logits``,
    ``head.bbox_pred``) so the mmtracking ``rpn_head.*`` weights map onto it.

    Args:
        in_channels: FPN channels.
        anchor_generator: anchors per level; reference generator when ``None``.
        nms_pre_train: top-scored boxes kept per level before NMS for training proposals.
        nms_pre_test: the same at test (and for the reference frame in training).
        nms_iou_thr: per-level NMS IoU threshold.
        max_per_img: proposals kept per image after NMS.
        min_bbox_size: boxes need width and height strictly greater than this.
        pos_iou_thr: assigner positive threshold.
        neg_iou_thr: assigner negative threshold.
        min_pos_iou: assigner low-quality threshold.
        match_low_quality: assigner low-quality matching.
        num_samples: anchors sampled per image for the loss.
        pos_fraction: maximum positive fraction of the samples.
        smooth_l1_beta: SmoothL1 beta of the regression loss.
        clip_border: clip proposals to the image (torchvision; reference ``False``).
        clamp_dwh_both_sides: clamp dw/dh from below too (reference ``True``).
    """

    def __init__(
        self,
        *,
        in_channels: int = 256,
        anchor_generator: AnchorGenerator | None = None,
        # proposal generation
        nms_pre_train: int = 2000,
        nms_pre_test: int = 1000,
        nms_iou_thr: float = 0.7,
        max_per_img: int = 1000,
        min_bbox_size: float = 0.0,
        # training targets and loss
        pos_iou_thr: float = 0.7,
        neg_iou_thr: float = 0.3,
        min_pos_iou: float = 0.3,
        match_low_quality: bool = True,
        num_samples: int = 256,
        pos_fraction: float = 0.5,
        smooth_l1_beta: float = 1.0 / 9.0,
        # deviations from torchvision
        clip_border: bool = False,
        clamp_dwh_both_sides: bool = True,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator or AnchorGenerator()
        self.head = RPNHead(in_channels, self.anchor_generator.num_anchors_per_location)
        self.nms_pre_train = nms_pre_train
        self.nms_pre_test = nms_pre_test
        self.nms_iou_thr = nms_iou_thr
        self.max_per_img = max_per_img
        self.min_bbox_size = min_bbox_size
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.match_low_quality = match_low_quality
        self.num_samples = num_samples
        self.pos_fraction = pos_fraction
        self.smooth_l1_beta = smooth_l1_beta
        self.clip_border = clip_border
        self.clamp_dwh_both_sides = clamp_dwh_both_sides

    def forward(self, features: Sequence[Tensor]) -> RPNOutput:
        """Run the head on P2..P6.

        Args:
            features: per level a (B, C, H_l, W_l) FPN map.

        Returns:
            The flattened :class:`RPNOutput`.
        """
        logits, deltas = self.head(list(features))
        batch = features[0].shape[0]
        objectness = [x.permute(0, 2, 3, 1).reshape(batch, -1) for x in logits]
        regression = [x.permute(0, 2, 3, 1).reshape(batch, -1, 4) for x in deltas]
        sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in features]
        return RPNOutput(objectness, regression, self.anchor_generator(features), sizes)

    # -- proposals --------------------------------------------------------------------------

    def proposals(self, output: RPNOutput, batch: ImageBatch, *, training: bool) -> list[Tensor]:
        """Proposals per image, sorted by descending score (computed without gradient).

        Args:
            output: head outputs.
            batch: the images (sizes for optional clipping).
            training: use ``nms_pre_train`` (key frame) instead of ``nms_pre_test``.

        Returns:
            Per image a (P_i, 5) tensor ``(x1, y1, x2, y2, score)`` in network-input pixels,
            ``P_i <= max_per_img``.
        """
        nms_pre = self.nms_pre_train if training else self.nms_pre_test
        with torch.no_grad():
            return [
                self._proposals_single(
                    [x[i] for x in output.objectness],
                    [x[i] for x in output.deltas],
                    output.anchors,
                    batch.image_sizes[i],
                    nms_pre,
                )
                for i in range(len(batch))
            ]

    def _proposals_single(
        self,
        logits: list[Tensor],
        deltas: list[Tensor],
        anchors: list[Tensor],
        image_size: tuple[int, int],
        nms_pre: int,
    ) -> Tensor:
        scores_all, deltas_all, anchors_all, levels_all = [], [], [], []
        for level, (logit, delta, anchor) in enumerate(zip(logits, deltas, anchors, strict=True)):
            scores = logit.sigmoid()
            if nms_pre > 0 and torch.jit.is_tracing():
                # ONNX export with dynamic H/W: the level's size is a run-time value, so the
                # min(nms_pre, size) is taken in the graph (torchvision's ``_topk_min``).
                num_top = torch.clamp(shape_as_tensor(scores)[0], max=nms_pre)
                scores, top = scores.topk(num_top, sorted=True)  # type: ignore[arg-type]
                delta, anchor = delta[top], anchor[top]
            elif 0 < nms_pre < scores.numel():
                scores, top = scores.topk(nms_pre, sorted=True)
                delta, anchor = delta[top], anchor[top]
            scores_all.append(scores)
            deltas_all.append(delta)
            anchors_all.append(anchor)
            levels_all.append(torch.full_like(scores, level, dtype=torch.long))
        scores = torch.cat(scores_all)
        levels = torch.cat(levels_all)
        boxes = decode_deltas(
            torch.cat(anchors_all),
            torch.cat(deltas_all),
            clamp_dwh_both_sides=self.clamp_dwh_both_sides,
        )
        if self.clip_border:
            boxes = clip_boxes(boxes, image_size)
        widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (widths > self.min_bbox_size) & (heights > self.min_bbox_size)
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        order = batched_nms(boxes, scores, levels, self.nms_iou_thr)[: self.max_per_img]
        return torch.cat([boxes[order], scores[order, None]], dim=1)

    # -- loss -------------------------------------------------------------------------------

    def loss(
        self,
        output: RPNOutput,
        batch: ImageBatch,
        gt_boxes: Sequence[Tensor],
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """``loss_rpn_cls`` (BCE) and ``loss_rpn_bbox`` (SmoothL1) of a batch.

        Args:
            output: head outputs.
            batch: the images (per-image padded sizes define the valid anchors).
            gt_boxes: per image a (K_i, 4) xyxy tensor in network-input pixels (K_i may be 0).
            generator: random generator for the sampler.

        Returns:
            ``{"loss_rpn_cls": scalar, "loss_rpn_bbox": scalar}``.
        """
        anchors = torch.cat(output.anchors)
        # float32 losses also when autocast ran the head in a 16-bit type
        logits = torch.cat(output.objectness, dim=1).float()
        deltas = torch.cat(output.deltas, dim=1).float()
        cls_sum = logits.new_zeros(())
        box_sum = logits.new_zeros(())
        num_sampled = 0
        for i in range(len(batch)):
            valid = self._valid_anchors(output, batch.pad_sizes[i]).to(anchors.device)
            pos, neg, targets = self._sample_single(anchors, valid, gt_boxes[i], generator)
            labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).to(logits.dtype)
            cls_sum = cls_sum + F.binary_cross_entropy_with_logits(
                logits[i, torch.cat([pos, neg])], labels, reduction="sum"
            )
            box_sum = box_sum + F.smooth_l1_loss(
                deltas[i, pos], targets, beta=self.smooth_l1_beta, reduction="sum"
            )
            # mmdet counts at least one positive and one negative per image.
            num_sampled += max(pos.numel(), 1) + max(neg.numel(), 1)
        return {"loss_rpn_cls": cls_sum / num_sampled, "loss_rpn_bbox": box_sum / num_sampled}

    def _valid_anchors(self, output: RPNOutput, pad_size: tuple[int, int]) -> Tensor:
        """(sum_l H_l * W_l * A,) mask of anchors inside one image's padded area."""
        num_base = self.anchor_generator.num_anchors_per_location
        return torch.cat(
            [
                valid_anchor_mask(size, stride, pad_size, num_base)
                for size, stride in zip(
                    output.feature_sizes, self.anchor_generator.strides, strict=True
                )
            ]
        )

    def _sample_single(
        self,
        anchors: Tensor,
        valid: Tensor,
        gt_boxes: Tensor,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sampled positive / negative anchor indices and the positives' regression targets."""
        valid_index = torch.nonzero(valid).flatten()
        valid_anchors = anchors[valid_index]
        assign = assign_max_iou(
            valid_anchors,
            gt_boxes,
            pos_iou_thr=self.pos_iou_thr,
            neg_iou_thr=self.neg_iou_thr,
            min_pos_iou=self.min_pos_iou,
            match_low_quality=self.match_low_quality,
        )
        sampled = sample_proposals(
            assign,
            valid_anchors,
            gt_boxes,
            num=self.num_samples,
            pos_fraction=self.pos_fraction,
            neg_pos_ub=-1,
            add_gt_as_proposals=False,
            instance_balanced=False,
            generator=generator,
        )
        targets = encode_deltas(sampled.pos_boxes, gt_boxes[sampled.pos_assigned_gt])
        return valid_index[sampled.pos_index], valid_index[sampled.neg_index], targets
