"""The QDTrack detector: ResNet-FPN backbone -> RPN -> RoI box head (Faster R-CNN).

Skeleton only; the stages live in ``backbone.py``, ``rpn.py`` and ``roi_heads.py``. Module
names equal torchvision's ``fasterrcnn_resnet50_fpn`` (``backbone.body.*``,
``backbone.fpn.*``, ``rpn.head.*``, ``roi_heads.box_head.*``, ``roi_heads.box_predictor.*``)
so the mmtracking checkpoint maps through docs/checkpoint-keys.md. The track head (another module)
consumes the FPN features and proposals this detector returns (docs/reference-behaviour.md a.10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from qdtrack.model.anchors import AnchorGenerator
from qdtrack.model.backbone import BackboneStyle, build_backbone
from qdtrack.model.preprocess import (
    DEFAULT_IMG_SCALE,
    NORMALIZATIONS,
    ImageBatch,
    Normalization,
    preprocess_frames,
)
from qdtrack.model.roi_heads import DetectionResult, RoIHeads
from qdtrack.model.rpn import RegionProposalNetwork, RPNOutput
from qdtrack.structures import Detections

#: Target dict keys (torchvision contract, but labels are 0-based class indices).
BOXES_KEY = "boxes"
LABELS_KEY = "labels"


class DetectorTrainOutput(NamedTuple):
    """What one training forward of the key frame returns.

    Attributes:
        losses: ``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_cls``, ``loss_bbox`` (scalars).
        features: P2..P6 FPN maps, each (B, 256, H/s, W/s), with gradient.
        proposals: per image the (P_i, 5) training proposals ``(x1, y1, x2, y2, score)`` in
            network-input pixels, detached (the track head samples from them).
    """

    losses: dict[str, Tensor]
    features: list[Tensor]
    proposals: list[Tensor]


class DetectorPrediction(NamedTuple):
    """Test output of a batch.

    Attributes:
        detections: per image a :class:`DetectionResult` in original-frame pixels.
        features: P2..P6 FPN maps; embed the detections on P2..P5 with the boxes multiplied
            by the batch's ``scale_factors`` (docs/reference-behaviour.md d.2 step 1).
    """

    detections: list[DetectionResult]
    features: list[Tensor]


def to_detections(result: DetectionResult, embeddings: Tensor | None = None) -> Detections:
    """Convert one image's tensors to the numpy :class:`~qdtrack.structures.Detections`."""

    def _float(t: Tensor) -> npt.NDArray[np.float32]:
        return np.asarray(t.detach().cpu().numpy(), dtype=np.float32)

    return Detections(
        boxes_xyxy=_float(result.boxes_xyxy),
        scores=_float(result.scores),
        labels=np.asarray(result.labels.detach().cpu().numpy(), dtype=np.int64),
        embeddings=None if embeddings is None else _float(embeddings),
    )


def _split_targets(
    targets: Sequence[Mapping[str, Tensor]], device: torch.device
) -> tuple[list[Tensor], list[Tensor]]:
    boxes, labels = [], []
    for index, target in enumerate(targets):
        if BOXES_KEY not in target or LABELS_KEY not in target:
            raise ValueError(f"target {index} needs '{BOXES_KEY}' and '{LABELS_KEY}' entries")
        box = target[BOXES_KEY].to(device=device, dtype=torch.float32).reshape(-1, 4)
        label = target[LABELS_KEY].to(device=device, dtype=torch.long).reshape(-1)
        if box.shape[0] != label.shape[0]:
            raise ValueError(f"target {index} has {box.shape[0]} boxes but {label.shape[0]} labels")
        if box.numel() and not bool((box[:, 2:] > box[:, :2]).all()):
            raise ValueError(f"target {index} has boxes with non-positive width or height")
        boxes.append(box)
        labels.append(label)
    return boxes, labels


class QDTrackDetector(nn.Module):
    """Faster R-CNN with the reference's settings, torchvision module names.

    Input: an :class:`~qdtrack.model.preprocess.ImageBatch` (BGR, mean-subtracted, padded to
    /32). Training targets: per image a mapping with ``"boxes"`` (K, 4) float xyxy in
    network-input pixels and ``"labels"`` (K,) int64 **0-based** class indices; K may be 0.

    Args:
        backbone: ResNet-FPN returning an ordered dict of P2..P6.
        rpn: region proposal network.
        roi_heads: box head.
        img_scale: resize limits used by :meth:`preprocess`.
        normalization: how :meth:`preprocess` (and training batches) normalise images
            (reference: caffe, BGR mean, std 1).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        img_scale: tuple[int, int] = DEFAULT_IMG_SCALE,
        normalization: Normalization = NORMALIZATIONS["caffe"],
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.img_scale = img_scale
        self.normalization = normalization

    def preprocess(self, frames_bgr: Sequence[npt.NDArray[np.uint8]]) -> ImageBatch:
        """Reference test resize + normalise + pad of raw uint8 BGR frames."""
        norm = self.normalization
        return preprocess_frames(
            frames_bgr, img_scale=self.img_scale, mean=norm.mean, std=norm.std, to_rgb=norm.to_rgb
        )

    def extract_features(self, images: Tensor) -> list[Tensor]:
        """P2..P6 of a (B, 3, H, W) batch, strides 4..64, each (B, 256, H/s, W/s)."""
        return list(self.backbone(images).values())

    def forward_train(
        self,
        batch: ImageBatch,
        targets: Sequence[Mapping[str, Tensor]],
        generator: torch.Generator | None = None,
    ) -> DetectorTrainOutput:
        """Key-frame training step: RPN and box-head losses, features and proposals.

        Args:
            batch: key frames.
            targets: per image ``{"boxes": (K, 4), "labels": (K,)}``.
            generator: random generator for the samplers (global RNG when ``None``).

        Returns:
            :class:`DetectorTrainOutput`.
        """
        if len(targets) != len(batch):
            raise ValueError(f"{len(targets)} targets for {len(batch)} images")
        gt_boxes, gt_labels = _split_targets(targets, batch.tensor.device)
        features = self.extract_features(batch.tensor)
        rpn_output = self.rpn(features)
        losses = self.rpn.loss(rpn_output, batch, gt_boxes, generator)
        proposals = self.rpn.proposals(rpn_output, batch, training=True)
        losses.update(self.roi_heads.loss(features, proposals, gt_boxes, gt_labels, generator))
        return DetectorTrainOutput(losses, features, proposals)

    def propose(self, batch: ImageBatch) -> tuple[list[Tensor], list[Tensor]]:
        """Features and test-setting proposals (the reference frame in training).

        Gradient flows into the features (the reference runs the reference frame's
        backbone with gradient); proposals are detached.

        Returns:
            ``(features P2..P6, per image (P_i, 5) proposals)``.
        """
        features = self.extract_features(batch.tensor)
        proposals = self.rpn.proposals(self.rpn(features), batch, training=False)
        return features, proposals

    def predict(self, batch: ImageBatch) -> DetectorPrediction:
        """Detections per image (original-frame pixels) and the FPN features.

        Call under ``torch.no_grad()`` and in ``eval()`` mode for inference.
        """
        features = self.extract_features(batch.tensor)
        return self.predict_from_features(features, self.rpn(features), batch)

    def predict_from_features(
        self, features: list[Tensor], rpn_output: RPNOutput, batch: ImageBatch
    ) -> DetectorPrediction:
        """:meth:`predict` after the convolutional trunk (backbone, FPN, RPN head).

        The batched ONNX export runs the trunk on a whole batch and this part image by
        image; ``batch.tensor`` is only read for its batch size.
        """
        proposals = self.rpn.proposals(rpn_output, batch, training=False)
        detections = self.roi_heads.predict(
            features, proposals, batch.image_sizes, batch.scale_factors
        )
        return DetectorPrediction(detections, features)

    def forward(
        self,
        batch: ImageBatch,
        targets: Sequence[Mapping[str, Tensor]] | None = None,
    ) -> dict[str, Tensor] | list[DetectionResult]:
        """torchvision contract: the loss dict in training, the detections in eval."""
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            return self.forward_train(batch, targets).losses
        return self.predict(batch).detections


def build_detector(
    *,
    depth: int = 50,
    num_classes: int = 1,
    style: BackboneStyle = "caffe",
    frozen_stages: int = 1,
    norm_eval: bool = True,
    backbone_weights_path: str | None = None,
    fpn_channels: int = 256,
    img_scale: tuple[int, int] = DEFAULT_IMG_SCALE,
    representation_size: int = 1024,
    rounded_anchors: bool = False,
    clip_border: bool = False,
    clamp_dwh_both_sides: bool = True,
    roi_align_aligned: bool = True,
    sampling_ratio: int = 0,
    nms_in_original_frame: bool = True,
    score_thr: float = 0.05,
    nms_iou_thr: float = 0.5,
    max_per_img: int = 100,
    normalization: str = "caffe",
) -> QDTrackDetector:
    """Build the reference detector; every non-torchvision behaviour is an option.

    Args:
        depth: ResNet depth (18, 34, 50, 101); the reference is 50.
        num_classes: foreground classes (1 = pedestrian).
        style: ``"caffe"`` (reference) or ``"pytorch"`` stride placement.
        frozen_stages: stem + this many ResNet stages frozen (reference 1).
        norm_eval: frozen BatchNorm (reference ``True``).
        backbone_weights_path: optional local torchvision ResNet state dict.
        fpn_channels: FPN output channels (reference 256; smaller only for CPU configs).
        img_scale: test resize limits (reference (1088, 1088)).
        representation_size: box head fc width (1024).
        rounded_anchors: round base anchors as torchvision (reference ``False``).
        clip_border: clip proposals and detections to the image (reference ``False``).
        clamp_dwh_both_sides: clamp dw/dh on both sides (reference ``True``).
        roi_align_aligned: half-pixel RoIAlign (reference ``True``).
        sampling_ratio: RoIAlign sampling ratio (reference 0 = adaptive).
        nms_in_original_frame: rescale boxes before the final NMS (reference ``True``).
        score_thr: test score threshold (MOT17 0.05; TAO 1e-4).
        nms_iou_thr: test class-wise NMS IoU (0.5).
        max_per_img: test detections per image (MOT17 100; TAO 300).
        normalization: a key of :data:`~qdtrack.model.preprocess.NORMALIZATIONS`
            (``caffe``, the reference; ``pytorch`` for torchvision ImageNet weights).

    Returns:
        A :class:`QDTrackDetector` in train mode.
    """
    backbone = build_backbone(
        depth,
        style=style,
        frozen_stages=frozen_stages,
        norm_eval=norm_eval,
        out_channels=fpn_channels,
        weights_path=backbone_weights_path,
    )
    rpn = RegionProposalNetwork(
        in_channels=backbone.out_channels,
        anchor_generator=AnchorGenerator(rounded=rounded_anchors),
        clip_border=clip_border,
        clamp_dwh_both_sides=clamp_dwh_both_sides,
    )
    roi_heads = RoIHeads(
        num_classes=num_classes,
        in_channels=backbone.out_channels,
        representation_size=representation_size,
        roi_align_aligned=roi_align_aligned,
        sampling_ratio=sampling_ratio,
        clip_border=clip_border,
        clamp_dwh_both_sides=clamp_dwh_both_sides,
        nms_in_original_frame=nms_in_original_frame,
        score_thr=score_thr,
        nms_iou_thr=nms_iou_thr,
        max_per_img=max_per_img,
    )
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {sorted(NORMALIZATIONS)}, got {normalization!r}"
        )
    return QDTrackDetector(
        backbone=backbone,
        rpn=rpn,
        roi_heads=roi_heads,
        img_scale=img_scale,
        normalization=NORMALIZATIONS[normalization],
    )
