"""Convert published mmtracking QDTrack checkpoints to this project's state dicts.

Two layouts exist among the published checkpoints (docs/model-zoo.md):

* QDTrack R-50-FPN with 1 class (MOT17 pedestrian; 364 keys), caffe-style backbone;
* QDTrack R-101-FPN with 482 classes (the LVIS v0.5 classes of TAO; 670 keys),
  pytorch-style backbone and the TAO detector and tracker settings.

The ``detector.*`` keys go to ``detector.`` + the torchvision ``fasterrcnn_resnet_fpn`` name;
the 16 ``track_head.embed_head.*`` keys keep their names. Two tensors change:

* ``fc_cls`` (C + 1 rows) -> ``cls_score``: mmdet puts the background row last,
  torchvision first, so the last row moves to the front;
* ``fc_reg`` (4 C rows) -> ``bbox_pred`` (4 (C + 1) rows): four zero rows for the unused
  background deltas, then mmdet's rows in order. No rescaling: mm's stds
  (0.1, 0.1, 0.2, 0.2) equal torchvision's ``BoxCoder`` weights (10, 10, 5, 5) inverted.

BatchNorm ``num_batches_tracked`` buffers are dropped by default because the project builds
the backbone with ``FrozenBatchNorm2d``, which has no such buffer;
``keep_num_batches_tracked=True`` keeps them for an ``nn.BatchNorm2d`` backbone.

A state dict of any other layout is refused with the keys that do not fit the closest one.
The converted file carries the project config of its layout (so ``qdtrack track`` rebuilds
the network from the file alone) and, when known, the class names: mmtracking's training
script stores the dataset's ``CLASSES`` in the checkpoint's ``meta``, in label order.

CLI: ``qdtrack convert-checkpoint MMTRACKING.pth OUT``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import logging
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor

from qdtrack.checkpoint import checkpoint_state, save_checkpoint
from qdtrack.config import EvaluateConfig, ModelConfig, QDTrackConfig, TrainConfig
from qdtrack.model.embed_head import QuasiDenseEmbedHead
from qdtrack.trackers import TAOTrackerSettings

__all__ = [
    "LAYOUTS",
    "REFERENCE_R50_MOT17_CONFIG",
    "REFERENCE_R101_TAO_CONFIG",
    "MmtrackingLayout",
    "convert_checkpoint_file",
    "convert_mmtracking_state_dict",
    "expected_mmtracking_shapes",
    "load_mmtracking_checkpoint",
    "main",
    "mmtracking_layout",
    "mmtracking_to_project_key",
    "read_mmtracking_file",
]

logger = logging.getLogger(__name__)

#: How many offending key names an error message lists.
_MAX_LISTED = 10

#: Settings of ``qdtrack_faster-rcnn_r50_fpn_4e_mot17-private-half``: the defaults of
#: :class:`qdtrack.config.QDTrackConfig`. Stored in converted checkpoints so that
#: ``qdtrack track`` rebuilds the reference network from the file alone.
REFERENCE_R50_MOT17_CONFIG: dict[str, Any] = QDTrackConfig().to_dict()

#: Settings of mmtracking's ``qdtrack_faster-rcnn_r101_fpn_24e_lvis`` and
#: ``..._12e_tao`` (the same network, detector test settings and QuasiDenseTAOTracker;
#: configs/qdtrack_r101_tao.yaml holds the same values): R-101 in pytorch style with RGB
#: ImageNet normalisation, 482 classes, (1333, 800) input, score > 1e-4, 300 boxes,
#: NMS 0.5, boxes clipped to the image, track head negative IoU 0.3. The training block
#: is the TAO fine-tuning schedule, without its data sources.
REFERENCE_R101_TAO_CONFIG: dict[str, Any] = QDTrackConfig(
    model=ModelConfig(
        depth=101,
        num_classes=482,
        style="pytorch",
        normalization="pytorch",
        img_scale=(1333, 800),
        score_thr=1e-4,
        max_per_img=300,
        nms_iou_thr=0.5,
        clip_border=True,
        track_neg_iou_thr=0.3,
    ),
    tracker=TAOTrackerSettings(),
    evaluate=EvaluateConfig(benchmark="TAO"),
    train=TrainConfig(
        epochs=12,
        lr=0.002,
        lr_steps=(8, 11),
        warmup_iters=1000,
        frame_range=1,
        augment="lvis",
        freeze_detector=True,
    ),
).to_dict()


@dataclass(frozen=True)
class MmtrackingLayout:
    """One published state-dict layout and the project config that goes with it.

    Attributes:
        depth: ResNet depth of the backbone.
        num_classes: foreground classes of the box head.
        description: how error messages and converted files name it.
        config: the project config (``QDTrackConfig.to_dict()``) of converted checkpoints.
    """

    depth: int
    num_classes: int
    description: str
    config: Mapping[str, Any]

    def name(self, *, detector_only: bool) -> str:
        """``QDTrack R-50-FPN, 1 class`` or ``Faster R-CNN R-50-FPN detector, 1 class``."""
        plural = "" if self.num_classes == 1 else "es"
        what = "Faster R-CNN" if detector_only else "QDTrack"
        part = " detector" if detector_only else ""
        return f"{what} R-{self.depth}-FPN{part}, {self.num_classes} class{plural}"


#: The layouts of every published QDTrack checkpoint, keyed by (depth, classes).
LAYOUTS: dict[tuple[int, int], MmtrackingLayout] = {
    (50, 1): MmtrackingLayout(50, 1, "MOT17 pedestrian", REFERENCE_R50_MOT17_CONFIG),
    (101, 482): MmtrackingLayout(101, 482, "LVIS v0.5 classes of TAO", REFERENCE_R101_TAO_CONFIG),
}


def _background_first(tensor: Tensor) -> Tensor:
    """mmdet class rows [c_0 .. c_{C-1}, background] -> torchvision [background, c_0 ..]."""
    return torch.cat([tensor[-1:], tensor[:-1]])


def _pad_background_deltas(tensor: Tensor) -> Tensor:
    """4 C mmdet delta rows -> 4 (C + 1) torchvision rows: background rows 0..3 zero."""
    return torch.cat([tensor.new_zeros((4, *tensor.shape[1:])), tensor])


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
        _background_first,
    ),
    (
        re.compile(r"^detector\.roi_head\.bbox_head\.fc_reg\.(weight|bias)$"),
        r"detector.roi_heads.box_predictor.bbox_pred.\1",
        _pad_background_deltas,
    ),
    (re.compile(r"^track_head\.embed_head\.(.+)$"), r"track_head.embed_head.\1", _copy),
]


def mmtracking_to_project_key(mm_key: str) -> str:
    """Project state-dict name of an mmtracking key.

    Args:
        mm_key: A key of an mmtracking QDTrack state dict.

    Returns:
        The project name (``detector.`` + torchvision name, or the unchanged embed-head name).

    Raises:
        ValueError: If no rule maps the key.
    """
    for pattern, template, _ in _RULES:
        if pattern.match(mm_key):
            return pattern.sub(template, mm_key)
    raise ValueError(f"no conversion rule for mmtracking key {mm_key!r}.")


def expected_mmtracking_shapes(depth: int = 50, num_classes: int = 1) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the keys of an mmtracking QDTrack ResNet-FPN state dict.

    Built from the module definitions (torchvision ResNet names equal mmdet's; the embed
    head is :class:`QuasiDenseEmbedHead` with the reference sizes) on the meta device, so no
    memory is allocated. mmdet's ``Shared2FCBBoxHead`` has ``num_classes + 1`` class
    outputs and, not being class-agnostic, ``4 * num_classes`` box deltas.

    Args:
        depth: 50 or 101.
        num_classes: foreground classes of the box head.

    Returns:
        Ordered mapping key -> shape (``()`` for ``num_batches_tracked``): 364 keys for
        R-50, 670 for R-101.
    """
    builders = {50: torchvision.models.resnet50, 101: torchvision.models.resnet101}
    if depth not in builders:
        raise ValueError(f"depth must be one of {sorted(builders)}, got {depth}")
    with torch.device("meta"):
        resnet = builders[depth]()
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
        "roi_head.bbox_head.fc_cls": (num_classes + 1, 1024),
        "roi_head.bbox_head.fc_reg": (4 * num_classes, 1024),
        "roi_head.bbox_head.shared_fcs.0": (1024, 256 * 7 * 7),
        "roi_head.bbox_head.shared_fcs.1": (1024, 1024),
    }
    for name, weight_shape in rpn_and_box_head.items():
        shapes[f"detector.{name}.weight"] = weight_shape
        shapes[f"detector.{name}.bias"] = weight_shape[:1]
    for name, tensor in embed_head.state_dict().items():
        shapes[f"track_head.embed_head.{name}"] = tuple(tensor.shape)
    return shapes


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = f", ... (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"{len(names)}: {shown}{more}"


def _layout_problems(
    mm_state: Mapping[str, Tensor], layout: MmtrackingLayout, *, detector_only: bool
) -> tuple[int, list[str], int]:
    """(number of offending keys, their description, expected key count) for a layout."""
    expected = expected_mmtracking_shapes(layout.depth, layout.num_classes)
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
    return len(missing) + len(unexpected) + len(wrong_shape), problems, len(expected)


def mmtracking_layout(
    mm_state: Mapping[str, Tensor], *, detector_only: bool = False
) -> MmtrackingLayout:
    """The published layout (:data:`LAYOUTS`) that ``mm_state`` has exactly.

    Args:
        mm_state: an mmtracking QDTrack state dict (or, with ``detector_only``, an mmdet
            Faster R-CNN one with the ``detector.`` prefix added).
        detector_only: expect only the ``detector.*`` keys.

    Raises:
        ValueError: naming (up to 10 each, with counts) the missing keys, unexpected keys
            and keys of the wrong shape against the closest layout, and the supported ones.
    """
    scored = []
    for layout in LAYOUTS.values():
        count, problems, expected = _layout_problems(mm_state, layout, detector_only=detector_only)
        if count == 0:
            return layout
        scored.append((count, layout.depth, layout, problems, expected))
    _, _, closest, problems, expected = min(scored, key=lambda item: item[:2])
    supported = "; ".join(
        f"{layout.name(detector_only=detector_only)} ({layout.description})"
        for layout in LAYOUTS.values()
    )
    raise ValueError(
        f"not a supported mmtracking/mmdet state dict ({len(mm_state)} keys); against the "
        f"closest layout, {closest.name(detector_only=detector_only)} state dict "
        f"({expected} keys): " + "; ".join(problems) + f". Supported layouts: {supported}."
    )


def convert_mmtracking_state_dict(
    mm_state: Mapping[str, Tensor],
    *,
    keep_num_batches_tracked: bool = False,
    detector_only: bool = False,
) -> dict[str, Tensor]:
    """Map an mmtracking QDTrack state dict of a published layout to the project's names.

    Args:
        mm_state: The checkpoint's ``state_dict`` (exactly the keys of one of
            :data:`LAYOUTS`: 364 for R-50, 670 for R-101).
        keep_num_batches_tracked: Keep the BatchNorm ``num_batches_tracked`` buffers (for
            an ``nn.BatchNorm2d`` backbone). By default they are dropped: the project's
            ``FrozenBatchNorm2d`` has none (311 keys result instead of 364 for R-50).
        detector_only: Expect only the ``detector.*`` keys (an mmdet Faster R-CNN, such as
            the reference's COCO-person initialisation).

    Returns:
        New state dict. Copied tensors are shared with ``mm_state``; the two transformed
        ones (``cls_score``, ``bbox_pred``) are new.

    Raises:
        ValueError: See :func:`mmtracking_layout`.
    """
    mmtracking_layout(mm_state, detector_only=detector_only)
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


def read_mmtracking_file(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read the state dict and the ``meta`` of an mmtracking checkpoint file.

    The file is read with ``torch.load(map_location="cpu", weights_only=True)`` (no arbitrary
    code runs). mmcv's ``save_checkpoint`` layout ``{"state_dict": ..., "meta": ...}`` is
    expected; a bare state dict whose keys all start with ``detector.`` or ``track_head.`` is
    accepted too (its meta is then empty).

    Args:
        path: The ``.pth`` file.

    Returns:
        ``(state dict, meta)``; the state dict is not yet converted.

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
    meta: Any = {}
    if "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
        meta = checkpoint.get("meta") or {}
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
    return dict(state), dict(meta) if isinstance(meta, Mapping) else {}


def load_mmtracking_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state dict of an mmtracking checkpoint file (see :func:`read_mmtracking_file`)."""
    return read_mmtracking_file(path)[0]


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_class_names(meta: Mapping[str, Any], num_classes: int) -> tuple[str, ...] | None:
    """The ``CLASSES`` mmtracking stored in a checkpoint's meta, if they fit ``num_classes``.

    mmtracking's ``tools/train.py`` sets ``meta["CLASSES"]`` (and mmcv's
    ``save_checkpoint`` copies ``model.CLASSES``) from the training dataset, whose labels
    are those names in order, so label ``i`` is ``CLASSES[i]``.
    """
    names = meta.get("CLASSES")
    if isinstance(names, str):
        names = (names,)
    if (
        isinstance(names, Sequence)
        and len(names) == num_classes
        and all(isinstance(name, str) and name for name in names)
        and len(set(names)) == len(names)
    ):
        return tuple(names)
    if names is not None:
        logger.warning(
            "checkpoint meta CLASSES ignored: expected %d distinct names, got %r",
            num_classes,
            names if not isinstance(names, Sequence) else f"{len(names)} entries",
        )
    return None


SOURCE_FORMATS = ("mmtracking", "mmdet")


def convert_checkpoint_file(
    source: str | Path,
    output: str | Path,
    *,
    keep_num_batches_tracked: bool = False,
    source_format: str = "mmtracking",
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Convert an mmtracking checkpoint file into a project checkpoint, written atomically.

    The output is ``{"model": state_dict, "config": the layout's config (with the class
    names when known), "source": {"file", "sha256", "format", "layout",
    "num_batches_tracked", "classes"}}``.

    Args:
        source: mmtracking ``.pth`` file.
        output: Project checkpoint to write.
        keep_num_batches_tracked: See :func:`convert_mmtracking_state_dict`.
        source_format: ``"mmtracking"`` (a QDTrack checkpoint) or ``"mmdet"`` (a Faster
            R-CNN detector; its keys get the ``detector.`` prefix and the output holds
            detector weights only, for ``qdtrack train --init``).
        class_names: Names of the classes in label order; default: the ``CLASSES`` of the
            checkpoint's meta when they fit (:func:`meta_class_names`).

    Returns:
        The checkpoint dict that was written.

    Raises:
        ValueError: unreadable file, unsupported layout, or ``class_names`` of the wrong
            length.
    """
    if source_format not in SOURCE_FORMATS:
        raise ValueError(f"source format must be one of {SOURCE_FORMATS}, got {source_format!r}")
    source = Path(source)
    raw, meta = read_mmtracking_file(source)
    detector_only = source_format == "mmdet"
    if detector_only:
        raw = {f"detector.{key}": value for key, value in raw.items()}
    layout = mmtracking_layout(raw, detector_only=detector_only)
    state = convert_mmtracking_state_dict(
        raw, keep_num_batches_tracked=keep_num_batches_tracked, detector_only=detector_only
    )
    config = copy.deepcopy(dict(layout.config))
    names: tuple[str, ...] | None
    if class_names is not None:
        if len(class_names) != layout.num_classes:
            raise ValueError(
                f"{len(class_names)} class names given for a {layout.num_classes}-class checkpoint"
            )
        names, classes_from = tuple(class_names), "given"
    else:
        names = meta_class_names(meta, layout.num_classes)
        classes_from = "checkpoint meta" if names is not None else "unknown"
    if names is not None:
        config["model"]["classes"] = list(names)
    elif layout.num_classes > 1:
        logger.warning(
            "%s: no class names (no usable meta CLASSES); labels will be shown as class_<i>",
            source,
        )
    checkpoint = checkpoint_state(
        state,
        config,
        source={
            "file": source.name,
            "sha256": sha256_file(source),
            "format": "mmdet-2.x" if detector_only else "mmtracking-0.x",
            "layout": layout.name(detector_only=detector_only),
            "num_batches_tracked": "kept" if keep_num_batches_tracked else "dropped",
            "classes": classes_from,
        },
    )
    save_checkpoint(output, checkpoint)
    return checkpoint


def main(args: argparse.Namespace) -> int:
    """Run ``qdtrack convert-checkpoint``."""
    class_names = None
    if getattr(args, "classes_file", None):
        from qdtrack.data.coco import read_class_names

        class_names = read_class_names(args.classes_file)
    checkpoint = convert_checkpoint_file(
        args.checkpoint,
        args.output,
        keep_num_batches_tracked=bool(getattr(args, "keep_num_batches_tracked", False)),
        source_format=getattr(args, "source_format", "mmtracking"),
        class_names=class_names,
    )
    source = checkpoint["source"]
    logger.info(
        "wrote %s: %s, %d tensors from %s (sha256 %s), class names: %s",
        args.output,
        source["layout"],
        len(checkpoint["model"]),
        source["file"],
        source["sha256"],
        source["classes"],
    )
    return 0
