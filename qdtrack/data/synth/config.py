"""Sizes of the synthetic dataset and the counts of what was written."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from qdtrack.data.synth.scene import CATEGORY_NAMES, MAX_CLASSES


@dataclass(frozen=True)
class SynthConfig:
    """Sizes of the synthetic dataset.

    Attributes:
        train_seqs: number of ``train/`` sequences (>= 1).
        val_seqs: number of ``val/`` sequences (>= 0).
        frames: frames per sequence (>= 2).
        width: image width in pixels.
        height: image height in pixels.
        min_figures: fewest figures alive at a time (new ones walk in below this).
        max_figures: most figures the spawner keeps alive (look-alike pairs may add one).
        crowdhuman_images: number of still images (>= 0): CrowdHuman-style persons with
            one class, LVIS-style stills of all classes with more.
        frame_rate: frames per second written to ``seqinfo.ini``.
        jpeg_quality: OpenCV JPEG quality (1..100).
        jitter_px: largest camera shift in pixels.
        num_classes: object classes (1..4), the first N of person, car, dog, ball. 1 writes
            the people-only MOTChallenge + CrowdHuman dataset; more adds TAO annotations
            of the sequences and writes LVIS stills instead of CrowdHuman ones.
    """

    train_seqs: int = 2
    val_seqs: int = 2
    frames: int = 120
    width: int = 384
    height: int = 224
    min_figures: int = 5
    max_figures: int = 8
    crowdhuman_images: int = 40
    frame_rate: int = 10
    jpeg_quality: int = 90
    jitter_px: int = 4
    num_classes: int = 1

    def __post_init__(self) -> None:
        checks = (
            (self.train_seqs >= 1, f"train_seqs must be >= 1, got {self.train_seqs}"),
            (self.val_seqs >= 0, f"val_seqs must be >= 0, got {self.val_seqs}"),
            (self.frames >= 2, f"frames must be >= 2, got {self.frames}"),
            (self.width >= 64 and self.height >= 64, "width and height must be >= 64 pixels"),
            (
                1 <= self.min_figures <= self.max_figures,
                f"need 1 <= min_figures <= max_figures, got {self.min_figures}, {self.max_figures}",
            ),
            (
                self.crowdhuman_images >= 0,
                f"crowdhuman_images must be >= 0, got {self.crowdhuman_images}",
            ),
            (self.frame_rate >= 1, f"frame_rate must be >= 1, got {self.frame_rate}"),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in 1..100"),
            (0 <= self.jitter_px <= 16, "jitter_px must be in 0..16"),
            (
                1 <= self.num_classes <= MAX_CLASSES,
                f"num_classes must be in 1..{MAX_CLASSES} ({', '.join(CATEGORY_NAMES)}), "
                f"got {self.num_classes}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """A :class:`SynthConfig` from CLI arguments; ``None`` values keep the defaults."""
    overrides = {
        "train_seqs": getattr(args, "train_seqs", None),
        "val_seqs": getattr(args, "val_seqs", None),
        "frames": getattr(args, "frames", None),
        "crowdhuman_images": getattr(args, "crowdhuman_images", None),
        "num_classes": getattr(args, "num_classes", None),
    }
    return SynthConfig(**{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class ClassCount:
    """How many tracks and boxes of one class a sequence's gt (or a file) holds."""

    category_id: int
    name: str
    tracks: int
    boxes: int


@dataclass(frozen=True)
class SequenceSummary:
    """Counts of one written sequence (``per_class`` only in the multi-class mode)."""

    split: str
    name: str
    frames: int
    gt_boxes: int
    ids: int
    det_boxes: int
    lookalike_pairs: tuple[tuple[int, int], ...]
    per_class: tuple[ClassCount, ...] = ()


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`~qdtrack.data.synth.generate` wrote."""

    out_dir: str
    seed: int
    sequences: tuple[SequenceSummary, ...]
    crowdhuman_images: int
    crowdhuman_persons: int
    crowdhuman_masks: int
    config: SynthConfig = field(default_factory=SynthConfig)
    tao_annotations: int = 0  # multi-class mode: annotations over train.json and val.json
    lvis_images: int = 0
    lvis_annotations: int = 0

    @property
    def frames(self) -> int:
        """Frames over all sequences."""
        return sum(s.frames for s in self.sequences)

    @property
    def gt_boxes(self) -> int:
        """Ground-truth boxes over all sequences."""
        return sum(s.gt_boxes for s in self.sequences)

    @property
    def ids(self) -> int:
        """Distinct ids summed over sequences."""
        return sum(s.ids for s in self.sequences)


__all__ = [
    "ClassCount",
    "SequenceSummary",
    "SynthConfig",
    "SynthSummary",
    "config_from_args",
]
