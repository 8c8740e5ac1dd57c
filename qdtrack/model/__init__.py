"""Model code: preprocessing, Faster R-CNN detector (torchvision names), heads and losses.

Import the submodules directly (``qdtrack.model.detector``, ``qdtrack.model.embed_head``, ...);
this package re-exports the detector's public builders for convenience.
"""

from __future__ import annotations

from qdtrack.model.backbone import build_backbone
from qdtrack.model.detector import (
    DetectorPrediction,
    DetectorTrainOutput,
    QDTrackDetector,
    build_detector,
    to_detections,
)
from qdtrack.model.preprocess import ImageBatch, batch_images, preprocess_frames

__all__ = [
    "DetectorPrediction",
    "DetectorTrainOutput",
    "ImageBatch",
    "QDTrackDetector",
    "batch_images",
    "build_backbone",
    "build_detector",
    "preprocess_frames",
    "to_detections",
]
