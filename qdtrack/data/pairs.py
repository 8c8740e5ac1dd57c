"""Key / reference frame pairs for QDTrack training (spec/qdtrack.md a.7, a.9, h.1, h.2).

A :class:`PairDataset` concatenates *sources*, like mmtracking's ``ConcatDataset``:

* a MOT source (:func:`mot_source`): MOTChallenge sequences, subset ``"half-train"``,
  ``"half-val"`` or ``"full"``. Every frame with a pedestrian annotation is a key frame; its
  reference frame is drawn uniformly from the same sequence (and subset) within
  ``frame_range`` frames, never the key frame itself;
* a CrowdHuman source (:func:`crowdhuman_source`): still images; the reference is the same
  image, and the two independent random crops make the pair.

``dataset[i]`` loads both images, applies the paired augmentation
(:func:`qdtrack.data.transforms.augment_pair`) and matches gt instances across the pair
(:func:`match_instances`). A rejected pair (no gt in a frame, no instance match) is replaced
by another key drawn from the same source, as mmdet's ``CustomDataset.__getitem__`` does.
Each item uses ``np.random.default_rng((seed, epoch, index))``: the result depends only on
the seed, the epoch (:meth:`PairDataset.set_epoch`) and the index, not on the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor
from torch.utils.data import Dataset

from qdtrack.data.crowdhuman import read_odgt, to_training_boxes
from qdtrack.data.mot import MotTable, half_frames, list_sequences, load_sequence
from qdtrack.data.transforms import (
    FLIP_RATIO,
    RESIZE_RATIO_RANGE,
    ImageBoxes,
    augment_pair,
)
from qdtrack.model.preprocess import ImageBatch, batch_images
from qdtrack.model.sampling import UNMATCHED, match_instances
from qdtrack.structures import FloatArray, IntArray

Subset = Literal["half-train", "half-val", "full"]
SUBSETS: tuple[str, ...] = ("half-train", "half-val", "full")

#: ``ref_img_sampler.frame_range`` of the reference config.
DEFAULT_FRAME_RANGE = 10
#: Reference ``img_scale`` (long side of the resize base and crop size).
DEFAULT_IMG_SCALE = 1088
#: Class index of "pedestrian" in the detector (mmdet: index 0; background is last).
PEDESTRIAN_LABEL = 0
#: ``gt_match_indices`` value of a key gt box with no partner in the reference frame.
NO_MATCH = UNMATCHED  # -1: a key gt without the same instance in the reference frame
#: mmtracking ``mot2coco.py`` drops these MOT16/17/20 classes (USELESS {3,4,5,6,9,10,11} and
#: IGNORES {2,7,8,12,13}, the latter despite its "ignore=True" comment; spec a.9).
MOT_DROPPED_CLASSES = frozenset(range(2, 14))
#: ``CocoVideoDataset._filter_imgs(min_size=32)``: smaller images are never used.
MIN_IMAGE_SIZE = 32
#: Rejected pairs are redrawn at most this many times before giving up.
MAX_DRAWS = 100


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def usable_box_mask(boxes_xyxy: FloatArray, height: int, width: int) -> npt.NDArray[np.bool_]:
    """Boxes mmtracking's ``_parse_ann_info`` keeps for training.

    A box is kept when it overlaps the ``height x width`` image (positive intersection area),
    and ``w >= 1``, ``h >= 1`` (hence area > 0). Visibility is not used (``visibility_thr=-1``).
    """
    x1, y1, x2, y2 = (boxes_xyxy[:, i] for i in range(4))
    w, h = x2 - x1, y2 - y1
    inter_w = np.maximum(0.0, np.minimum(x2, width) - np.maximum(x1, 0.0))
    inter_h = np.maximum(0.0, np.minimum(y2, height) - np.maximum(y1, 0.0))
    return np.asarray((inter_w * inter_h > 0) & (w >= 1) & (h >= 1))


def sample_ref_position(
    rng: np.random.Generator, key_position: int, num_frames: int, frame_range: int
) -> int:
    """Uniform in ``[max(0, t - R), min(t + R, n - 1)]`` without ``t`` (0-based positions).

    mmtracking ``ref_img_sampling(method='uniform', filter_key_img=True)``.
    """
    low = max(0, key_position - frame_range)
    high = min(key_position + frame_range, num_frames - 1)
    candidates = [p for p in range(low, high + 1) if p != key_position]
    if not candidates:
        raise ValueError(f"no reference frame within {frame_range} of position {key_position}")
    return candidates[int(rng.integers(len(candidates)))]


def load_image(path: Path) -> FloatArray:
    """Read a colour image as (H, W, 3) float32 BGR (``LoadMultiImagesFromFile(to_float32)``).

    Raises:
        FileNotFoundError: the file is missing or not a readable image (names the file).
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: image missing or unreadable")
    return image.astype(np.float32)


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairFrame:
    """One annotated image of a source.

    Attributes:
        image_path: the image file.
        frame_number: 1-based MOT frame number (index in the annotation file for stills).
        boxes_xyxy: (K, 4) float32 candidate gt boxes (before the image-size filter).
        instance_ids: (K,) int64 instance ids, or ``None`` for stills, where ids are
            ``0 .. K'-1`` over the boxes that pass the filter.
    """

    image_path: Path
    frame_number: int
    boxes_xyxy: FloatArray
    instance_ids: IntArray | None


@dataclass(frozen=True)
class PairVideo:
    """Frames of one video in order, or (``still=True``) unrelated still images."""

    name: str
    frames: tuple[PairFrame, ...]
    still: bool = False


@dataclass(frozen=True)
class PairSource:
    """One dataset of the concatenation (a MOT subset or CrowdHuman).

    Attributes:
        name: shown in errors and in :class:`PairOrigin`.
        videos: the videos.
        keys: ``(video index, frame index)`` of every key frame.
    """

    name: str
    videos: tuple[PairVideo, ...]
    keys: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError(f"{self.name}: no usable training frames (no frame has a gt box)")


def _pedestrian_rows(gt: MotTable) -> MotTable:
    """Rows mot2coco.py keeps: every class outside {2..13} (MOT15 files have class 1)."""
    dropped = np.isin(gt.classes, sorted(MOT_DROPPED_CLASSES))
    return gt.select(~dropped)


def _number_instances(rows: MotTable, start: int) -> tuple[IntArray, int]:
    """mot2coco.py ids: next counter value for each new MOT id, in (frame, file) order."""
    order = np.argsort(rows.frames, kind="stable")
    mot_ids = rows.ids[order]
    unique, first = np.unique(mot_ids, return_index=True)
    rank = np.empty(unique.shape[0], dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(unique.shape[0])
    ids = start + rank[np.searchsorted(unique, rows.ids)]
    return ids.astype(np.int64), start + int(unique.shape[0])


def _any_box_usable(boxes_xyxy: FloatArray, height: int, width: int) -> bool:
    if height <= 0 or width <= 0:  # size unknown: only the w, h >= 1 rule can be checked
        wh = boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]
        return bool(((wh[:, 0] >= 1) & (wh[:, 1] >= 1)).any())
    return bool(usable_box_mask(boxes_xyxy, height, width).any())


def _sequence_dirs(root: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(root, str | Path):
        path = Path(root)
        return [path] if (path / "seqinfo.ini").is_file() else list_sequences(path)
    return [Path(p) for p in root]


def mot_source(
    root: str | Path | Sequence[str | Path],
    *,
    subset: Subset = "half-train",
    name: str | None = None,
) -> PairSource:
    """MOTChallenge sequences as a training source (mmtracking ``mot2coco.py`` + dataset).

    Kept gt rows: every class except {2, ..., 13} (only pedestrians in MOT16/17/20; all rows
    of MOT15 files, which have no class column); flag and visibility are not used. The
    overlap / ``w, h >= 1`` filter is applied when a frame is loaded (:func:`usable_box_mask`).

    Instance ids (spec a.9, h.2), numbered as ``mot2coco.py`` does for one subset json:
    one counter starts at **0** for the source; sequences are visited in sorted folder order
    (mot2coco uses ``os.listdir`` order, which is unspecified); within a sequence the kept
    rows of the subset's frames are visited by frame, then in file order, and each MOT id
    not yet seen *in this sequence* takes the next counter value. Ids are assigned before
    the size filter. So the first pedestrian of the first sequence has id 0 and is never
    matched by :func:`match_instances` (reference quirk h.2), and the same MOT id in two
    subsets (or two sequences) gets unrelated ids.

    Key frames are the subset's frames with at least one kept row (``_filter_imgs``);
    reference frames are drawn from all frames of the subset (spec a.9).

    Args:
        root: a folder of sequence folders, one sequence folder, or a list of them.
        subset: ``"half-train"`` (frames ``1 .. N//2 + 1``), ``"half-val"`` (the rest) or
            ``"full"``.
        name: the source name (default: ``"<root folder>:<subset>"``).

    Raises:
        ValueError: unknown subset, a sequence without ``gt/gt.txt``, a missing image (names
            it), or no usable key frame in the whole source.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    dirs = _sequence_dirs(root)
    if not dirs:
        raise ValueError("mot_source needs at least one sequence folder")
    base = Path(root).name if isinstance(root, str | Path) else dirs[0].parent.name
    source_name = name or f"{base}:{subset}"
    videos: list[PairVideo] = []
    keys: list[tuple[int, int]] = []
    next_id = 0
    usable = False
    for seq_dir in sorted(dirs):
        seq = load_sequence(seq_dir)
        if seq.gt is None:
            raise ValueError(f"{seq.root}: no gt/gt.txt; training sequences need ground truth")
        paths = seq.image_paths()
        if subset == "full":
            frame_numbers = range(1, seq.info.seq_length + 1)
        else:
            frame_numbers = half_frames(seq.info.seq_length, subset)
        rows = _pedestrian_rows(seq.gt)
        rows = rows.select(
            (rows.frames >= frame_numbers.start) & (rows.frames < frame_numbers.stop)
        )
        ids, next_id = _number_instances(rows, next_id)
        boxes = rows.boxes_xyxy
        frames = []
        for frame in frame_numbers:
            mask = rows.frames == frame
            frames.append(PairFrame(paths[frame - 1], frame, boxes[mask], ids[mask]))
        if len(frames) < 2:  # no reference frame can be drawn
            continue
        video_index = len(videos)
        videos.append(PairVideo(seq.info.name, tuple(frames)))
        for i, pair_frame in enumerate(frames):
            if len(pair_frame.boxes_xyxy):
                keys.append((video_index, i))
                usable = usable or _any_box_usable(
                    pair_frame.boxes_xyxy, seq.info.im_height, seq.info.im_width
                )
    if not usable:
        raise ValueError(
            f"{source_name}: no usable training frames (no frame of subset {subset!r} has a "
            "pedestrian box inside the image with w >= 1 and h >= 1)"
        )
    return PairSource(source_name, tuple(videos), tuple(keys))


def crowdhuman_source(
    odgt_path: str | Path, *, image_dir: str | Path | None = None, name: str = "crowdhuman"
) -> PairSource:
    """CrowdHuman images as a training source (``CocoVideoDataset(load_as_video=False)``).

    Boxes are the full-body ``fbox`` of every entry without ``extra.ignore == 1``
    (:func:`qdtrack.data.crowdhuman.to_training_boxes`); ignore boxes are unused
    (``ignore_iof_thr=-1``). The reference image is the same image. Instance ids are
    ``0 .. K-1`` over the boxes that pass the image filter, per image (so box 0 never
    matches, spec a.9). Key images are those with at least one ``gtbox`` of any kind.

    Args:
        odgt_path: ``annotation_train.odgt``.
        image_dir: folder of ``<ID>.jpg`` (default: ``Images`` beside the ``.odgt``).
        name: the source name.

    Raises:
        FileNotFoundError: the ``.odgt`` or an image is missing (names the file).
        ValueError: a malformed ``.odgt``, or no image with a usable person box.
    """
    odgt = Path(odgt_path)
    folder = Path(image_dir) if image_dir is not None else odgt.parent / "Images"
    frames: list[PairFrame] = []
    keys: list[tuple[int, int]] = []
    usable = False
    for index, image in enumerate(read_odgt(odgt)):
        path = folder / f"{image.image_id}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: CrowdHuman image missing (listed in {odgt})")
        boxes, _, _ = to_training_boxes(image)
        frames.append(PairFrame(path, index, boxes, None))
        if image.boxes:
            keys.append((0, index))
            usable = usable or _any_box_usable(boxes, 0, 0)
    if not usable:
        raise ValueError(f"{name}: no usable training images (no person box with w, h >= 1)")
    return PairSource(name, (PairVideo(name, tuple(frames), still=True),), tuple(keys))


# --------------------------------------------------------------------------------------
# Items and batches
# --------------------------------------------------------------------------------------


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
class TrainPair:
    """One augmented training pair (numpy; :func:`collate_pairs` makes tensors).

    Attributes:
        key_image: (h, w, 3) float32 BGR, 0-255, augmented (not normalised, not padded).
        ref_image: (h', w', 3) float32 BGR reference image.
        key_boxes_xyxy: (N, 4) float32 gt boxes in ``key_image`` pixels (may extend outside).
        ref_boxes_xyxy: (M, 4) float32 gt boxes of the reference image.
        key_instance_ids: (N,) int64 instance ids.
        ref_instance_ids: (M,) int64 instance ids.
        key_labels: (N,) int64 class indices (:data:`PEDESTRIAN_LABEL`).
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


def _chw(image: FloatArray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def collate_pairs(items: Sequence[TrainPair]) -> TrainBatch:
    """``DataLoader`` ``collate_fn``: normalise, pad (to /32) and stack, keep gt as lists."""
    if not items:
        raise ValueError("collate_pairs needs at least one pair")
    key_images = batch_images(
        [_chw(p.key_image) for p in items],
        scale_factors=torch.from_numpy(np.stack([p.key_scale_factor for p in items])),
        original_sizes=[p.key_original_size for p in items],
    )
    ref_images = batch_images(
        [_chw(p.ref_image) for p in items],
        scale_factors=torch.from_numpy(np.stack([p.ref_scale_factor for p in items])),
        original_sizes=[p.ref_original_size for p in items],
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
    return _LoadedFrame(frame, image, boxes, ids)


class PairDataset(Dataset[TrainPair]):
    """Augmented key / reference pairs from one or more sources (concatenated).

    Index ``i`` addresses the key frames of the sources one after another (mmtracking
    ``ConcatDataset``; shuffle with the ``DataLoader``). ``dataset[i]`` returns a
    :class:`TrainPair`; when the pair is rejected (a frame without usable gt, or, with
    ``skip_nomatch``, no key gt matched in the reference) another key frame of the same
    source is drawn with the item's generator (mmdet ``_rand_another``; the reference
    restricts the redraw to its aspect-ratio group, all MOT17 frames are in one group).

    Use ``persistent_workers=False`` (the default) so that :meth:`set_epoch` reaches the
    workers' copies of the dataset.

    Args:
        sources: the sources, e.g. ``[mot_source(...), crowdhuman_source(...)]``.
        img_scale: resize base long side and crop size ``S`` (1088 in the reference).
        frame_range: reference frames are drawn within this many frames of the key.
        seed: base seed; item ``i`` of epoch ``e`` uses ``default_rng((seed, e, i))``.
        skip_nomatch: reject pairs with no matched instance (``MatchInstances``).
        ratio_range: random resize ratio range.
        flip_ratio: probability of flipping a pair.
        require_gt_in_crop: opt-in, see :func:`~qdtrack.data.transforms.augment_pair`.
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
    ) -> None:
        if not sources:
            raise ValueError("PairDataset needs at least one source")
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
        self.epoch = 0
        self._offsets = np.cumsum([0] + [len(s.keys) for s in self.sources])

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (call before each epoch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> TrainPair:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} pairs")
        index %= n
        source_index = int(np.searchsorted(self._offsets, index, side="right")) - 1
        source = self.sources[source_index]
        key_index = index - int(self._offsets[source_index])
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
        augmented = augment_pair(
            ImageBoxes(key_loaded.image, key_loaded.boxes_xyxy),
            ImageBoxes(ref_loaded.image, ref_loaded.boxes_xyxy),
            rng,
            img_scale=self.img_scale,
            ratio_range=self.ratio_range,
            flip_ratio=self.flip_ratio,
            require_gt_in_crop=self.require_gt_in_crop,
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
            key_labels=np.full(len(key_loaded.instance_ids), PEDESTRIAN_LABEL, np.int64),
            ref_labels=np.full(len(ref_loaded.instance_ids), PEDESTRIAN_LABEL, np.int64),
            gt_match_indices=matches,
            key_scale_factor=augmented.scale_factor,
            ref_scale_factor=augmented.ref_scale_factor,
            key_original_size=(int(key_loaded.image.shape[0]), int(key_loaded.image.shape[1])),
            ref_original_size=(int(ref_loaded.image.shape[0]), int(ref_loaded.image.shape[1])),
            flipped=augmented.flipped,
            origin=origin,
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
