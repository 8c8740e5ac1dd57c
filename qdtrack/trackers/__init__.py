"""Trackers: they consume per-frame ``Detections`` and return ``Tracks``; none holds a model.

Each tracker takes one settings object, a frozen dataclass defined beside it (the only
place its defaults are written). ``tracker.type`` in a params file picks the tracker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qdtrack.trackers.iou import IoUTracker, IoUTrackerSettings
from qdtrack.trackers.quasi_dense import (
    SUPPRESSED,
    UNMATCHED,
    QuasiDenseTracker,
    QuasiDenseTrackerSettings,
    Tracklet,
)
from qdtrack.trackers.settings import TrackerSettings
from qdtrack.trackers.tao import QuasiDenseTAOTracker, TAOTrackerSettings

Tracker = QuasiDenseTracker | QuasiDenseTAOTracker | IoUTracker
AnyTrackerSettings = QuasiDenseTrackerSettings | TAOTrackerSettings | IoUTrackerSettings

#: ``tracker.type`` -> tracker class.
TRACKERS: dict[str, type[QuasiDenseTracker] | type[QuasiDenseTAOTracker] | type[IoUTracker]] = {
    "qdtrack": QuasiDenseTracker,
    "tao": QuasiDenseTAOTracker,
    "iou": IoUTracker,
}
#: ``tracker.type`` -> settings class.
TRACKER_SETTINGS: dict[str, type[AnyTrackerSettings]] = {
    "qdtrack": QuasiDenseTrackerSettings,
    "tao": TAOTrackerSettings,
    "iou": IoUTrackerSettings,
}
DEFAULT_TRACKER = "qdtrack"


def tracker_settings(data: Mapping[str, Any] | None, where: str = "tracker") -> AnyTrackerSettings:
    """Settings from a ``tracker`` block: ``type`` (default ``qdtrack``) plus its fields.

    Raises:
        ValueError: an unknown ``type``, an unknown key or a value of the wrong type, with
            the key named (``where.key``).
    """
    fields = dict(data or {})
    kind = fields.pop("type", DEFAULT_TRACKER)
    if kind not in TRACKER_SETTINGS:
        raise ValueError(
            f"{where}.type: unknown tracker {kind!r}; choose one of {sorted(TRACKER_SETTINGS)}"
        )
    return TRACKER_SETTINGS[kind].from_mapping(fields, where)


def tracker_block(settings: AnyTrackerSettings) -> dict[str, Any]:
    """The ``tracker`` block of ``settings``: ``type`` first, then every field."""
    return {"type": settings.tracker_type, **settings.to_dict()}


def build_tracker(settings: AnyTrackerSettings | None = None) -> Tracker:
    """A fresh tracker of the settings' type (default: the MOT17 ``QuasiDenseTracker``)."""
    if settings is None:
        return QuasiDenseTracker()
    tracker_class = TRACKERS[settings.tracker_type]
    return tracker_class(settings)  # type: ignore[arg-type]


def iou_baseline_settings(settings: AnyTrackerSettings) -> IoUTrackerSettings:
    """The IoU tracker with the same score thresholds and memory as ``settings``.

    It runs on the same detections as the appearance tracker, so the two differ only in
    how they associate.
    """
    if isinstance(settings, IoUTrackerSettings):
        return settings
    return IoUTrackerSettings(
        obj_score_thr=settings.obj_score_thr,
        init_score_thr=settings.init_score_thr,
        memo_tracklet_frames=settings.memo_tracklet_frames,
    )


__all__ = [
    "DEFAULT_TRACKER",
    "SUPPRESSED",
    "TRACKERS",
    "TRACKER_SETTINGS",
    "UNMATCHED",
    "AnyTrackerSettings",
    "IoUTracker",
    "IoUTrackerSettings",
    "QuasiDenseTAOTracker",
    "QuasiDenseTracker",
    "QuasiDenseTrackerSettings",
    "TAOTrackerSettings",
    "Tracker",
    "TrackerSettings",
    "Tracklet",
    "build_tracker",
    "iou_baseline_settings",
    "tracker_block",
    "tracker_settings",
]
