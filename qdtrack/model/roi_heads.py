"""Box head of the detector: Shared2FC + class-specific regression, reference settings.

Module names follow torchvision (``box_head.fc6``, ``box_head.fc7``,
``box_predictor.cls_score``, ``box_predictor.bbox_pred``) with torchvision's class order:
row 0 is background and class ``c`` (0-based label) is row ``c + 1``. The mmtracking weights
map onto it with the row swap of docs/checkpoint-keys.md. Reference behaviour
(docs/reference-behaviour.md
a.5, docs/checkpoint-keys.md items 6-8, 10, 12):

* RoIs pooled with :class:`~qdtrack.model.roi_extractor.MultiLevelRoIExtractor` (RoIAlign
  7x7, ``aligned=True``, ``sampling_ratio=0``, mmdet level rule) on P2..P5;
* training: ``MaxIoUAssigner(0.5, 0.5, min_pos_iou=0.5)`` without low-quality matches, gt
  boxes prepended to the proposals, ``RandomSampler(512, 0.25)``; cross-entropy averaged over
  the sampled RoIs of the batch; **L1** on the positives' deltas of their class, summed and
  divided by the number of sampled RoIs of the batch (mmdet ``BBoxHead.loss``);
* test: softmax, decode with stds (0.1, 0.1, 0.2, 0.2) without clipping (``clip_border=False``),
  **divide by the scale factor before NMS** (NMS in original-frame pixels), score > 0.05
  (strict), class-wise NMS 0.5, at most 100 detections per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import batched_nms

from qdtrack.model.roi_extractor import MultiLevelRoIExtractor
from qdtrack.model.rpn import clip_boxes, decode_deltas, encode_deltas
from qdtrack.model.sampling import assign_max_iou, sample_proposals

#: mmdet RCNN coder stds; torchvision ``BoxCoder`` weights (10, 10, 5, 5) are their inverse.
RCNN_STDS: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
BACKGROUND = 0


class BoxHeadTargets(NamedTuple):
    """Sampled RoIs of one image and their targets.

    Attributes:
        rois: (S, 4) xyxy boxes, positives first, then negatives.
        labels: (S,) int64 torchvision class rows (0 = background, label + 1 otherwise).
        deltas: (P, 4) regression targets of the P positives (in units of the stds).
    """

    rois: Tensor
    labels: Tensor
    deltas: Tensor


class DetectionResult(NamedTuple):
    """Final detections of one image (original-frame pixels).

    Attributes:
        boxes_xyxy: (N, 4) float32 boxes.
        scores: (N,) float32 class probabilities.
        labels: (N,) int64 0-based class indices.
    """

    boxes_xyxy: Tensor
    scores: Tensor
    labels: Tensor


def box_head_loss(
    class_logits: Tensor, box_deltas: Tensor, labels: Tensor, target_deltas: Tensor
) -> dict[str, Tensor]:
    """Cross-entropy and L1 losses of the sampled RoIs of a batch (mmdet ``BBoxHead.loss``).

    Args:
        class_logits: (S, C + 1) logits, torchvision class order.
        box_deltas: (S, 4 (C + 1)) class-specific deltas.
        labels: (S,) int64 class rows (0 = background).
        target_deltas: (P, 4) targets of the rows with ``labels > 0``, in order.

    Returns:
        ``{"loss_cls": scalar, "loss_bbox": scalar}``; ``loss_bbox`` is 0 without positives.
    """
    num_sampled = max(labels.numel(), 1)
    # float32 losses also when autocast ran the head in a 16-bit type
    class_logits, box_deltas = class_logits.float(), box_deltas.float()
    loss_cls = F.cross_entropy(class_logits, labels, reduction="sum") / num_sampled
    positive = torch.nonzero(labels > BACKGROUND).flatten()
    deltas = box_deltas.reshape(box_deltas.shape[0], class_logits.shape[1], 4)
    deltas = deltas[positive, labels[positive]]
    loss_bbox = F.l1_loss(deltas, target_deltas, reduction="sum") / num_sampled
    return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}


def multiclass_nms(
    boxes: Tensor,
    scores: Tensor,
    *,
    score_thr: float,
    iou_thr: float,
    max_per_img: int,
) -> DetectionResult:
    """mmdet ``multiclass_nms``: per-class candidates above ``score_thr``, class-wise NMS.

    Args:
        boxes: (R, C, 4) boxes for the C foreground classes.
        scores: (R, C) foreground probabilities.
        score_thr: keep ``score > score_thr`` (strict).
        iou_thr: NMS IoU threshold, applied within each class.
        max_per_img: keep the best this many after NMS.

    Returns:
        :class:`DetectionResult` sorted by descending score.
    """
    num_classes = scores.shape[1]
    labels = torch.arange(num_classes, device=scores.device).expand_as(scores).reshape(-1)
    flat_boxes, flat_scores = boxes.reshape(-1, 4), scores.reshape(-1)
    valid = torch.nonzero(flat_scores > score_thr).flatten()
    flat_boxes, flat_scores, labels = flat_boxes[valid], flat_scores[valid], labels[valid]
    keep = batched_nms(flat_boxes, flat_scores, labels, iou_thr)[:max_per_img]
    return DetectionResult(flat_boxes[keep], flat_scores[keep], labels[keep])


def split_rows(rows: Tensor, per_image: Sequence[Tensor]) -> list[Tensor]:
    """Split ``rows`` (ΣK_i, ...) into one chunk per image, ``K_i = len(per_image[i])``.

    One image keeps the tensor whole, so a traced (ONNX) graph does not freeze the
    data-dependent row count of the trace into a ``Split``.
    """
    if len(per_image) == 1:
        return [rows]
    return list(rows.split([int(p.shape[0]) for p in per_image]))


class RoIHeads(nn.Module):
    """RoI pooling, Shared2FC box head, sampling, loss and post-processing.

    Args:
        num_classes: foreground classes (1 for MOT17 pedestrians).
        in_channels: FPN channels.
        representation_size: width of ``fc6`` / ``fc7`` (1024).
        roi_output_size: RoIAlign output side (7).
        roi_align_aligned: half-pixel aligned RoIAlign (reference ``True``; torchvision's
            ``MultiScaleRoIAlign`` uses ``False``).
        sampling_ratio: RoIAlign sampling points per bin (reference 0 = adaptive; torchvision 2).
        featmap_strides: strides of the pooled levels (P2..P5).
        pos_iou_thr: assigner positive threshold.
        neg_iou_thr: assigner negative threshold.
        min_pos_iou: assigner minimum IoU (only used with low-quality matching, off here).
        num_samples: RoIs sampled per image.
        pos_fraction: maximum positive fraction.
        add_gt_as_proposals: prepend the gt boxes to the proposals in training.
        score_thr: test score threshold (strict ``>``).
        nms_iou_thr: test class-wise NMS IoU.
        max_per_img: test detections per image.
        clip_border: clip decoded boxes to the image (torchvision; reference ``False``).
        clamp_dwh_both_sides: clamp dw/dh from below too (reference ``True``).
        nms_in_original_frame: divide by the scale factor before NMS (reference ``True``;
            torchvision runs NMS in network-input pixels and rescales afterwards).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1,
        in_channels: int = 256,
        representation_size: int = 1024,
        # RoI pooling
        roi_output_size: int = 7,
        roi_align_aligned: bool = True,
        sampling_ratio: int = 0,
        featmap_strides: Sequence[int] = (4, 8, 16, 32),
        # training targets
        pos_iou_thr: float = 0.5,
        neg_iou_thr: float = 0.5,
        min_pos_iou: float = 0.5,
        num_samples: int = 512,
        pos_fraction: float = 0.25,
        add_gt_as_proposals: bool = True,
        # test post-processing
        score_thr: float = 0.05,
        nms_iou_thr: float = 0.5,
        max_per_img: int = 100,
        # deviations from torchvision
        clip_border: bool = False,
        clamp_dwh_both_sides: bool = True,
        nms_in_original_frame: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.roi_extractor = MultiLevelRoIExtractor(
            output_size=roi_output_size,
            sampling_ratio=sampling_ratio,
            aligned=roi_align_aligned,
            featmap_strides=featmap_strides,
        )
        self.box_head = TwoMLPHead(in_channels * roi_output_size**2, representation_size)
        self.box_predictor = FastRCNNPredictor(representation_size, num_classes + 1)
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.num_samples = num_samples
        self.pos_fraction = pos_fraction
        self.add_gt_as_proposals = add_gt_as_proposals
        self.score_thr = score_thr
        self.nms_iou_thr = nms_iou_thr
        self.max_per_img = max_per_img
        self.clip_border = clip_border
        self.clamp_dwh_both_sides = clamp_dwh_both_sides
        self.nms_in_original_frame = nms_in_original_frame
        self._init_weights()

    def _init_weights(self) -> None:
        # mmdet Shared2FCBBoxHead init: Xavier-uniform shared fcs, Normal(0.01) fc_cls,
        # Normal(0.001) fc_reg, zero biases.
        for fc in (self.box_head.fc6, self.box_head.fc7):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.box_predictor.cls_score.weight, std=0.01)
        nn.init.normal_(self.box_predictor.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.box_predictor.cls_score.bias)
        nn.init.zeros_(self.box_predictor.bbox_pred.bias)

    def forward(self, features: Sequence[Tensor], boxes: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Class logits and deltas of per-image boxes.

        Args:
            features: FPN maps P2.. (only the first four are pooled), each (B, C, H_l, W_l).
            boxes: per image a (K_i, 4+) tensor, xyxy in network-input pixels (extra columns
                such as proposal scores are ignored).

        Returns:
            ``(class_logits (ΣK_i, C + 1), box_deltas (ΣK_i, 4 (C + 1)))``.
        """
        pooled = self.roi_extractor(features, [b[:, :4] for b in boxes])
        scores: Tensor
        deltas: Tensor
        scores, deltas = self.box_predictor(self.box_head(pooled))
        return scores, deltas

    # -- training ---------------------------------------------------------------------------

    def sample_targets(
        self,
        proposals: Tensor,
        gt_boxes: Tensor,
        gt_labels: Tensor,
        generator: torch.Generator | None = None,
    ) -> BoxHeadTargets:
        """Assign and sample the RoIs of one image.

        Args:
            proposals: (P, 4+) proposals (xyxy first), no gradient.
            gt_boxes: (K, 4) xyxy ground truth (K may be 0).
            gt_labels: (K,) int64 0-based labels.
            generator: random generator for the sampler.

        Returns:
            :class:`BoxHeadTargets`.
        """
        proposals = proposals[:, :4].detach()
        gt_boxes = gt_boxes.to(proposals.dtype)
        assign = assign_max_iou(
            proposals,
            gt_boxes,
            pos_iou_thr=self.pos_iou_thr,
            neg_iou_thr=self.neg_iou_thr,
            min_pos_iou=self.min_pos_iou,
            match_low_quality=False,
        )
        # mmdet ``add_gt_``: gts are prepended after assignment, each matched to itself.
        sampled = sample_proposals(
            assign,
            proposals,
            gt_boxes,
            num=self.num_samples,
            pos_fraction=self.pos_fraction,
            neg_pos_ub=-1,
            add_gt_as_proposals=self.add_gt_as_proposals,
            instance_balanced=False,
            generator=generator,
        )
        matched = sampled.pos_assigned_gt
        labels = torch.cat([gt_labels[matched].long() + 1, torch.zeros_like(sampled.neg_index)])
        deltas = encode_deltas(sampled.pos_boxes, gt_boxes[matched], RCNN_STDS)
        return BoxHeadTargets(sampled.sampled_boxes, labels, deltas)

    def loss(
        self,
        features: Sequence[Tensor],
        proposals: Sequence[Tensor],
        gt_boxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """``loss_cls`` and ``loss_bbox`` of a batch.

        Args:
            features: FPN maps, each (B, C, H_l, W_l).
            proposals: per image (P_i, 4+) training proposals.
            gt_boxes: per image (K_i, 4) xyxy gt in network-input pixels.
            gt_labels: per image (K_i,) 0-based labels.
            generator: random generator for the sampler.

        Returns:
            ``{"loss_cls": scalar, "loss_bbox": scalar}``.
        """
        targets = [
            self.sample_targets(p, b, lab, generator)
            for p, b, lab in zip(proposals, gt_boxes, gt_labels, strict=True)
        ]
        class_logits, box_deltas = self(features, [t.rois for t in targets])
        return box_head_loss(
            class_logits,
            box_deltas,
            torch.cat([t.labels for t in targets]),
            torch.cat([t.deltas for t in targets]),
        )

    # -- inference --------------------------------------------------------------------------

    def predict(
        self,
        features: Sequence[Tensor],
        proposals: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        scale_factors: Tensor,
    ) -> list[DetectionResult]:
        """Detections per image in original-frame pixels.

        Args:
            features: FPN maps, each (B, C, H_l, W_l).
            proposals: per image (P_i, 4+) test proposals, network-input pixels.
            image_sizes: per image the resized unpadded (h, w) (only for ``clip_border``).
            scale_factors: (B, 4) per-axis resize factors.

        Returns:
            Per image a :class:`DetectionResult`.
        """
        class_logits, box_deltas = self(features, proposals)
        results = []
        for i, (logits, deltas, rois) in enumerate(
            zip(
                split_rows(class_logits, proposals),
                split_rows(box_deltas, proposals),
                proposals,
                strict=True,
            )
        ):
            results.append(
                self._postprocess_single(
                    logits, deltas, rois[:, :4], image_sizes[i], scale_factors[i]
                )
            )
        return results

    def _postprocess_single(
        self,
        class_logits: Tensor,
        box_deltas: Tensor,
        rois: Tensor,
        image_size: tuple[int, int],
        scale_factor: Tensor,
    ) -> DetectionResult:
        """Softmax, decode, rescale, multi-class NMS for one image."""
        scores = F.softmax(class_logits, dim=-1)
        boxes = decode_deltas(
            rois, box_deltas, RCNN_STDS, clamp_dwh_both_sides=self.clamp_dwh_both_sides
        )
        if self.clip_border:
            boxes = clip_boxes(boxes, image_size)
        boxes = boxes.reshape(boxes.shape[0], self.num_classes + 1, 4)[:, BACKGROUND + 1 :]
        scale = scale_factor.to(boxes)
        if self.nms_in_original_frame:
            boxes = boxes / scale
        result = multiclass_nms(
            boxes,
            scores[:, BACKGROUND + 1 :],
            score_thr=self.score_thr,
            iou_thr=self.nms_iou_thr,
            max_per_img=self.max_per_img,
        )
        if not self.nms_in_original_frame:
            result = result._replace(boxes_xyxy=result.boxes_xyxy / scale)
        return result
