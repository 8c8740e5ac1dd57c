"""Reading the JSON inputs of the TAO and COCO scorers: checked record by record.

Every reader fails with a ``ValueError`` naming the file and the record, so bad input
stops before any scoring. Formats: ``docs/reference-behaviour.md`` (TAO and COCO JSON).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack.io_utils import read_json


def fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def as_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(where, f"{key!r} must be an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise fail(where, f"{key!r} must be an integer, got {value!r}")
    return int(value)


def as_number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(where, f"{key!r} must be a finite number, got {value!r}")
    return float(value)


def as_bbox(value: Any, where: str) -> list[float]:
    """``[x, y, w, h]`` with finite numbers and ``w, h >= 0``."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise fail(where, f"'bbox' must be [x, y, w, h], got {value!r}")
    box = [as_number(v, where, "bbox") for v in value]
    if box[2] < 0 or box[3] < 0:
        raise fail(where, f"'bbox' has a negative width or height: {value!r}")
    return box


def record(item: Any, where: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise fail(where, f"expected a JSON object, got {type(item).__name__}")
    missing = [key for key in keys if key not in item]
    if missing:
        raise fail(where, f"missing field(s) {', '.join(map(repr, missing))}")
    return item


def section(doc: Any, path: Path, key: str) -> list[Any]:
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object with {key!r}")
    value = doc.get(key)
    if not isinstance(value, list):
        raise ValueError(f"{path}: missing list {key!r}")
    return value


def read_results(path: Path) -> list[Any]:
    records = read_json(path)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of result records")
    return records


@dataclass(frozen=True)
class Categories:
    """Category ids of a gt file; ``merged`` maps folded ids to the id they are folded into."""

    names: dict[int, str]
    merged: dict[int, int]

    def resolve(self, category_id: int, where: str) -> int:
        folded = self.merged.get(category_id, category_id)
        if folded not in self.names:
            raise fail(where, f"category_id {category_id} is not a category of the gt")
        return folded


def read_categories(doc: Any, path: Path) -> Categories:
    names: dict[int, str] = {}
    merged: dict[int, int] = {}
    for i, item in enumerate(section(doc, path, "categories")):
        where = f"{path}: categories[{i}]"
        cat = record(item, where, ("id", "name"))
        cat_id = as_int(cat["id"], where, "id")
        if cat_id in names:
            raise fail(where, f"category id {cat_id} appears twice")
        names[cat_id] = str(cat["name"])
        for j, child in enumerate(cat.get("merged") or []):
            child_where = f"{where}.merged[{j}]"
            merged[as_int(record(child, child_where, ("id",))["id"], child_where, "id")] = cat_id
    duplicates = sorted(name for name, n in Counter(names.values()).items() if n > 1)
    if duplicates:
        # TrackEval keys classes by name: two categories with one name would be merged.
        raise ValueError(f"{path}: category names used twice: {', '.join(duplicates[:5])}")
    return Categories(names, merged)


def resolve_gt_json(path: str | os.PathLike[str]) -> Path:
    """A gt JSON file, or a folder holding exactly one ``.json`` (TrackEval's TAO layout)."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.json"))
        if len(found) != 1:
            raise ValueError(f"{p}: expected exactly one .json gt file, found {len(found)}")
        return found[0]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: gt file not found")
    return p


def resolve_results_file(path: str | os.PathLike[str], name: str) -> Path:
    """``path`` itself when it is a file, else ``path/name``."""
    p = Path(path)
    target = p / name if p.is_dir() else p
    if not target.is_file():
        raise FileNotFoundError(f"{target}: results file not found")
    return target


#: Metrics are rounded to this many decimals (see :func:`percent`).
DECIMALS = 9


def percent(values: np.ndarray) -> float | None:
    """Mean x100; None when undefined (-1: no gt).

    Rounded to 1e-9 so that a perfect score reads 100, not the 99.99999999999999 left by the
    ``np.spacing(1)`` that TrackMAP and pycocotools add to precision denominators.
    """
    if values.size == 0 or bool(np.any(values < 0)):
        return None
    return round(float(values.mean()) * 100.0, DECIMALS)
