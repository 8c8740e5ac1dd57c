"""Key / reference frame pairs for QDTrack training (reference a.7, a.9, h.1, h.2).

Sections: docs/reference-behaviour.md.

A :class:`PairDataset` concatenates *sources* (:mod:`qdtrack.data.sources`: MOT sequences,
CrowdHuman, COCO / LVIS stills, TAO videos), like mmtracking's ``ConcatDataset``. In a
video the reference frame is drawn uniformly within ``frame_range`` frames of the key,
never the key frame itself; for still images the reference is the same image and two
independent random crops make the pair. ``PairDataset(oversample_thr=...)`` repeats key frames as
mmdet's ``ClassBalancedDataset`` (:func:`repeat_factors`), and ``augment="lvis"`` selects
the TAO / LVIS augmentation (:func:`qdtrack.data.transforms.augment_pair_multiscale`)
instead of the MOT one.

``dataset[i]`` loads both images, applies the paired augmentation
(:func:`qdtrack.data.transforms.augment_pair`) and matches gt instances across the pair
(:func:`match_instances`). A rejected pair (no gt in a frame, no instance match) is replaced
by another key drawn from the same source, as mmdet's ``CustomDataset.__getitem__`` does.
Each item uses ``np.random.default_rng((seed, epoch, index))``: the result depends only on
the seed, the epoch (:meth:`PairDataset.set_epoch`) and the index, not on the worker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from qdtrack.data.sources import (
    MOT_DROPPED_CLASSES,
    PEDESTRIAN_LABEL,
    SUBSETS,
    PairFrame,
    PairSource,
    PairVideo,
    Subset,
    coco_source,
    crowdhuman_source,
    key_labels,
    load_image,
    mot_source,
    repeat_factors,
    sample_ref_position,
    tao_source,
    usable_box_mask,
)
from qdtrack.data.transforms import (
    FLIP_RATIO,
    LVIS_SCALES,
    RESIZE_RATIO_RANGE,
    AugmentedPair,
    ImageBoxes,
    augment_pair,
    augment_pair_multiscale,
)
from qdtrack.model.inputs import PairOrigin, TrainBatch
from qdtrack.model.preprocess import NORMALIZATIONS, Normalization, batch_images
from qdtrack.model.sampling import UNMATCHED, match_instances
from qdtrack.structures import FloatArray, IntArray

#: ``"mot"``: the MOT17 pipeline (reference a.7); ``"lvis"``: the TAO / LVIS pipeline.
Augment = Literal["mot", "lvis"]
AUGMENT_MODES: tuple[str, ...] = ("mot", "lvis")

#: ``ref_img_sampler.frame_range`` of the reference config.
DEFAULT_FRAME_RANGE = 10
#: Reference ``img_scale`` (long side of the resize base and crop size).
DEFAULT_IMG_SCALE = 1088
#: ``gt_match_indices`` value of a key gt box with no partner in the reference frame.
NO_MATCH = UNMATCHED  # -1: a key gt without the same instance in the reference frame
#: ``CocoVideoDataset._filter_imgs(min_size=32)``: smaller images are never used.
MIN_IMAGE_SIZE = 32
#: Rejected pairs are redrawn at most this many times before giving up.
MAX_DRAWS = 100

__all__ = [
    "AUGMENT_MODES",
    "MOT_DROPPED_CLASSES",
    "NO_MATCH",
    "PEDESTRIAN_LABEL",
    "SUBSETS",
    "PairDataset",
    "PairFrame",
    "PairOrigin",
    "PairSource",
    "PairVideo",
    "Subset",
    "TrainBatch",
    "TrainPair",
    "build_pair_dataset",
    "coco_source",
    "collate_pairs",
    "crowdhuman_source",
    "key_labels",
    "load_image",
    "mot_source",
    "repeat_factors",
    "sample_ref_position",
    "tao_source",
    "usable_box_mask",
]

# --------------------------------------------------------------------------------------
# Items and batches
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainPair:
    """One augmented training pair (numpy; :func:`collate_pairs` makes tensors).

    Attributes:
        key_image: (h, w, 3) float32 BGR, 0-255, augmented (not normalised, not padded).
        ref_image: (h', w', 3) float32 BGR reference image.
        key_boxes_xyxy: (N, 4) float32 gt boxes in ``key_image`` pixels (may extend outside).
        ref_boxes_xyxy: (M, 4) float32 gt boxes of the reference image.
        key_instance_ids: (N,) int64 instance ids.
        ref_instance_ids: (M,) int64 instance ids.
        key_labels: (N,) int64 class indices ``0 .. C-1`` (:data:`PEDESTRIAN_LABEL` for
            MOT and CrowdHuman).
        ref_labels: (M,) int64 class indices.
        gt_match_indices: (N,) int64 index into the ref gt, or :data:`NO_MATCH`.
        key_scale_factor: (4,) float32 resize factors ``(sx, sy, sx, sy)`` of the key frame.
        ref_scale_factor: (4,) float32 resize factors of the reference frame.
        key_original_size: ``(h, w)`` of the key frame on disk.
        ref_original_size: ``(h, w)`` of the reference frame on disk.
        flipped: both images were mirrored.
        origin: source, video, frame numbers and image files.
    """

    key_image: FloatArray
    ref_image: FloatArray
    key_boxes_xyxy: FloatArray
    ref_boxes_xyxy: FloatArray
    key_instance_ids: IntArray
    ref_instance_ids: IntArray
    key_labels: IntArray
    ref_labels: IntArray
    gt_match_indices: IntArray
    key_scale_factor: FloatArray
    ref_scale_factor: FloatArray
    key_original_size: tuple[int, int]
    ref_original_size: tuple[int, int]
    flipped: bool
    origin: PairOrigin


def _chw(image: FloatArray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def collate_pairs(
    items: Sequence[TrainPair], normalization: Normalization = NORMALIZATIONS["caffe"]
) -> TrainBatch:
    """``DataLoader`` ``collate_fn``: normalise, pad (to /32) and stack, keep gt as lists.

    ``normalization`` must be the model's (``model.detector.normalization``); bind it with
    ``functools.partial`` for a ``DataLoader``.
    """
    if not items:
        raise ValueError("collate_pairs needs at least one pair")
    key_images = batch_images(
        [_chw(p.key_image) for p in items],
        scale_factors=torch.from_numpy(np.stack([p.key_scale_factor for p in items])),
        original_sizes=[p.key_original_size for p in items],
        mean=normalization.mean,
        std=normalization.std,
        to_rgb=normalization.to_rgb,
    )
    ref_images = batch_images(
        [_chw(p.ref_image) for p in items],
        scale_factors=torch.from_numpy(np.stack([p.ref_scale_factor for p in items])),
        original_sizes=[p.ref_original_size for p in items],
        mean=normalization.mean,
        std=normalization.std,
        to_rgb=normalization.to_rgb,
    )
    return TrainBatch(
        key_images=key_images,
        ref_images=ref_images,
        key_boxes_xyxy=[torch.from_numpy(p.key_boxes_xyxy) for p in items],
        key_labels=[torch.from_numpy(p.key_labels) for p in items],
        key_instance_ids=[torch.from_numpy(p.key_instance_ids) for p in items],
        ref_boxes_xyxy=[torch.from_numpy(p.ref_boxes_xyxy) for p in items],
        ref_labels=[torch.from_numpy(p.ref_labels) for p in items],
        ref_instance_ids=[torch.from_numpy(p.ref_instance_ids) for p in items],
        gt_match_indices=[torch.from_numpy(p.gt_match_indices) for p in items],
        origins=[p.origin for p in items],
    )


# --------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoadedFrame:
    frame: PairFrame
    image: FloatArray
    boxes_xyxy: FloatArray
    instance_ids: IntArray
    labels: IntArray


def _load_frame(frame: PairFrame, image: FloatArray | None = None) -> _LoadedFrame | None:
    """Read the image and apply the gt filter; ``None`` if the image is too small."""
    if image is None:
        image = load_image(frame.image_path)
    height, width = image.shape[:2]
    if min(height, width) < MIN_IMAGE_SIZE:
        return None
    keep = usable_box_mask(frame.boxes_xyxy, height, width)
    boxes = frame.boxes_xyxy[keep]
    if frame.instance_ids is None:  # stills: ids 0..K-1 after filtering
        ids = np.arange(boxes.shape[0], dtype=np.int64)
    else:
        ids = frame.instance_ids[keep]
    if frame.labels is None:
        labels = np.full(boxes.shape[0], PEDESTRIAN_LABEL, np.int64)
    else:
        labels = frame.labels[keep]
    return _LoadedFrame(frame, image, boxes, ids, labels)


class PairDataset(Dataset[TrainPair]):
    """Augmented key / reference pairs from one or more sources (concatenated).

    Index ``i`` addresses the key frames of the sources one after another (mmtracking
    ``ConcatDataset``; shuffle with the ``DataLoader``). ``dataset[i]`` returns a
    :class:`TrainPair`; when the pair is rejected (a frame without usable gt, or, with
    ``skip_nomatch``, no key gt matched in the reference) another key frame of the same
    source is drawn with the item's generator (mmdet ``_rand_another``; the reference
    restricts the redraw to its aspect-ratio group, all MOT17 frames are in one group).

    With ``oversample_thr`` the key frames of all sources are repeated as mmdet's
    ``ClassBalancedDataset`` does (:func:`repeat_factors` over the key frames' labels; key
    ``I`` appears ``ceil(r(I))`` times in a row), so ``len`` grows and index ``i`` addresses
    the expanded list; a rejected pair is still redrawn uniformly from its source's keys.

    Use ``persistent_workers=False`` (the default) so that :meth:`set_epoch` reaches the
    workers' copies of the dataset.

    Args:
        sources: the sources, e.g. ``[mot_source(...), crowdhuman_source(...)]``.
        img_scale: resize base long side and crop size ``S`` (1088 in the reference; used by
            ``augment="mot"``).
        frame_range: reference frames are drawn within this many frame positions of the key
            (10 for MOT17; 1 for TAO, whose frames are the annotated images).
        seed: base seed; item ``i`` of epoch ``e`` uses ``default_rng((seed, e, i))``.
        skip_nomatch: reject pairs with no matched instance (``MatchInstances``).
        ratio_range: random resize ratio range (``augment="mot"``).
        flip_ratio: probability of flipping a pair.
        require_gt_in_crop: opt-in, see :func:`~qdtrack.data.transforms.augment_pair`.
        oversample_thr: ``None`` (no repetition) or the ``ClassBalancedDataset`` threshold
            (1e-3 in the mmtracking TAO / LVIS configs).
        augment: ``"mot"``: :func:`~qdtrack.data.transforms.augment_pair` (reference a.7);
            ``"lvis"``: :func:`~qdtrack.data.transforms.augment_pair_multiscale` (shared
            keep-ratio resize to one of ``lvis_scales``, shared flip, no crop or colour
            change).
        lvis_scales: the ``(long, short)`` scales of ``augment="lvis"`` (reference
            (1333, 640) ... (1333, 800); smaller for CPU configurations).
    """

    def __init__(
        self,
        sources: Sequence[PairSource],
        *,
        img_scale: int = DEFAULT_IMG_SCALE,
        frame_range: int = DEFAULT_FRAME_RANGE,
        seed: int = 0,
        skip_nomatch: bool = True,
        ratio_range: tuple[float, float] = RESIZE_RATIO_RANGE,
        flip_ratio: float = FLIP_RATIO,
        require_gt_in_crop: bool = False,
        oversample_thr: float | None = None,
        augment: Augment = "mot",
        lvis_scales: Sequence[tuple[int, int]] = LVIS_SCALES,
    ) -> None:
        if not sources:
            raise ValueError("PairDataset needs at least one source")
        if augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {augment!r}")
        if not lvis_scales or any(len(s) != 2 or min(s) <= 0 for s in lvis_scales):
            raise ValueError(f"lvis_scales must be (long, short) pairs > 0, got {lvis_scales}")
        if oversample_thr is not None and not (
            math.isfinite(oversample_thr) and oversample_thr >= 0
        ):
            raise ValueError(f"oversample_thr must be None or >= 0, got {oversample_thr}")
        if img_scale < MIN_IMAGE_SIZE:
            raise ValueError(f"img_scale must be >= {MIN_IMAGE_SIZE}, got {img_scale}")
        if frame_range < 1:
            raise ValueError(f"frame_range must be >= 1, got {frame_range}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.sources = tuple(sources)
        self.img_scale = img_scale
        self.frame_range = frame_range
        self.seed = seed
        self.skip_nomatch = skip_nomatch
        self.ratio_range = ratio_range
        self.flip_ratio = flip_ratio
        self.require_gt_in_crop = require_gt_in_crop
        self.oversample_thr = oversample_thr
        self.augment = augment
        self.lvis_scales = tuple((int(s[0]), int(s[1])) for s in lvis_scales)
        self.epoch = 0
        self._offsets = np.cumsum([0] + [len(s.keys) for s in self.sources])
        self._key_indices = self._expand_keys(oversample_thr)

    def _expand_keys(self, oversample_thr: float | None) -> IntArray:
        """Global key index of every dataset index (repeated with ``oversample_thr``)."""
        keys = np.arange(int(self._offsets[-1]), dtype=np.int64)
        if oversample_thr is None:
            return keys
        labels = [labels for source in self.sources for labels in key_labels(source)]
        factors = repeat_factors(labels, oversample_thr)
        return np.repeat(keys, [math.ceil(f) for f in factors]).astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (call before each epoch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self._key_indices.shape[0])

    def __getitem__(self, index: int) -> TrainPair:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} pairs")
        index %= n
        global_key = int(self._key_indices[index])
        source_index = int(np.searchsorted(self._offsets, global_key, side="right")) - 1
        source = self.sources[source_index]
        key_index = global_key - int(self._offsets[source_index])
        rng = np.random.default_rng((self.seed, self.epoch, index))
        for _ in range(MAX_DRAWS):
            pair = self._make_pair(source, source.keys[key_index], rng)
            if pair is not None:
                return pair
            key_index = int(rng.integers(len(source.keys)))
        raise RuntimeError(
            f"{source.name}: no valid pair after {MAX_DRAWS} draws (frames without usable gt "
            "or without instances seen in two frames?)"
        )

    def _make_pair(
        self, source: PairSource, key: tuple[int, int], rng: np.random.Generator
    ) -> TrainPair | None:
        """Load, filter, augment and match one candidate pair; ``None`` if rejected."""
        video = source.videos[key[0]]
        key_frame = video.frames[key[1]]
        key_loaded = _load_frame(key_frame)
        if key_loaded is None:
            return None
        if video.still:
            ref_loaded: _LoadedFrame | None = _load_frame(key_frame, key_loaded.image)
        else:
            ref_position = sample_ref_position(rng, key[1], len(video.frames), self.frame_range)
            ref_loaded = _load_frame(video.frames[ref_position])
        if ref_loaded is None:
            return None
        augmented = self._augment(
            ImageBoxes(key_loaded.image, key_loaded.boxes_xyxy),
            ImageBoxes(ref_loaded.image, ref_loaded.boxes_xyxy),
            rng,
        )
        if augmented is None:
            return None
        matches = match_instances(
            torch.from_numpy(key_loaded.instance_ids), torch.from_numpy(ref_loaded.instance_ids)
        ).numpy()
        if self.skip_nomatch and not (matches != NO_MATCH).any():
            return None
        origin = PairOrigin(
            source=source.name,
            video=video.name,
            key_frame=key_frame.frame_number,
            ref_frame=ref_loaded.frame.frame_number,
            key_image_path=key_frame.image_path,
            ref_image_path=ref_loaded.frame.image_path,
        )
        return TrainPair(
            key_image=augmented.key.image,
            ref_image=augmented.ref.image,
            key_boxes_xyxy=augmented.key.boxes_xyxy,
            ref_boxes_xyxy=augmented.ref.boxes_xyxy,
            key_instance_ids=key_loaded.instance_ids,
            ref_instance_ids=ref_loaded.instance_ids,
            key_labels=key_loaded.labels,
            ref_labels=ref_loaded.labels,
            gt_match_indices=matches,
            key_scale_factor=augmented.scale_factor,
            ref_scale_factor=augmented.ref_scale_factor,
            key_original_size=(int(key_loaded.image.shape[0]), int(key_loaded.image.shape[1])),
            ref_original_size=(int(ref_loaded.image.shape[0]), int(ref_loaded.image.shape[1])),
            flipped=augmented.flipped,
            origin=origin,
        )

    def _augment(
        self, key: ImageBoxes, ref: ImageBoxes, rng: np.random.Generator
    ) -> AugmentedPair | None:
        """The configured paired augmentation; ``None`` rejects the pair."""
        if self.augment == "lvis":
            return augment_pair_multiscale(
                key, ref, rng, scales=self.lvis_scales, flip_ratio=self.flip_ratio
            )
        return augment_pair(
            key,
            ref,
            rng,
            img_scale=self.img_scale,
            ratio_range=self.ratio_range,
            flip_ratio=self.flip_ratio,
            require_gt_in_crop=self.require_gt_in_crop,
        )


def build_pair_dataset(
    *,
    mot_root: str | Path | None = None,
    subset: Subset = "half-train",
    crowdhuman_odgt: str | Path | None = None,
    crowdhuman_images: str | Path | None = None,
    img_scale: int = DEFAULT_IMG_SCALE,
    frame_range: int = DEFAULT_FRAME_RANGE,
    seed: int = 0,
) -> PairDataset:
    """The reference training set: MOT ``subset`` and/or CrowdHuman, concatenated.

    Raises:
        ValueError: neither source is given, or a source has no usable frame.
    """
    sources: list[PairSource] = []
    if mot_root is not None:
        sources.append(mot_source(mot_root, subset=subset))
    if crowdhuman_odgt is not None:
        sources.append(crowdhuman_source(crowdhuman_odgt, image_dir=crowdhuman_images))
    if not sources:
        raise ValueError("build_pair_dataset needs mot_root and/or crowdhuman_odgt")
    return PairDataset(sources, img_scale=img_scale, frame_range=frame_range, seed=seed)
