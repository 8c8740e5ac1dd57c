"""Convert mmtracking QDTrack R-50-FPN checkpoints to this project's state dicts.

Mapping (spec ``checkpoint-keys.md`` and ``mmtracking_qdtrack_r50_keys.json``): the 348
detector keys go to ``detector.`` + the torchvision ``fasterrcnn_resnet50_fpn(num_classes=2)``
name; the 16 ``track_head.embed_head.*`` keys keep their names. Two tensors change:

* ``fc_cls`` → ``cls_score``: rows swapped (mmdet [person, background], torchvision
  [background, person]);
* ``fc_reg`` (4 rows) → ``bbox_pred`` (8 rows): rows 4..7 = mm rows 0..3, rows 0..3 (the
  unused background deltas) zero. No rescaling: mm's stds (0.1, 0.1, 0.2, 0.2) equal
  torchvision's ``BoxCoder`` weights (10, 10, 5, 5) inverted.

BatchNorm ``num_batches_tracked`` buffers (53) are dropped by default because the project
builds the backbone with ``FrozenBatchNorm2d``, which has no such buffer;
``keep_num_batches_tracked=True`` keeps them for an ``nn.BatchNorm2d`` backbone.

CLI: ``qdtrack convert-checkpoint MMTRACKING.pth OUT``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import logging
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor

from qdtrack.config import QDTrackConfig
from qdtrack.io_utils import atomic_write
from qdtrack.model.embed_head import QuasiDenseEmbedHead

__all__ = [
    "REFERENCE_R50_MOT17_CONFIG",
    "convert_mmtracking_state_dict",
    "expected_mmtracking_shapes",
    "load_mmtracking_checkpoint",
    "main",
    "mmtracking_to_project_key",
]

logger = logging.getLogger(__name__)

#: Number of keys in the released mmtracking QDTrack R-50 checkpoints.
NUM_MMTRACKING_KEYS = 364
#: How many offending key names an error message lists.
_MAX_LISTED = 10

#: Settings of ``qdtrack_faster-rcnn_r50_fpn_4e_mot17-private-half`` (spec a.2–a.8, b, d.1):
#: the defaults of :class:`qdtrack.config.QDTrackConfig`. Stored in converted checkpoints so
#: that ``qdtrack track`` rebuilds the reference network from the file alone.
REFERENCE_R50_MOT17_CONFIG: dict[str, Any] = QDTrackConfig().to_dict()


def _swap_class_rows(tensor: Tensor) -> Tensor:
    """mmdet [person, background] rows → torchvision [background, person]."""
    return tensor[[1, 0]].clone()


def _embed_person_deltas(tensor: Tensor) -> Tensor:
    """4 mmdet delta rows → 8 torchvision rows: background rows 0..3 zero, person rows 4..7."""
    out = tensor.new_zeros((8, *tensor.shape[1:]))
    out[4:8] = tensor
    return out


def _copy(tensor: Tensor) -> Tensor:
    return tensor


# (mmtracking key pattern, project key template, transform); first match wins.
_RULES: list[tuple[re.Pattern[str], str, Callable[[Tensor], Tensor]]] = [
    (re.compile(r"^detector\.backbone\.(.+)$"), r"detector.backbone.body.\1", _copy),
    (
        re.compile(r"^detector\.neck\.lateral_convs\.(\d+)\.conv\.(weight|bias)$"),
        r"detector.backbone.fpn.inner_blocks.\1.0.\2",
        _copy,
    ),
    (
        re.compile(r"^detector\.neck\.fpn_convs\.(\d+)\.conv\.(weight|bias)$"),
        r"detector.backbone.fpn.layer_blocks.\1.0.\2",
        _copy,
    ),
    (
        re.compile(r"^detector\.rpn_head\.rpn_conv\.(weight|bias)$"),
        r"detector.rpn.head.conv.0.0.\1",
        _copy,
    ),
    (
        re.compile(r"^detector\.rpn_head\.rpn_cls\.(weight|bias)$"),
        r"detector.rpn.head.cls_logits.\1",
        _copy,
    ),
    (
        re.compile(r"^detector\.rpn_head\.rpn_reg\.(weight|bias)$"),
        r"detector.rpn.head.bbox_pred.\1",
        _copy,
    ),
    (
        re.compile(r"^detector\.roi_head\.bbox_head\.shared_fcs\.0\.(weight|bias)$"),
        r"detector.roi_heads.box_head.fc6.\1",
        _copy,
    ),
    (
        re.compile(r"^detector\.roi_head\.bbox_head\.shared_fcs\.1\.(weight|bias)$"),
        r"detector.roi_heads.box_head.fc7.\1",
        _copy,
    ),
    (
        re.compile(r"^detector\.roi_head\.bbox_head\.fc_cls\.(weight|bias)$"),
        r"detector.roi_heads.box_predictor.cls_score.\1",
        _swap_class_rows,
    ),
    (
        re.compile(r"^detector\.roi_head\.bbox_head\.fc_reg\.(weight|bias)$"),
        r"detector.roi_heads.box_predictor.bbox_pred.\1",
        _embed_person_deltas,
    ),
    (re.compile(r"^track_head\.embed_head\.(.+)$"), r"track_head.embed_head.\1", _copy),
]


def mmtracking_to_project_key(mm_key: str) -> str:
    """Project state-dict name of an mmtracking key.

    Args:
        mm_key: A key of the mmtracking QDTrack R-50 state dict.

    Returns:
        The project name (``detector.`` + torchvision name, or the unchanged embed-head name).

    Raises:
        ValueError: If no rule maps the key.
    """
    for pattern, template, _ in _RULES:
        if pattern.match(mm_key):
            return pattern.sub(template, mm_key)
    raise ValueError(f"no conversion rule for mmtracking key {mm_key!r}.")


def expected_mmtracking_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of the 364 keys of the mmtracking QDTrack R-50-FPN state dict.

    Built from the module definitions (torchvision ResNet-50 names equal mmdet's; the embed
    head is :class:`QuasiDenseEmbedHead` with the reference sizes) on the meta device, so no
    memory is allocated.

    Returns:
        Ordered mapping key → shape (``()`` for ``num_batches_tracked``).
    """
    with torch.device("meta"):
        resnet = torchvision.models.resnet50()
        embed_head = QuasiDenseEmbedHead()
    shapes: dict[str, tuple[int, ...]] = {
        f"detector.backbone.{name}": tuple(tensor.shape)
        for name, tensor in resnet.state_dict().items()
        if not name.startswith("fc.")
    }
    for level, channels in enumerate((256, 512, 1024, 2048)):
        shapes[f"detector.neck.lateral_convs.{level}.conv.weight"] = (256, channels, 1, 1)
        shapes[f"detector.neck.lateral_convs.{level}.conv.bias"] = (256,)
    for level in range(4):
        shapes[f"detector.neck.fpn_convs.{level}.conv.weight"] = (256, 256, 3, 3)
        shapes[f"detector.neck.fpn_convs.{level}.conv.bias"] = (256,)
    rpn_and_box_head = {
        "rpn_head.rpn_conv": (256, 256, 3, 3),
        "rpn_head.rpn_cls": (3, 256, 1, 1),
        "rpn_head.rpn_reg": (12, 256, 1, 1),
        "roi_head.bbox_head.fc_cls": (2, 1024),
        "roi_head.bbox_head.fc_reg": (4, 1024),
        "roi_head.bbox_head.shared_fcs.0": (1024, 256 * 7 * 7),
        "roi_head.bbox_head.shared_fcs.1": (1024, 1024),
    }
    for name, weight_shape in rpn_and_box_head.items():
        shapes[f"detector.{name}.weight"] = weight_shape
        shapes[f"detector.{name}.bias"] = weight_shape[:1]
    for name, tensor in embed_head.state_dict().items():
        shapes[f"track_head.embed_head.{name}"] = tuple(tensor.shape)
    assert len(shapes) == NUM_MMTRACKING_KEYS, len(shapes)
    return shapes


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = f", ... (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"{len(names)}: {shown}{more}"


def _check_state_dict(mm_state: Mapping[str, Tensor], *, detector_only: bool = False) -> None:
    expected = expected_mmtracking_shapes()
    if detector_only:
        expected = {k: v for k, v in expected.items() if k.startswith("detector.")}
    missing = [key for key in expected if key not in mm_state]
    unexpected = [key for key in mm_state if key not in expected]
    wrong_shape = [
        f"{key} {tuple(mm_state[key].shape)} (expected {expected[key]})"
        for key in expected
        if key in mm_state and tuple(mm_state[key].shape) != expected[key]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes {_listed(wrong_shape)}")
    if problems:
        what = "Faster R-CNN R-50-FPN detector" if detector_only else "QDTrack R-50-FPN"
        raise ValueError(
            f"not an mmtracking/mmdet {what} state dict "
            f"({len(mm_state)} keys, expected {len(expected)}): " + "; ".join(problems) + "."
        )


def convert_mmtracking_state_dict(
    mm_state: Mapping[str, Tensor],
    *,
    keep_num_batches_tracked: bool = False,
    detector_only: bool = False,
) -> dict[str, Tensor]:
    """Map an mmtracking QDTrack R-50-FPN state dict to the project's names.

    Args:
        mm_state: The checkpoint's ``state_dict`` (exactly the 364 reference keys).
        keep_num_batches_tracked: Keep the 53 BatchNorm ``num_batches_tracked`` buffers
            (for an ``nn.BatchNorm2d`` backbone). By default they are dropped: the project's
            ``FrozenBatchNorm2d`` has none (311 keys result instead of 364).
        detector_only: Expect only the 348 ``detector.*`` keys (an mmdet Faster R-CNN
            R-50-FPN with one class, such as the reference's COCO-person initialisation).

    Returns:
        New state dict. Copied tensors are shared with ``mm_state``; the two transformed
        ones (``cls_score``, ``bbox_pred``) are new.

    Raises:
        ValueError: Listing (up to 10 names each, with counts) missing keys, unexpected keys
            and keys of the wrong shape.
    """
    _check_state_dict(mm_state, detector_only=detector_only)
    converted: dict[str, Tensor] = {}
    for mm_key, tensor in mm_state.items():
        if mm_key.endswith(".num_batches_tracked") and not keep_num_batches_tracked:
            continue
        for pattern, template, transform in _RULES:
            if pattern.match(mm_key):
                converted[pattern.sub(template, mm_key)] = transform(tensor)
                break
    return converted


def _looks_like_mmtracking(obj: Mapping[Any, Any]) -> bool:
    return len(obj) > 0 and all(
        isinstance(key, str) and key.startswith(("detector.", "track_head.")) for key in obj
    )


def load_mmtracking_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """Read the state dict of an mmtracking checkpoint file.

    The file is read with ``torch.load(map_location="cpu", weights_only=True)`` (no arbitrary
    code runs). mmcv's ``save_checkpoint`` layout ``{"state_dict": ..., "meta": ...}`` is
    expected; a bare state dict whose keys all start with ``detector.`` or ``track_head.`` is
    accepted too.

    Args:
        path: The ``.pth`` file.

    Returns:
        The mmtracking state dict (not yet converted).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file cannot be read safely or holds no mmtracking state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        # torch's message runs to a paragraph about weights_only; its first line says enough
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not a readable PyTorch checkpoint (or it holds more than tensors and "
            f"plain containers): {reason}"
        ) from exc
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path}: expected a dict, got {type(checkpoint).__name__}.")
    if "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
    elif _looks_like_mmtracking(checkpoint):
        logger.info("%s: no 'state_dict' entry; reading it as a bare state dict", path)
        state = checkpoint
    else:
        top = ", ".join(map(str, list(checkpoint)[:_MAX_LISTED]))
        raise ValueError(
            f"{path}: no 'state_dict' entry (mmcv checkpoint layout) and the top-level keys "
            f"({top}) are not mmtracking model keys."
        )
    if not isinstance(state, Mapping) or not all(
        isinstance(value, Tensor) for value in state.values()
    ):
        raise ValueError(f"{path}: 'state_dict' is not a mapping of names to tensors.")
    return dict(state)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SOURCE_FORMATS = ("mmtracking", "mmdet")


def convert_checkpoint_file(
    source: str | Path,
    output: str | Path,
    *,
    keep_num_batches_tracked: bool = False,
    source_format: str = "mmtracking",
) -> dict[str, Any]:
    """Convert an mmtracking checkpoint file into a project checkpoint, written atomically.

    The output is ``{"model": state_dict, "config": REFERENCE_R50_MOT17_CONFIG,
    "source": {"file", "sha256", "format", "num_batches_tracked"}}``.

    Args:
        source: mmtracking ``.pth`` file.
        output: Project checkpoint to write.
        keep_num_batches_tracked: See :func:`convert_mmtracking_state_dict`.
        source_format: ``"mmtracking"`` (a QDTrack checkpoint) or ``"mmdet"`` (a Faster
            R-CNN R-50-FPN detector; its keys get the ``detector.`` prefix and the output
            holds detector weights only, for ``qdtrack train --init``).

    Returns:
        The checkpoint dict that was written.
    """
    if source_format not in SOURCE_FORMATS:
        raise ValueError(f"source format must be one of {SOURCE_FORMATS}, got {source_format!r}")
    source = Path(source)
    raw = load_mmtracking_checkpoint(source)
    detector_only = source_format == "mmdet"
    if detector_only:
        raw = {f"detector.{key}": value for key, value in raw.items()}
    state = convert_mmtracking_state_dict(
        raw, keep_num_batches_tracked=keep_num_batches_tracked, detector_only=detector_only
    )
    checkpoint = {
        "model": state,
        "config": copy.deepcopy(REFERENCE_R50_MOT17_CONFIG),
        "source": {
            "file": source.name,
            "sha256": _sha256(source),
            "format": "mmdet-2.x Faster R-CNN R-50-FPN (detector only)"
            if detector_only
            else "mmtracking-0.x QDTrack R-50-FPN",
            "num_batches_tracked": "kept" if keep_num_batches_tracked else "dropped",
        },
    }
    with atomic_write(output, "wb") as handle:
        torch.save(checkpoint, handle)
    return checkpoint


def main(args: argparse.Namespace) -> int:
    """Run ``qdtrack convert-checkpoint``."""
    checkpoint = convert_checkpoint_file(
        args.checkpoint,
        args.output,
        keep_num_batches_tracked=bool(getattr(args, "keep_num_batches_tracked", False)),
        source_format=getattr(args, "source_format", "mmtracking"),
    )
    logger.info(
        "wrote %s: %d tensors from %s (sha256 %s)",
        args.output,
        len(checkpoint["model"]),
        checkpoint["source"]["file"],
        checkpoint["source"]["sha256"],
    )
    return 0
