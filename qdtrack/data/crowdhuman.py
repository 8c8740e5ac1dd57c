"""CrowdHuman ``.odgt`` annotations: reading, writing and mmtracking's training boxes.

An ``.odgt`` file holds one JSON object per line, ``{"ID": ..., "gtboxes": [...]}``; each
gtbox has a ``tag`` (``"person"`` or ``"mask"``), ``fbox`` / ``vbox`` / ``hbox`` as
``[x, y, w, h]``, ``extra`` (``box_id``, ``ignore``, ...) and ``head_attr``. Format
details: docs/reference-behaviour.md (data formats).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack.io_utils import atomic_write
from qdtrack.structures import FloatArray, IntArray

BoxXyxy = tuple[float, float, float, float]


@dataclass(frozen=True)
class CrowdHumanBox:
    """One annotated region of a CrowdHuman image.

    Attributes:
        tag: ``"person"``, or ``"mask"`` for crowd / reflection / poster regions.
        fbox_xyxy: full-body box (x1, y1, x2, y2); may extend outside the image.
        vbox_xyxy: visible-part box, or ``None`` when the entry has none.
        hbox_xyxy: head box, or ``None`` when the entry has none.
        box_id: ``extra.box_id`` (masks have none).
        ignore: ``extra.ignore == 1``; mmtracking turns these into ignore (crowd) boxes.
        extra_attrs: the other integer ``extra`` fields (``occ``, ``unsure``).
        head_attr: the ``head_attr`` object (``ignore``, ``occ``, ``unsure``; empty for masks).
    """

    tag: str
    fbox_xyxy: BoxXyxy
    vbox_xyxy: BoxXyxy | None = None
    hbox_xyxy: BoxXyxy | None = None
    box_id: int | None = None
    ignore: bool = False
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)
    head_attr: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CrowdHumanImage:
    """The annotations of one image (``Images/<image_id>.jpg``)."""

    image_id: str
    boxes: tuple[CrowdHumanBox, ...]


def _xywh_to_xyxy(value: Any, where: str, key: str) -> BoxXyxy:
    """``[x, y, w, h]`` -> (x1, y1, x2, y2), raising ``ValueError`` on a bad box."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise ValueError(
            f"{where}: '{key}' must be a list of 4 numbers [x, y, w, h], got {value!r}"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{where}: '{key}' must hold numbers, got {value!r}")
    x, y, w, h = (float(v) for v in value)
    return (x, y, x + w, y + h)


def _xyxy_to_xywh(box: BoxXyxy) -> list[float | int]:
    """(x1, y1, x2, y2) -> ``[x, y, w, h]``, integral values written as ints."""
    x1, y1, x2, y2 = box
    values = [x1, y1, x2 - x1, y2 - y1]
    return [int(v) if float(v).is_integer() else v for v in values]


def _parse_box(raw: Any, where: str) -> CrowdHumanBox:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a gtbox must be a JSON object, got {type(raw).__name__}")
    if "fbox" not in raw:
        raise ValueError(f"{where}: gtbox has no 'fbox'")
    extra = raw.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError(f"{where}: 'extra' must be a JSON object")
    head_attr = raw.get("head_attr") or {}
    if not isinstance(head_attr, dict):
        raise ValueError(f"{where}: 'head_attr' must be a JSON object")
    vbox = raw.get("vbox")
    hbox = raw.get("hbox")
    box_id = extra.get("box_id")
    return CrowdHumanBox(
        tag=str(raw.get("tag", "person")),
        fbox_xyxy=_xywh_to_xyxy(raw["fbox"], where, "fbox"),
        vbox_xyxy=None if vbox is None else _xywh_to_xyxy(vbox, where, "vbox"),
        hbox_xyxy=None if hbox is None else _xywh_to_xyxy(hbox, where, "hbox"),
        box_id=None if box_id is None else int(box_id),
        ignore=extra.get("ignore") == 1,
        extra_attrs={k: v for k, v in extra.items() if k not in ("box_id", "ignore")},
        head_attr=dict(head_attr),
    )


def _parse_image(line: str, where: str) -> CrowdHumanImage:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: invalid JSON: {exc.msg}") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object per line")
    for key in ("ID", "gtboxes"):
        if key not in record:
            raise ValueError(f"{where}: missing key '{key}'")
    if not isinstance(record["gtboxes"], list):
        raise ValueError(f"{where}: 'gtboxes' must be a list")
    boxes = tuple(
        _parse_box(raw, f"{where}: gtbox {index}") for index, raw in enumerate(record["gtboxes"])
    )
    return CrowdHumanImage(image_id=str(record["ID"]), boxes=boxes)


def read_odgt(path: str | Path) -> list[CrowdHumanImage]:
    """Read a CrowdHuman ``.odgt`` file (blank lines are skipped).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not valid JSON, lacks ``"ID"`` or ``"gtboxes"``, or holds a
            box that is not 4 numbers; the message starts with ``PATH:LINE:``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such .odgt file")
    images = []
    with p.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                images.append(_parse_image(line, f"{p}:{line_no}"))
    return images


def _box_record(box: CrowdHumanBox) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if box.box_id is not None:
        extra["box_id"] = box.box_id
    extra["ignore"] = int(box.ignore)
    extra.update(box.extra_attrs)
    record: dict[str, Any] = {"tag": box.tag, "fbox": _xyxy_to_xywh(box.fbox_xyxy)}
    if box.vbox_xyxy is not None:
        record["vbox"] = _xyxy_to_xywh(box.vbox_xyxy)
    if box.hbox_xyxy is not None:
        record["hbox"] = _xyxy_to_xywh(box.hbox_xyxy)
    record["extra"] = extra
    record["head_attr"] = dict(box.head_attr)
    return record


def write_odgt(path: str | Path, images: Iterable[CrowdHumanImage]) -> None:
    """Write images as ``.odgt`` JSON lines, atomically (boxes back as ``[x, y, w, h]``)."""
    with atomic_write(path) as handle:
        for image in images:
            record = {"ID": image.image_id, "gtboxes": [_box_record(b) for b in image.boxes]}
            handle.write(json.dumps(record))
            handle.write("\n")


def to_training_boxes(image: CrowdHumanImage) -> tuple[FloatArray, IntArray, FloatArray]:
    """Full-body boxes for training, following mmtracking's CrowdHuman conversion.

    Every box with ``extra.ignore == 1`` (masks and ignored persons alike; the tag is
    not checked) becomes an ignore box; the others are kept in file order. Size and
    image-boundary filtering is left to the training pipeline.

    Returns:
        ``(boxes_xyxy, instance_ids, ignore_boxes_xyxy)``: (K, 4) float32 full-body boxes,
        (K,) int64 instance ids ``0 .. K-1`` and (M, 4) float32 ignore boxes.
    """
    kept = [b.fbox_xyxy for b in image.boxes if not b.ignore]
    ignored = [b.fbox_xyxy for b in image.boxes if b.ignore]
    boxes = np.asarray(kept, dtype=np.float32).reshape(-1, 4)
    ignore_boxes = np.asarray(ignored, dtype=np.float32).reshape(-1, 4)
    return boxes, np.arange(len(kept), dtype=np.int64), ignore_boxes
