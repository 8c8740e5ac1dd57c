"""``IoUTracker``: an appearance-free baseline for comparison and diagnostics.

Each frame, detections scoring above ``obj_score_thr`` are matched one-to-one to the
remembered tracks' last boxes by maximum total IoU (Hungarian), accepting pairs with IoU
of at least ``match_iou_thr``; unmatched detections above ``init_score_thr`` start tracks
(ids in descending score order); tracks unseen for ``memo_tracklet_frames`` frames are
forgotten. No motion model, no appearance: where two look-alike objects cross, it swaps
them, which is what the appearance-based trackers are measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from qdtrack.structures import Detections, Tracks, box_iou
from qdtrack.trackers.settings import TrackerSettings, check_range
from qdtrack.trackers.state import check_frame_order, pack_state, unpack_state

UNMATCHED = -1


@dataclass(frozen=True)
class IoUTrackerSettings(TrackerSettings):
    """Settings of :class:`IoUTracker`.

    Attributes:
        match_iou_thr: minimum IoU between a detection and a track's last box.
        obj_score_thr: detections scoring at or below this are ignored.
        init_score_thr: minimum score to start a track.
        memo_tracklet_frames: frames a lost track stays matchable.
        with_cats: only match equal labels.
    """

    tracker_type: ClassVar[str] = "iou"

    match_iou_thr: float = 0.3
    obj_score_thr: float = 0.3
    init_score_thr: float = 0.5
    memo_tracklet_frames: int = 30
    with_cats: bool = True

    def __post_init__(self) -> None:
        check_range("match_iou_thr", self.match_iou_thr, 0.0, 1.0)
        check_range("memo_tracklet_frames", self.memo_tracklet_frames, 1)


class IoUTracker:
    """Greedy-free IoU association baseline.

    Args:
        settings: the tracker's settings.
    """

    kind = "iou"

    def __init__(self, settings: IoUTrackerSettings | None = None) -> None:
        self.settings = settings if settings is not None else IoUTrackerSettings()
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next id is 0."""
        self._ids = np.zeros(0, np.int64)
        self._boxes = np.zeros((0, 4), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._last_frame = np.zeros(0, np.int64)
        self._next_id = 0
        self._last_frame_id: int | None = None

    @property
    def num_tracklets(self) -> int:
        """Number of remembered tracks."""
        return int(self._ids.shape[0])

    @property
    def next_id(self) -> int:
        """The id the next new track will get."""
        return self._next_id

    def update(
        self, detections: Detections, frame_id: int, *, include_unconfirmed: bool = False
    ) -> Tracks:
        """Track one frame. Output rows are in descending score order."""
        self._last_frame_id = frame_id = check_frame_order(self._last_frame_id, frame_id)
        order = np.argsort(-detections.scores, kind="stable")
        dets = detections.select(order)
        ids = np.full(len(dets), UNMATCHED, dtype=np.int64)
        candidates = np.flatnonzero(dets.scores > self.settings.obj_score_thr)
        if candidates.size and self._ids.size:
            iou = box_iou(dets.boxes_xyxy[candidates], self._boxes)
            if self.settings.with_cats:
                iou = iou * (dets.labels[candidates, None] == self._labels[None, :])
            rows, cols = linear_sum_assignment(iou, maximize=True)
            ok = iou[rows, cols] >= self.settings.match_iou_thr
            ids[candidates[rows[ok]]] = self._ids[cols[ok]]
        new = (ids == UNMATCHED) & (dets.scores > self.settings.init_score_thr)
        ids[new] = np.arange(self._next_id, self._next_id + int(new.sum()))
        self._next_id += int(new.sum())
        self._remember(dets, ids, frame_id)
        out = Tracks(dets.boxes_xyxy, dets.scores, dets.labels, ids, order)
        return out if include_unconfirmed else out.confirmed()

    def _remember(self, dets: Detections, ids: np.ndarray, frame_id: int) -> None:
        tracked = ids >= 0
        existing = tracked & np.isin(ids, self._ids)
        rows = np.searchsorted(self._ids, ids[existing])
        self._boxes[rows] = dets.boxes_xyxy[existing]
        self._labels[rows] = dets.labels[existing]
        self._last_frame[rows] = frame_id
        fresh = tracked & ~existing
        self._ids = np.concatenate([self._ids, ids[fresh]])
        self._boxes = np.concatenate([self._boxes, dets.boxes_xyxy[fresh]])
        self._labels = np.concatenate([self._labels, dets.labels[fresh]])
        self._last_frame = np.concatenate(
            [self._last_frame, np.full(int(fresh.sum()), frame_id, np.int64)]
        )
        alive = frame_id - self._last_frame < self.settings.memo_tracklet_frames
        self._ids, self._boxes = self._ids[alive], self._boxes[alive]
        self._labels, self._last_frame = self._labels[alive], self._last_frame[alive]

    def to_bytes(self) -> bytes:
        """Serialise settings and memory."""
        arrays: dict[str, np.ndarray] = {
            "ids": self._ids,
            "boxes": self._boxes,
            "labels": self._labels,
            "last_frame": self._last_frame,
        }
        meta = {
            "settings": self.settings.to_dict(),
            "next_id": self._next_id,
            "last_frame_id": self._last_frame_id,
        }
        return pack_state(self.kind, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> IoUTracker:
        """Rebuild a tracker from :meth:`to_bytes` output."""
        meta, arrays = unpack_state(data, cls.kind)
        try:
            tracker = cls(IoUTrackerSettings.from_mapping(meta["settings"], "state"))
            tracker._ids = arrays["ids"]
            tracker._boxes = arrays["boxes"]
            tracker._labels = arrays["labels"]
            tracker._last_frame = arrays["last_frame"]
            tracker._next_id = int(meta["next_id"])
            last = meta["last_frame_id"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"corrupt tracker state: missing {exc}") from exc
        tracker._last_frame_id = None if last is None else int(last)
        return tracker
