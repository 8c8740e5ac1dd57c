"""The network's settings: the ``model`` block of a params file.

Lives with the model (``build_qdtrack(config)``) so that ``qdtrack.model`` needs nothing
from the rest of the package; ``qdtrack.config`` reads it from YAML like every block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qdtrack.schema import check_choices


@dataclass(frozen=True)
class ModelConfig:
    """Network settings (``qdtrack.model.build_qdtrack`` keyword arguments).

    Defaults are the reference R-50-FPN MOT17 model; the CPU configs shrink it.
    """

    depth: int = 50
    num_classes: int = 1
    style: Literal["caffe", "pytorch"] = "caffe"
    img_scale: tuple[int, int] = (1088, 1088)
    backbone_weights_path: str | None = None
    # The reference freezes BatchNorm and the stem + layer1 of a pretrained backbone; a
    # backbone trained from scratch (the CPU config) needs trainable BatchNorm.
    norm_eval: bool = True
    frozen_stages: int = 1
    fpn_channels: int = 256
    representation_size: int = 1024
    # RoIAlign samples per bin: 0 = adaptive (reference); 1 or 2 are much cheaper on a CPU.
    roi_sampling_ratio: int = 0
    embed_conv_channels: int = 256
    embed_num_convs: int = 4
    embed_fc_channels: int = 1024
    embed_channels: int = 256
    # Test-time detector settings (the TAO configs use 1e-4, 300, 0.5 and clipping on)
    # and the track head's assigner negative threshold (TAO: 0.3).
    score_thr: float = 0.05
    max_per_img: int = 100
    nms_iou_thr: float = 0.5
    clip_border: bool = False
    track_neg_iou_thr: float = 0.5
    # Input normalisation: "caffe" (reference: BGR, caffe mean, std 1) or "pytorch"
    # (torchvision ImageNet weights, as mmtracking's LVIS/TAO R-101 configs).
    normalization: Literal["caffe", "pytorch"] = "caffe"
    # Class names in label order (label i = classes[i]); empty = one unnamed class per
    # label ("pedestrian" for the single-class MOT model). ``classes_file`` instead names a
    # text file with one name per line (mmdet's ``classes=`` convention); training reads
    # it (:func:`resolve_classes`), so a checkpoint carries the names themselves.
    classes: tuple[str, ...] = ()
    classes_file: str | None = None

    def __post_init__(self) -> None:
        check_choices(self, "model")
        if min(self.img_scale) <= 0:
            raise ValueError(f"img_scale must be positive, got {list(self.img_scale)}")
        _check_classes(self, "model")

    def class_names(self) -> tuple[str, ...]:
        """The name of each label (``classes``, or ``pedestrian`` for a 1-class model)."""
        if self.classes:
            return self.classes
        if self.num_classes == 1:
            return ("pedestrian",)
        return tuple(f"class_{i}" for i in range(self.num_classes))


def _check_classes(model: ModelConfig, where: str) -> None:
    if not all(name for name in model.classes):
        raise ValueError(f"{where}.classes: class names must be non-empty strings")
    if model.classes and len(model.classes) != model.num_classes:
        raise ValueError(
            f"{where}: num_classes = {model.num_classes} but classes lists "
            f"{len(model.classes)} names"
        )
    if len(set(model.classes)) != len(model.classes):
        raise ValueError(f"{where}.classes: duplicate class names")
