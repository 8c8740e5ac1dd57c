"""The model's input contract for training: what ``QDTrack.forward`` takes.

``qdtrack.data`` produces these (``collate_pairs``); the model depends on nothing in
``qdtrack.data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from qdtrack.model.preprocess import ImageBatch


@dataclass(frozen=True)
class PairOrigin:
    """Where a pair comes from."""

    source: str
    video: str
    key_frame: int
    ref_frame: int
    key_image_path: Path
    ref_image_path: Path


@dataclass(frozen=True)
class TrainBatch:
    """A collated batch of pairs.

    Attributes:
        key_images: normalised, padded key images (``ImageBatch``; H, W multiples of 32).
        ref_images: normalised, padded reference images.
        key_boxes_xyxy: per image (N_i, 4) float32 gt boxes.
        key_labels: per image (N_i,) int64.
        key_instance_ids: per image (N_i,) int64.
        ref_boxes_xyxy: per image (M_i, 4) float32.
        ref_labels: per image (M_i,) int64.
        ref_instance_ids: per image (M_i,) int64.
        gt_match_indices: per image (N_i,) int64 ref index or -1.
        origins: per pair, where it comes from.
    """

    key_images: ImageBatch
    ref_images: ImageBatch
    key_boxes_xyxy: list[Tensor]
    key_labels: list[Tensor]
    key_instance_ids: list[Tensor]
    ref_boxes_xyxy: list[Tensor]
    ref_labels: list[Tensor]
    ref_instance_ids: list[Tensor]
    gt_match_indices: list[Tensor]
    origins: list[PairOrigin]

    def __len__(self) -> int:
        return len(self.origins)

    def to(self, device: torch.device | str) -> TrainBatch:
        """The same batch with every tensor on ``device``."""

        def move(tensors: list[Tensor]) -> list[Tensor]:
            return [t.to(device) for t in tensors]

        return TrainBatch(
            key_images=self.key_images.to(device),
            ref_images=self.ref_images.to(device),
            key_boxes_xyxy=move(self.key_boxes_xyxy),
            key_labels=move(self.key_labels),
            key_instance_ids=move(self.key_instance_ids),
            ref_boxes_xyxy=move(self.ref_boxes_xyxy),
            ref_labels=move(self.ref_labels),
            ref_instance_ids=move(self.ref_instance_ids),
            gt_match_indices=move(self.gt_match_indices),
            origins=self.origins,
        )
