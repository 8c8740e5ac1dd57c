"""Training sources: the annotated frames a :class:`~qdtrack.data.pairs.PairDataset` draws
key / reference pairs from (docs/reference-behaviour.md a.9, h.1, h.2).

* :func:`mot_source`: MOTChallenge sequences, subset ``"half-train"``, ``"half-val"`` or
  ``"full"``; every frame with a pedestrian annotation is a key frame;
* :func:`crowdhuman_source`: still images (the reference is the same image);
* :func:`coco_source`: multi-class COCO / LVIS still images, paired like CrowdHuman;
* :func:`tao_source`: multi-class TAO videos whose frames are the annotated images;
  instance ids are TAO track ids.

Frames carry class labels ``0 .. C-1`` (the index of the category's name in the model's
``class_names``, :func:`qdtrack.data.coco.category_labels`); MOT and CrowdHuman boxes are
all :data:`PEDESTRIAN_LABEL`. :func:`repeat_factors` is mmdet's ``ClassBalancedDataset``
rule. :func:`load_source` builds the source a ``train.sources`` entry names, the same way
for training and for ``qdtrack data convert``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from qdtrack.config import DatasetSource
from qdtrack.data.coco import (
    CocoAnnotation,
    CocoCategory,
    CocoImage,
    category_labels,
    read_coco,
)
from qdtrack.data.crowdhuman import read_odgt, to_training_boxes
from qdtrack.data.mot import MotTable, half_frames, list_sequences, load_sequence
from qdtrack.data.tao import TaoAnnotation, TaoDataset, TaoVideo, read_tao
from qdtrack.io_utils import read_json
from qdtrack.structures import FloatArray, IntArray

Subset = Literal["half-train", "half-val", "full"]
SUBSETS: tuple[str, ...] = ("half-train", "half-val", "full")
#: Class index of "pedestrian" in the detector (mmdet: index 0; background is last).
PEDESTRIAN_LABEL = 0
#: mmtracking ``mot2coco.py`` drops these MOT16/17/20 classes (USELESS {3,4,5,6,9,10,11} and
#: IGNORES {2,7,8,12,13}, the latter despite its "ignore=True" comment; reference a.9).
MOT_DROPPED_CLASSES = frozenset(range(2, 14))

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
        frame_number: 1-based MOT frame number; for stills the index in the ``.odgt``
            (CrowdHuman) or the image id (COCO / LVIS); for TAO the 0-based
            ``frame_index``.
        boxes_xyxy: (K, 4) float32 candidate gt boxes (before the image-size filter).
        instance_ids: (K,) int64 instance ids, or ``None`` for stills, where ids are
            ``0 .. K'-1`` over the boxes that pass the filter.
        labels: (K,) int64 class indices ``0 .. C-1``, or ``None`` when every box is
            :data:`PEDESTRIAN_LABEL`.
    """

    image_path: Path
    frame_number: int
    boxes_xyxy: FloatArray
    instance_ids: IntArray | None
    labels: IntArray | None = None


@dataclass(frozen=True)
class PairVideo:
    """Frames of one video in order, or (``still=True``) unrelated still images."""

    name: str
    frames: tuple[PairFrame, ...]
    still: bool = False


@dataclass(frozen=True)
class PairSource:
    """One dataset of the concatenation (a MOT subset, CrowdHuman, COCO / LVIS or TAO).

    Attributes:
        name: shown in errors and in :class:`PairOrigin`.
        videos: the videos.
        keys: ``(video index, frame index)`` of every key frame.
        dropped_annotations: annotations of the file not used (COCO / LVIS / TAO: crowd
            regions, categories outside ``class_names``, area <= 0).
    """

    name: str
    videos: tuple[PairVideo, ...]
    keys: tuple[tuple[int, int], ...]
    dropped_annotations: int = 0

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

    Instance ids (reference a.9, h.2), numbered as ``mot2coco.py`` does for one subset json:
    one counter starts at **0** for the source; sequences are visited in sorted folder order
    (mot2coco uses ``os.listdir`` order, which is unspecified); within a sequence the kept
    rows of the subset's frames are visited by frame, then in file order, and each MOT id
    not yet seen *in this sequence* takes the next counter value. Ids are assigned before
    the size filter. So the first pedestrian of the first sequence has id 0 and is never
    matched by :func:`match_instances` (reference quirk h.2), and the same MOT id in two
    subsets (or two sequences) gets unrelated ids.

    Key frames are the subset's frames with at least one kept row (``_filter_imgs``);
    reference frames are drawn from all frames of the subset (reference a.9).

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
    matches, reference a.9). Key images are those with at least one ``gtbox`` of any kind.

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
# Multi-class sources (COCO / LVIS, TAO)
# --------------------------------------------------------------------------------------

_Annotation = TypeVar("_Annotation", CocoAnnotation, TaoAnnotation)


def _training_annotations(
    annotations: Sequence[_Annotation], labels_of: Mapping[int, int]
) -> list[_Annotation]:
    """Annotations used as gt: not crowd, area > 0 (``_parse_ann_info``), class known."""
    return [a for a in annotations if not a.iscrowd and a.area > 0 and a.category_id in labels_of]


def _boxes_and_labels(
    annotations: Sequence[_Annotation], labels_of: Mapping[int, int]
) -> tuple[FloatArray, IntArray]:
    boxes = np.array([a.bbox_xyxy for a in annotations], dtype=np.float32).reshape(-1, 4)
    labels = np.array([labels_of[a.category_id] for a in annotations], dtype=np.int64)
    return boxes, labels


def _class_labels(
    categories: Sequence[CocoCategory],
    class_names: Sequence[str],
    category_map: Mapping[str, str] | None,
    path: Path,
) -> dict[int, int]:
    labels_of = category_labels(categories, class_names, category_map)
    if not labels_of:
        raise ValueError(
            f"{path}: none of its {len(categories)} categories is in class_names "
            f"({len(class_names)} names, e.g. {class_names[0]!r}); check class_names and "
            "category_map"
        )
    return labels_of


def _coco_image_path(image_dir: Path, image: CocoImage, json_path: Path) -> Path:
    """The image file; LVIS v0.5 names COCO-2014 files, stored under their 2017 names."""
    path = image_dir / image.file_name
    if path.is_file():
        return path
    name = Path(image.file_name).name
    # "COCO_train2014_000000000009.jpg" -> "000000000009.jpg" (mmtracking TaoDataset).
    if name.startswith("COCO_") and (image_dir / name[-16:]).is_file():
        return image_dir / name[-16:]
    raise FileNotFoundError(f"{path}: image missing (images id {image.id} of {json_path})")


def coco_source(
    json_path: str | Path,
    *,
    image_dir: str | Path,
    class_names: Sequence[str],
    category_map: Mapping[str, str] | None = None,
    name: str | None = None,
) -> PairSource:
    """COCO or LVIS images as a multi-class training source (``load_as_video=False``).

    Still images, paired like CrowdHuman: the reference is the same image (with the "mot"
    augmentation the two independent crops make the pair). Gt boxes are the annotations
    that are not crowd, have ``area > 0`` and whose category maps to a class
    (:func:`qdtrack.data.coco.category_labels`); the rest count in
    ``dropped_annotations``. Labels come from the category; instance ids are ``0 .. K-1``
    over the boxes that pass the image filter, per image (so box 0 never matches, spec
    a.9). Images without a gt box are not key frames (nor loaded at all).

    Args:
        json_path: the COCO / LVIS annotation file (:func:`~qdtrack.data.coco.read_coco`).
        image_dir: the image folder; files are ``image_dir / file_name`` (LVIS v0.5 COCO-2014
            names fall back to their 2017 name, the last 16 characters).
        class_names: the model's classes in label order.
        category_map: optional renaming of the file's category names before the lookup.
        name: the source name (default: the file's stem).

    Raises:
        FileNotFoundError: the file or an image with gt is missing (names it).
        ValueError: a malformed file, no category in ``class_names``, or no usable box.
    """
    path = Path(json_path)
    folder = Path(image_dir)
    dataset = read_coco(path)
    labels_of = _class_labels(dataset.categories, class_names, category_map, path)
    source_name = name or path.stem
    frames: list[PairFrame] = []
    dropped = 0
    usable = False
    for image in dataset.images:
        annotations = dataset.annotations_of(image.id)
        kept = _training_annotations(annotations, labels_of)
        dropped += len(annotations) - len(kept)
        if not kept:
            continue
        boxes, labels = _boxes_and_labels(kept, labels_of)
        image_path = _coco_image_path(folder, image, path)
        frames.append(PairFrame(image_path, image.id, boxes, None, labels))
        usable = usable or _any_box_usable(boxes, image.height, image.width)
    if not usable:
        raise ValueError(
            f"{source_name}: no usable training images in {path} (no box of a class in "
            "class_names inside its image with w >= 1 and h >= 1)"
        )
    keys = tuple((0, index) for index in range(len(frames)))
    video = PairVideo(source_name, tuple(frames), still=True)
    return PairSource(source_name, (video,), keys, dropped_annotations=dropped)


def _tao_video_frames(
    dataset: TaoDataset, video: TaoVideo, labels_of: Mapping[int, int], image_dir: Path
) -> tuple[list[PairFrame], int]:
    """The frames of one video (sorted by ``frame_index``) and its dropped-box count."""
    frames: list[PairFrame] = []
    dropped = 0
    for image in dataset.frames_of(video.id):
        annotations = dataset.annotations_of(image.id)
        kept = _training_annotations(annotations, labels_of)
        dropped += len(annotations) - len(kept)
        boxes, labels = _boxes_and_labels(kept, labels_of)
        ids = np.array([a.track_id for a in kept], dtype=np.int64)
        frames.append(PairFrame(image_dir / image.file_name, image.frame_index, boxes, ids, labels))
    return frames, dropped


def tao_source(
    json_path: str | Path,
    *,
    image_dir: str | Path,
    class_names: Sequence[str],
    category_map: Mapping[str, str] | None = None,
    name: str | None = None,
) -> PairSource:
    """TAO videos as a multi-class training source (``TaoDataset(load_as_video=True)``).

    Every video with at least two annotated images is a :class:`PairVideo` whose frames
    are its images sorted by ``frame_index``; reference frames are drawn among them by
    position (``PairDataset(frame_range=1)`` = an adjacent annotated frame, as the
    mmtracking TAO config's ``frame_range=[-1, 1]``). Gt boxes are the annotations that
    are not crowd, have ``area > 0`` and whose category maps to a class; the rest count in
    ``dropped_annotations``. Instance ids are the TAO ``track_id`` (unique across videos;
    a track with id 0 is never matched, as in the reference, reference h.2). Key frames are the
    frames with a gt box.

    Args:
        json_path: the TAO annotation file (:func:`~qdtrack.data.tao.read_tao`).
        image_dir: the folder that ``file_name`` is relative to.
        class_names: the model's classes in label order.
        category_map: optional renaming of the file's category names before the lookup.
        name: the source name (default: the file's stem).

    Raises:
        FileNotFoundError: the file or a frame of a used video is missing (names it).
        ValueError: a malformed file, a negative track id, no category in
            ``class_names``, or no usable box.
    """
    path = Path(json_path)
    folder = Path(image_dir)
    dataset = read_tao(path)
    for index, track in enumerate(dataset.tracks):
        if track.id < 0:  # NO_MATCH and the tracker use negative ids as sentinels
            raise ValueError(f"{path}: tracks[{index}]: track id {track.id} is negative")
    labels_of = _class_labels(dataset.categories, class_names, category_map, path)
    source_name = name or path.stem
    videos: list[PairVideo] = []
    keys: list[tuple[int, int]] = []
    dropped = 0
    usable = False
    for video in dataset.videos:
        frames, video_dropped = _tao_video_frames(dataset, video, labels_of, folder)
        dropped += video_dropped
        if len(frames) < 2:  # no reference frame can be drawn
            continue
        for frame in frames:
            if not frame.image_path.is_file():
                raise FileNotFoundError(f"{frame.image_path}: TAO image missing (in {path})")
        video_index = len(videos)
        videos.append(PairVideo(video.name, tuple(frames)))
        for position, frame in enumerate(frames):
            if len(frame.boxes_xyxy):
                keys.append((video_index, position))
                usable = usable or _any_box_usable(frame.boxes_xyxy, 0, 0)
    if not usable:
        raise ValueError(
            f"{source_name}: no usable training frames in {path} (no video with two annotated "
            "frames has a box of a class in class_names with w >= 1 and h >= 1)"
        )
    return PairSource(source_name, tuple(videos), tuple(keys), dropped_annotations=dropped)


# --------------------------------------------------------------------------------------
# Class-balanced oversampling
# --------------------------------------------------------------------------------------


def key_labels(source: PairSource) -> list[IntArray]:
    """(K_i,) int64 labels of every key frame of ``source`` in key order (before the filter)."""
    labels = []
    for video_index, frame_index in source.keys:
        frame = source.videos[video_index].frames[frame_index]
        if frame.labels is None:
            labels.append(np.full(len(frame.boxes_xyxy), PEDESTRIAN_LABEL, np.int64))
        else:
            labels.append(frame.labels)
    return labels


def repeat_factors(
    labels_per_image: Sequence[Iterable[int]], oversample_thr: float
) -> npt.NDArray[np.float64]:
    """Repeat factor of every image as mmdet's ``ClassBalancedDataset``.

    For each class ``c``, ``f(c)`` is the fraction of images that contain ``c`` and
    ``r(c) = max(1, sqrt(oversample_thr / f(c)))``; an image's factor is the largest
    ``r(c)`` of its classes (1 for an image without boxes). The dataset then repeats image
    ``I`` ``ceil(r(I))`` times (:class:`PairDataset` with ``oversample_thr``).

    Args:
        labels_per_image: the labels of each image's boxes (repeats allowed).
        oversample_thr: the frequency below which a class is oversampled (mmtracking TAO /
            LVIS: 1e-3).

    Returns:
        (num_images,) float64 factors ``>= 1``.

    Raises:
        ValueError: ``oversample_thr`` is negative or not finite.
    """
    if not (math.isfinite(oversample_thr) and oversample_thr >= 0):
        raise ValueError(f"oversample_thr must be a finite number >= 0, got {oversample_thr}")
    label_sets = [{int(label) for label in labels} for labels in labels_per_image]
    counts = Counter(label for labels in label_sets for label in labels)
    num_images = len(label_sets)
    class_repeat = {  # computed as mmdet does, so that ceil() agrees at the boundaries
        label: max(1.0, math.sqrt(oversample_thr / (count / num_images)))
        for label, count in counts.items()
    }
    factors = [max((class_repeat[label] for label in labels), default=1.0) for labels in label_sets]
    return np.array(factors, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Configured sources
# --------------------------------------------------------------------------------------


def read_category_map(path: str | Path) -> dict[str, str]:
    """A ``{source category name: class name}`` JSON object.

    Raises:
        ValueError: the file is not a JSON object of strings (names the file).
    """
    doc = read_json(path)
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
    ):
        raise ValueError(f"{path}: a category map must be a JSON object of name -> name")
    return dict(doc)


def load_source(source: DatasetSource, class_names: Sequence[str]) -> PairSource:
    """Load one configured source; COCO / LVIS / TAO labels follow ``class_names``.

    Raises:
        FileNotFoundError: the source path (or an image it lists) does not exist.
        ValueError: a malformed annotation file, or a source without usable frames.
    """
    path = Path(source.path)
    if not path.exists():
        raise FileNotFoundError(f"training source not found: {path}")
    if source.kind == "mot":
        return mot_source(path, subset=source.subset)
    if source.kind == "crowdhuman":
        return crowdhuman_source(path if path.is_file() else path / "annotation_train.odgt")
    images = Path(source.images) if source.images else path.parent
    category_map = read_category_map(source.category_map) if source.category_map else None
    if source.kind in ("coco", "lvis"):
        return coco_source(
            path,
            image_dir=images,
            class_names=class_names,
            category_map=category_map,
            name=f"{source.kind}:{path.name}",
        )
    return tao_source(
        path,
        image_dir=images,
        class_names=class_names,
        category_map=category_map,
        name=f"tao:{path.name}",
    )
