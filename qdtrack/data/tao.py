"""TAO annotations (COCO-video style JSON; docs/reference-behaviour.md (data formats)).

A TAO file is one JSON object with the lists ``videos``, ``images``, ``annotations``,
``tracks`` and ``categories``. Images are the annotated frames of a video (TAO annotates
about one frame per second); ``frame_index`` is the frame's position in the full video.
Annotations carry a ``track_id`` shared by the boxes of one object across the frames of a
video, and a track has one category.

:func:`read_tao` checks the file and raises ``ValueError`` naming the file and the element
(``annotations[12]``) on the first problem. Parsing uses plain loops over dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qdtrack.data.coco import (
    BoxXywh,
    CocoCategory,
    check_record,
    check_unique_ids,
    get_area,
    get_bbox_xywh,
    get_flag,
    get_id_list,
    get_int,
    get_size,
    get_str,
    group_annotations,
    parse_categories,
    read_json_tables,
)

#: Top-level lists of a TAO file.
TAO_KEYS: tuple[str, ...] = ("videos", "images", "annotations", "tracks", "categories")


@dataclass(frozen=True, slots=True)
class TaoVideo:
    """One video (``videos[i]``).

    Attributes:
        id: the video id.
        name: the video name, e.g. ``"train/YFCC100M/v_f69ebe5b731d3e87c1a3992ee39c3b7e"``.
        width: frame width in pixels, or ``None`` when not given.
        height: frame height in pixels, or ``None`` when not given.
        neg_category_ids: categories verified absent from the video.
        not_exhaustive_category_ids: categories not exhaustively annotated in the video.
    """

    id: int
    name: str
    width: int | None = None
    height: int | None = None
    neg_category_ids: tuple[int, ...] = ()
    not_exhaustive_category_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TaoImage:
    """One annotated frame (``images[i]``).

    Attributes:
        id: the image id.
        video_id: the video it belongs to.
        frame_index: 0-based index of the frame in the full video.
        file_name: the file name relative to the image folder.
        width: image width in pixels.
        height: image height in pixels.
    """

    id: int
    video_id: int
    frame_index: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class TaoAnnotation:
    """One box of a track (``annotations[i]``).

    Attributes:
        id: the annotation id.
        image_id: the frame it belongs to.
        video_id: the video of that frame.
        track_id: the track (object) it belongs to.
        category_id: the track's category.
        bbox_xywh: ``(x, y, w, h)`` in pixels, finite, ``w, h >= 0``.
        area: the annotated area (``w * h`` when absent).
        iscrowd: a crowd region (``False`` when absent).
    """

    id: int
    image_id: int
    video_id: int
    track_id: int
    category_id: int
    bbox_xywh: BoxXywh
    area: float
    iscrowd: bool = False

    @property
    def bbox_xyxy(self) -> BoxXywh:
        """The box as ``(x1, y1, x2, y2)``."""
        x, y, w, h = self.bbox_xywh
        return (x, y, x + w, y + h)


@dataclass(frozen=True, slots=True)
class TaoTrack:
    """One track (``tracks[i]``): an object followed through a video."""

    id: int
    category_id: int
    video_id: int


@dataclass(frozen=True)
class TaoDataset:
    """A parsed TAO file (see :func:`read_tao`); the lists are in file order.

    Attributes:
        path: the file it was read from.
        videos: the videos.
        images: the annotated frames.
        annotations: the boxes.
        tracks: the tracks.
        categories: the categories.
    """

    path: Path
    videos: tuple[TaoVideo, ...]
    images: tuple[TaoImage, ...]
    annotations: tuple[TaoAnnotation, ...]
    tracks: tuple[TaoTrack, ...]
    categories: tuple[CocoCategory, ...]
    _frames: dict[int, tuple[TaoImage, ...]] = field(init=False, repr=False, compare=False)
    _per_image: dict[int, tuple[TaoAnnotation, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        frames: dict[int, list[TaoImage]] = {}
        for image in self.images:
            frames.setdefault(image.video_id, []).append(image)
        sorted_frames = {
            video_id: tuple(sorted(group, key=lambda image: image.frame_index))
            for video_id, group in frames.items()
        }
        object.__setattr__(self, "_frames", sorted_frames)
        object.__setattr__(self, "_per_image", group_annotations(self.annotations))

    def frames_of(self, video_id: int) -> tuple[TaoImage, ...]:
        """The annotated frames of a video sorted by ``frame_index`` (empty when none)."""
        return self._frames.get(video_id, ())

    def annotations_of(self, image_id: int) -> tuple[TaoAnnotation, ...]:
        """The boxes of one frame, in file order (empty when it has none)."""
        return self._per_image.get(image_id, ())


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def _optional_size(record: dict[str, Any], key: str, where: str) -> int | None:
    return None if record.get(key) is None else get_size(record, key, where)


def _parse_video(raw: Any, where: str) -> TaoVideo:
    record = check_record(raw, where, ("id", "name"))
    return TaoVideo(
        id=get_int(record, "id", where),
        name=get_str(record, "name", where),
        width=_optional_size(record, "width", where),
        height=_optional_size(record, "height", where),
        neg_category_ids=get_id_list(record, "neg_category_ids", where),
        not_exhaustive_category_ids=get_id_list(record, "not_exhaustive_category_ids", where),
    )


def _parse_image(raw: Any, where: str) -> TaoImage:
    record = check_record(
        raw, where, ("id", "video_id", "frame_index", "file_name", "width", "height")
    )
    frame_index = get_int(record, "frame_index", where)
    if frame_index < 0:
        raise ValueError(f"{where}: 'frame_index' must be >= 0, got {frame_index}")
    return TaoImage(
        id=get_int(record, "id", where),
        video_id=get_int(record, "video_id", where),
        frame_index=frame_index,
        file_name=get_str(record, "file_name", where),
        width=get_size(record, "width", where),
        height=get_size(record, "height", where),
    )


_ANNOTATION_FIELDS = ("id", "image_id", "video_id", "track_id", "category_id", "bbox")


def _parse_annotation(raw: Any, where: str) -> TaoAnnotation:
    record = check_record(raw, where, _ANNOTATION_FIELDS)
    bbox = get_bbox_xywh(record, where)
    return TaoAnnotation(
        id=get_int(record, "id", where),
        image_id=get_int(record, "image_id", where),
        video_id=get_int(record, "video_id", where),
        track_id=get_int(record, "track_id", where),
        category_id=get_int(record, "category_id", where),
        bbox_xywh=bbox,
        area=get_area(record, where, bbox),
        iscrowd=get_flag(record, "iscrowd", where),
    )


def _parse_track(raw: Any, where: str) -> TaoTrack:
    record = check_record(raw, where, ("id", "category_id", "video_id"))
    return TaoTrack(
        id=get_int(record, "id", where),
        category_id=get_int(record, "category_id", where),
        video_id=get_int(record, "video_id", where),
    )


_Record = TypeVar("_Record", TaoVideo, TaoImage, TaoTrack, TaoAnnotation)


def _parse_table(
    records: list[Any], path: Path, table: str, parse: Callable[[Any, str], _Record]
) -> tuple[_Record, ...]:
    items = tuple(parse(raw, f"{path}: {table}[{i}]") for i, raw in enumerate(records))
    check_unique_ids([item.id for item in items], path, table)
    return items


# --------------------------------------------------------------------------------------
# Consistency
# --------------------------------------------------------------------------------------


def _check_images(images: Sequence[TaoImage], video_ids: set[int], path: Path) -> None:
    """Every image's video exists; no two frames of a video share a ``frame_index``."""
    seen: dict[tuple[int, int], int] = {}
    for index, image in enumerate(images):
        where = f"{path}: images[{index}]"
        if image.video_id not in video_ids:
            raise ValueError(f"{where}: video_id {image.video_id} is not a video")
        key = (image.video_id, image.frame_index)
        if key in seen:
            raise ValueError(
                f"{where}: frame_index {image.frame_index} of video {image.video_id} is "
                f"already used by images[{seen[key]}]"
            )
        seen[key] = index


def _check_tracks(
    tracks: Sequence[TaoTrack], video_ids: set[int], category_ids: set[int], path: Path
) -> None:
    for index, track in enumerate(tracks):
        where = f"{path}: tracks[{index}]"
        if track.video_id not in video_ids:
            raise ValueError(f"{where}: video_id {track.video_id} is not a video")
        if track.category_id not in category_ids:
            raise ValueError(f"{where}: category_id {track.category_id} is not a category")


def _check_annotations(
    annotations: Sequence[TaoAnnotation],
    images: dict[int, TaoImage],
    tracks: dict[int, TaoTrack],
    category_ids: set[int],
    path: Path,
) -> None:
    """Each box refers to an existing image, track and category, consistently."""
    for index, annotation in enumerate(annotations):
        where = f"{path}: annotations[{index}]"
        image = images.get(annotation.image_id)
        if image is None:
            raise ValueError(f"{where}: image_id {annotation.image_id} is not an image")
        track = tracks.get(annotation.track_id)
        if track is None:
            raise ValueError(f"{where}: track_id {annotation.track_id} is not a track")
        if annotation.category_id not in category_ids:
            raise ValueError(f"{where}: category_id {annotation.category_id} is not a category")
        if annotation.video_id != image.video_id:
            raise ValueError(
                f"{where}: video_id {annotation.video_id} differs from the video "
                f"{image.video_id} of image {image.id}"
            )
        if annotation.video_id != track.video_id:
            raise ValueError(
                f"{where}: video_id {annotation.video_id} differs from the video "
                f"{track.video_id} of track {track.id}"
            )
        if annotation.category_id != track.category_id:
            raise ValueError(
                f"{where}: category_id {annotation.category_id} differs from the category "
                f"{track.category_id} of track {track.id}"
            )


def read_tao(path: str | Path) -> TaoDataset:
    """Read and check a TAO annotation file.

    Checks: the file is a JSON object with the lists ``videos``, ``images``,
    ``annotations``, ``tracks`` and ``categories``; every record has its fields with the
    right types (``bbox`` is 4 finite numbers with ``w, h >= 0``); ids are unique per list;
    every image's video exists and no two images of a video share a ``frame_index``; every
    track's video and category exist; every annotation's image, track and category exist,
    its ``video_id`` equals its image's and its track's, and its ``category_id`` equals its
    track's. Categories' ``merged`` lists and other fields are ignored.

    Args:
        path: the annotation file (e.g. ``annotations/train.json``).

    Returns:
        The parsed dataset.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the first problem found, naming the file and the element.
    """
    path = Path(path)
    tables = read_json_tables(path, TAO_KEYS)
    categories = parse_categories(tables["categories"], path)
    videos = _parse_table(tables["videos"], path, "videos", _parse_video)
    images = _parse_table(tables["images"], path, "images", _parse_image)
    tracks = _parse_table(tables["tracks"], path, "tracks", _parse_track)
    annotations = _parse_table(tables["annotations"], path, "annotations", _parse_annotation)
    video_ids = {video.id for video in videos}
    category_ids = {category.id for category in categories}
    _check_images(images, video_ids, path)
    _check_tracks(tracks, video_ids, category_ids, path)
    _check_annotations(
        annotations,
        {image.id: image for image in images},
        {track.id: track for track in tracks},
        category_ids,
        path,
    )
    return TaoDataset(path, videos, images, annotations, tracks, categories)
