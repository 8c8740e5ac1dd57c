"""``QDTrack``: the detector plus the quasi-dense track head (reference a.1, a.10, d.2 step 1).

Training returns the dict of named losses; inference returns, per frame, the final
detections in original-frame pixels with their embeddings, ready for a tracker. The model
never holds a tracker (trackers live in :mod:`qdtrack.trackers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from qdtrack.model.config import ModelConfig
from qdtrack.model.detector import QDTrackDetector, build_detector, to_detections
from qdtrack.model.embed_head import QuasiDenseEmbedHead
from qdtrack.model.inputs import TrainBatch
from qdtrack.model.preprocess import ImageBatch
from qdtrack.model.roi_extractor import MultiLevelRoIExtractor
from qdtrack.model.roi_heads import DetectionResult, split_rows
from qdtrack.model.rpn import RPNOutput
from qdtrack.model.track_head import QuasiDenseTrackHead
from qdtrack.structures import Detections


class QDTrack(nn.Module):
    """Faster R-CNN + quasi-dense embedding head.

    State-dict names: ``detector.*`` (torchvision's Faster R-CNN names) and
    ``track_head.embed_head.*`` (mmtracking's), so converted mmtracking weights load strictly.

    Args:
        detector: the Faster R-CNN.
        track_head: the quasi-dense track head.
    """

    def __init__(self, *, detector: QDTrackDetector, track_head: QuasiDenseTrackHead) -> None:
        super().__init__()
        self.detector = detector
        self.track_head = track_head
        self.detector_frozen = False

    def freeze_detector(self) -> None:
        """Train the track head only (mmtracking ``freeze_detector``, the TAO fine-tuning).

        The detector's parameters stop requiring gradients and it stays in eval mode;
        :meth:`forward_train` then returns the track losses only.
        """
        self.detector_frozen = True
        for parameter in self.detector.parameters():
            parameter.requires_grad_(False)
        self.detector.eval()

    def train(self, mode: bool = True) -> QDTrack:
        """As ``nn.Module.train``, but a frozen detector stays in eval mode."""
        super().train(mode)
        if self.detector_frozen:
            self.detector.eval()
        return self

    def forward_train(
        self, batch: TrainBatch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Losses of a batch of key/reference pairs (reference a.10).

        1. key frames: backbone + FPN, RPN loss and training proposals, box-head loss;
        2. reference frames: backbone + FPN (with gradient), proposals with the test setting;
        3. track head on (key proposals, key gts) and (ref proposals, ref gts).

        With a frozen detector (:meth:`freeze_detector`) both frames take test-setting
        proposals without gradient and only the track losses are returned.
        """
        if self.detector_frozen:
            with torch.no_grad():
                key_features, key_proposals = self.detector.propose(batch.key_images)
                ref_features, ref_proposals = self.detector.propose(batch.ref_images)
            return self.track_head.forward_train(
                key_features,
                ref_features,
                key_proposals,
                ref_proposals,
                batch.key_boxes_xyxy,
                batch.ref_boxes_xyxy,
                batch.key_instance_ids,
                batch.ref_instance_ids,
                generator,
            )
        targets = [
            {"boxes": boxes, "labels": labels}
            for boxes, labels in zip(batch.key_boxes_xyxy, batch.key_labels, strict=True)
        ]
        key = self.detector.forward_train(batch.key_images, targets, generator)
        ref_features, ref_proposals = self.detector.propose(batch.ref_images)
        track_losses = self.track_head.forward_train(
            key.features,
            ref_features,
            key.proposals,
            ref_proposals,
            batch.key_boxes_xyxy,
            batch.ref_boxes_xyxy,
            batch.key_instance_ids,
            batch.ref_instance_ids,
            generator,
        )
        return {**key.losses, **track_losses}

    def forward(self, batch: TrainBatch, generator: torch.Generator | None = None) -> Any:
        """Training forward (``DistributedDataParallel`` calls this)."""
        return self.forward_train(batch, generator)

    @torch.no_grad()
    def predict_tensors(self, batch: ImageBatch) -> list[tuple[DetectionResult, Tensor]]:
        """Per image the final detections (original-frame pixels) and their (N_i, D) embeddings.

        Embeddings are computed on the final boxes scaled back to network-input pixels
        (boxes × ``scale_factor``), on P2–P5 (reference d.2 step 1). This is the one inference
        path: :meth:`predict_batch` converts it to numpy and the ONNX export traces it.
        """
        features = self.detector.extract_features(batch.tensor)
        return self.predict_from_features(features, self.detector.rpn(features), batch)

    def predict_from_features(
        self, features: list[Tensor], rpn_output: RPNOutput, batch: ImageBatch
    ) -> list[tuple[DetectionResult, Tensor]]:
        """:meth:`predict_tensors` after the convolutional trunk (FPN maps, RPN head outputs).

        See :meth:`~qdtrack.model.detector.QDTrackDetector.predict_from_features`.
        """
        prediction = self.detector.predict_from_features(features, rpn_output, batch)
        scaled = [
            result.boxes_xyxy * batch.scale_factors[i].to(result.boxes_xyxy)
            for i, result in enumerate(prediction.detections)
        ]
        embeddings = self.track_head.embed(prediction.features, scaled)
        per_image = split_rows(embeddings, scaled)
        return list(zip(prediction.detections, per_image, strict=True))

    @torch.no_grad()
    def predict_batch(self, batch: ImageBatch) -> list[Detections]:
        """Detections with embeddings for a preprocessed batch, one per image."""
        return [to_detections(result, emb) for result, emb in self.predict_tensors(batch)]

    @torch.no_grad()
    def predict(self, frames_bgr: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detections with embeddings for raw uint8 BGR frames (reference test pipeline)."""
        device = next(self.parameters()).device
        batch = self.detector.preprocess(frames_bgr).to(device)
        return self.predict_batch(batch)


def build_qdtrack(config: ModelConfig | None = None) -> QDTrack:
    """Build the network from a :class:`~qdtrack.config.ModelConfig` (default: reference R50)."""
    cfg = config or ModelConfig()
    if cfg.style not in ("caffe", "pytorch"):
        raise ValueError(f"model.style must be 'caffe' or 'pytorch', got {cfg.style!r}")
    detector = build_detector(
        depth=cfg.depth,
        num_classes=cfg.num_classes,
        style=cfg.style,
        frozen_stages=cfg.frozen_stages,
        norm_eval=cfg.norm_eval,
        backbone_weights_path=cfg.backbone_weights_path,
        fpn_channels=cfg.fpn_channels,
        img_scale=(int(cfg.img_scale[0]), int(cfg.img_scale[1])),
        representation_size=cfg.representation_size,
        sampling_ratio=cfg.roi_sampling_ratio,
        clip_border=cfg.clip_border,
        score_thr=cfg.score_thr,
        nms_iou_thr=cfg.nms_iou_thr,
        max_per_img=cfg.max_per_img,
        normalization=cfg.normalization,
    )
    roi_extractor = MultiLevelRoIExtractor(sampling_ratio=cfg.roi_sampling_ratio)
    embed_head = QuasiDenseEmbedHead(
        in_channels=cfg.fpn_channels,
        conv_channels=cfg.embed_conv_channels,
        num_convs=cfg.embed_num_convs,
        fc_channels=cfg.embed_fc_channels,
        embed_channels=cfg.embed_channels,
    )
    track_head = QuasiDenseTrackHead(
        roi_extractor=roi_extractor, embed_head=embed_head, neg_iou_thr=cfg.track_neg_iou_thr
    )
    return QDTrack(detector=detector, track_head=track_head)
