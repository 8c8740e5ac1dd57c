"""COCO and LVIS (v0.5, v1) detection annotations, and class-name files.

A COCO-style file is one JSON object with the lists ``categories``, ``images`` and
``annotations``. LVIS adds per-category ``synset`` / ``frequency`` and per-image
``neg_category_ids`` / ``not_exhaustive_category_ids``; LVIS v1 images carry ``coco_url``
instead of ``file_name`` (the file name is the URL's last part). Boxes are ``[x, y, w, h]``
in pixels.

:func:`read_coco` checks the file and raises ``ValueError`` naming the file and the element
(``annotations[12]``) on the first problem. The parsing helpers below are shared with
:mod:`qdtrack.data.tao`, whose files use the same conventions. Parsing uses plain loops
(LVIS v1 train has 1.27M annotations).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

BoxXywh = tuple[float, float, float, float]

_NUMBER_TYPES = (int, float)

#: Top-level lists of a COCO / LVIS file.
COCO_KEYS: tuple[str, ...] = ("categories", "images", "annotations")


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CocoCategory:
    """One category (``categories[i]``).

    Attributes:
        id: the category id used by annotations.
        name: the category name (LVIS names look like ``"car_(automobile)"``).
        synset: the WordNet synset (LVIS, TAO), or ``None``.
        frequency: the LVIS frequency group ``"r"``, ``"c"`` or ``"f"``, or ``None``.
    """

    id: int
    name: str
    synset: str | None = None
    frequency: str | None = None


@dataclass(frozen=True, slots=True)
class CocoImage:
    """One image (``images[i]``).

    Attributes:
        id: the image id.
        file_name: the file name relative to the image folder (LVIS v1: the basename of
            ``coco_url``).
        height: image height in pixels.
        width: image width in pixels.
        neg_category_ids: LVIS: categories verified absent from the image.
        not_exhaustive_category_ids: LVIS: categories not exhaustively annotated.
    """

    id: int
    file_name: str
    height: int
    width: int
    neg_category_ids: tuple[int, ...] = ()
    not_exhaustive_category_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CocoAnnotation:
    """One box (``annotations[i]``).

    Attributes:
        id: the annotation id.
        image_id: the image it belongs to.
        category_id: its category.
        bbox_xywh: ``(x, y, w, h)`` in pixels, finite, ``w, h >= 0``.
        area: the annotated area (the segment area in COCO; ``w * h`` when absent).
        iscrowd: a crowd region (not used as a training box).
    """

    id: int
    image_id: int
    category_id: int
    bbox_xywh: BoxXywh
    area: float
    iscrowd: bool = False

    @property
    def bbox_xyxy(self) -> BoxXywh:
        """The box as ``(x1, y1, x2, y2)``."""
        x, y, w, h = self.bbox_xywh
        return (x, y, x + w, y + h)


class _OnImage(Protocol):
    @property
    def image_id(self) -> int: ...


_Annotation = TypeVar("_Annotation", bound=_OnImage)


def group_annotations(annotations: Iterable[_Annotation]) -> dict[int, tuple[_Annotation, ...]]:
    """Annotations per image id, each group in file order (also used for TAO annotations)."""
    groups: dict[int, list[_Annotation]] = {}
    for annotation in annotations:
        groups.setdefault(annotation.image_id, []).append(annotation)
    return {image_id: tuple(group) for image_id, group in groups.items()}


@dataclass(frozen=True)
class CocoDataset:
    """A parsed COCO / LVIS file (see :func:`read_coco`).

    Attributes:
        path: the file it was read from.
        categories: categories in file order.
        images: images in file order.
        annotations: annotations in file order.
    """

    path: Path
    categories: tuple[CocoCategory, ...]
    images: tuple[CocoImage, ...]
    annotations: tuple[CocoAnnotation, ...]
    _per_image: dict[int, tuple[CocoAnnotation, ...]] = field(init=False, repr=False, compare=False)
    _categories: dict[int, CocoCategory] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_per_image", group_annotations(self.annotations))
        object.__setattr__(self, "_categories", {c.id: c for c in self.categories})

    def annotations_of(self, image_id: int) -> tuple[CocoAnnotation, ...]:
        """The annotations of one image, in file order (empty when it has none)."""
        return self._per_image.get(image_id, ())

    def category(self, category_id: int) -> CocoCategory:
        """The category with this id.

        Raises:
            KeyError: no such category.
        """
        return self._categories[category_id]


# --------------------------------------------------------------------------------------
# Field parsing (shared with qdtrack.data.tao)
# --------------------------------------------------------------------------------------


def read_json_tables(path: Path, keys: Sequence[str]) -> dict[str, list[Any]]:
    """Load a JSON object and return its top-level lists ``keys``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: not JSON, not an object, a key missing or not a list.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    try:
        with path.open("rb") as file:
            data = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    tables: dict[str, list[Any]] = {}
    for key in keys:
        if key not in data:
            raise ValueError(f"{path}: missing top-level key '{key}'")
        if not isinstance(data[key], list):
            raise ValueError(f"{path}: top-level '{key}' must be a list")
        tables[key] = data[key]
    return tables


def check_record(record: Any, where: str, required: Sequence[str]) -> dict[str, Any]:
    """The record as a dict, after checking it is an object holding ``required``."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: must be a JSON object, got {type(record).__name__}")
    for key in required:
        if key not in record:
            raise ValueError(f"{where}: missing field '{key}'")
    return record


def get_int(record: dict[str, Any], key: str, where: str) -> int:
    """``record[key]`` as an int (bools rejected)."""
    value = record[key]
    if type(value) is not int:
        raise ValueError(f"{where}: '{key}' must be an integer, got {value!r}")
    return value


def get_str(record: dict[str, Any], key: str, where: str) -> str:
    """``record[key]`` as a non-empty string."""
    value = record[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def get_optional_str(record: dict[str, Any], key: str, where: str) -> str | None:
    """``record[key]`` as a string, or ``None`` when absent or null."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: '{key}' must be a string, got {value!r}")
    return value


def get_size(record: dict[str, Any], key: str, where: str) -> int:
    """``record[key]`` as a positive int (an image side)."""
    value = get_int(record, key, where)
    if value <= 0:
        raise ValueError(f"{where}: '{key}' must be positive, got {value}")
    return value


def get_id_list(record: dict[str, Any], key: str, where: str) -> tuple[int, ...]:
    """``record[key]`` as a tuple of ints; ``()`` when absent."""
    value = record.get(key, [])
    if not isinstance(value, list) or any(type(v) is not int for v in value):
        raise ValueError(f"{where}: '{key}' must be a list of integers, got {value!r}")
    return tuple(value)


def get_bbox_xywh(record: dict[str, Any], where: str) -> BoxXywh:
    """``record["bbox"]`` as 4 finite numbers ``(x, y, w, h)`` with ``w, h >= 0``."""
    value = record["bbox"]
    # One call per annotation (LVIS has >1M): unpack once, no generator.
    if isinstance(value, list) and len(value) == 4:
        x, y, w, h = value
        if (
            type(x) in _NUMBER_TYPES
            and type(y) in _NUMBER_TYPES
            and type(w) in _NUMBER_TYPES
            and type(h) in _NUMBER_TYPES
            and math.isfinite(x + y + w + h)
        ):
            if w < 0 or h < 0:
                raise ValueError(f"{where}: 'bbox' has a negative width or height: {value!r}")
            return (float(x), float(y), float(w), float(h))
    raise ValueError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {value!r}")


def get_area(record: dict[str, Any], where: str, bbox: BoxXywh) -> float:
    """``record["area"]`` as a finite number; ``w * h`` of the box when absent."""
    value = record.get("area")
    if value is None:
        return bbox[2] * bbox[3]
    if type(value) not in _NUMBER_TYPES or not math.isfinite(value):
        raise ValueError(f"{where}: 'area' must be a finite number, got {value!r}")
    return float(value)


def get_flag(record: dict[str, Any], key: str, where: str) -> bool:
    """``record[key]`` as a bool (0 / 1 or false / true); ``False`` when absent."""
    value = record.get(key, 0)
    if value not in (0, 1) or type(value) not in (int, bool):
        raise ValueError(f"{where}: '{key}' must be 0 or 1, got {value!r}")
    return bool(value)


def check_unique_ids(ids: Sequence[int], path: Path, table: str) -> None:
    """Raise naming the first repeated id of ``table``."""
    seen: set[int] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise ValueError(f"{path}: {table}[{index}]: duplicate id {item_id}")
        seen.add(item_id)


def parse_categories(records: list[Any], path: Path) -> tuple[CocoCategory, ...]:
    """The ``categories`` list (``id``, ``name``, optional ``synset`` / ``frequency``)."""
    categories = []
    for index, raw in enumerate(records):
        where = f"{path}: categories[{index}]"
        record = check_record(raw, where, ("id", "name"))
        categories.append(
            CocoCategory(
                id=get_int(record, "id", where),
                name=get_str(record, "name", where),
                synset=get_optional_str(record, "synset", where),
                frequency=get_optional_str(record, "frequency", where),
            )
        )
    check_unique_ids([c.id for c in categories], path, "categories")
    return tuple(categories)


# --------------------------------------------------------------------------------------
# COCO / LVIS files
# --------------------------------------------------------------------------------------


def _image_file_name(record: dict[str, Any], where: str) -> str:
    """``file_name``, or the basename of ``coco_url`` (LVIS v1)."""
    if "file_name" in record:
        return get_str(record, "file_name", where)
    if "coco_url" in record:
        name = get_str(record, "coco_url", where).rstrip("/").rsplit("/", 1)[-1]
        if name:
            return name
    raise ValueError(f"{where}: missing field 'file_name' (or LVIS v1 'coco_url')")


def _parse_image(raw: Any, where: str) -> CocoImage:
    record = check_record(raw, where, ("id", "height", "width"))
    return CocoImage(
        id=get_int(record, "id", where),
        file_name=_image_file_name(record, where),
        height=get_size(record, "height", where),
        width=get_size(record, "width", where),
        neg_category_ids=get_id_list(record, "neg_category_ids", where),
        not_exhaustive_category_ids=get_id_list(record, "not_exhaustive_category_ids", where),
    )


def _parse_annotation(raw: Any, where: str) -> CocoAnnotation:
    record = check_record(raw, where, ("id", "image_id", "category_id", "bbox"))
    bbox = get_bbox_xywh(record, where)
    return CocoAnnotation(
        id=get_int(record, "id", where),
        image_id=get_int(record, "image_id", where),
        category_id=get_int(record, "category_id", where),
        bbox_xywh=bbox,
        area=get_area(record, where, bbox),
        iscrowd=get_flag(record, "iscrowd", where),
    )


def _check_references(
    annotations: Sequence[CocoAnnotation],
    image_ids: set[int],
    category_ids: set[int],
    path: Path,
) -> None:
    for index, annotation in enumerate(annotations):
        if annotation.image_id not in image_ids:
            raise ValueError(
                f"{path}: annotations[{index}]: image_id {annotation.image_id} is not an image"
            )
        if annotation.category_id not in category_ids:
            raise ValueError(
                f"{path}: annotations[{index}]: category_id {annotation.category_id} is not "
                "a category"
            )


def read_coco(path: str | Path) -> CocoDataset:
    """Read and check a COCO or LVIS (v0.5 / v1) detection file.

    Checks: the file is a JSON object with the lists ``categories``, ``images`` and
    ``annotations``; every record has its fields with the right types (``bbox`` is 4
    finite numbers with ``w, h >= 0``); ids are unique per list; every annotation's
    ``image_id`` and ``category_id`` exist. Segmentations and other fields are ignored.

    Args:
        path: the annotation file.

    Returns:
        The parsed dataset.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the first problem found, naming the file and the element
            (e.g. ``annotations[12]``).
    """
    path = Path(path)
    tables = read_json_tables(path, COCO_KEYS)
    categories = parse_categories(tables["categories"], path)
    images = tuple(
        _parse_image(raw, f"{path}: images[{i}]") for i, raw in enumerate(tables["images"])
    )
    check_unique_ids([image.id for image in images], path, "images")
    annotations = tuple(
        _parse_annotation(raw, f"{path}: annotations[{i}]")
        for i, raw in enumerate(tables["annotations"])
    )
    check_unique_ids([a.id for a in annotations], path, "annotations")
    _check_references(annotations, {image.id for image in images}, {c.id for c in categories}, path)
    return CocoDataset(path, categories, images, annotations)


# --------------------------------------------------------------------------------------
# Class names and category -> label mapping
# --------------------------------------------------------------------------------------


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one per line (mmdet ``classes=`` file convention).

    Leading / trailing spaces are stripped and blank lines ignored; the line order is the
    label order.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a name is repeated (names both lines) or the file has no name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class-name file not found")
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if name in first_line:
            raise ValueError(
                f"{path}: line {number}: class {name!r} repeats line {first_line[name]}"
            )
        first_line[name] = number
        names.append(name)
    if not names:
        raise ValueError(f"{path}: no class names")
    return tuple(names)


def category_labels(
    categories: Iterable[CocoCategory],
    class_names: Sequence[str],
    category_map: Mapping[str, str] | None = None,
) -> dict[int, int]:
    """Category id -> contiguous label ``0 .. C-1`` (the index of its name in ``class_names``).

    A category's name is first renamed by ``category_map`` when listed there (e.g. COCO
    ``"car"`` -> LVIS ``"car_(automobile)"``); categories whose (renamed) name is not in
    ``class_names`` are left out, and their annotations are not used for training. Several
    categories may map to one class. This equals mmdet's ``cat2label`` when ``class_names``
    lists the file's categories in file order.

    Args:
        categories: the categories of a COCO / LVIS / TAO file.
        class_names: the model's classes, in label order.
        category_map: optional renaming of source category names.

    Returns:
        ``{category id: label}`` for the categories that map to a class.

    Raises:
        ValueError: ``class_names`` is empty or repeats a name.
    """
    if not class_names:
        raise ValueError("class_names must name at least one class")
    labels: dict[str, int] = {}
    for label, name in enumerate(class_names):
        if name in labels:
            raise ValueError(f"class_names repeats {name!r} (labels {labels[name]} and {label})")
        labels[name] = label
    renames = category_map or {}
    result: dict[int, int] = {}
    for category in categories:
        category_label = labels.get(renames.get(category.name, category.name))
        if category_label is not None:
            result[category.id] = category_label
    return result
