"""Trackers: they consume per-frame ``Detections`` and return ``Tracks``; none holds a model."""

from __future__ import annotations

from qdtrack.trackers.iou import IoUTracker
from qdtrack.trackers.quasi_dense import SUPPRESSED, UNMATCHED, QuasiDenseTracker, Tracklet
from qdtrack.trackers.tao import QuasiDenseTAOTracker

Tracker = QuasiDenseTracker | QuasiDenseTAOTracker | IoUTracker

TRACKERS: dict[str, type[QuasiDenseTracker] | type[QuasiDenseTAOTracker] | type[IoUTracker]] = {
    "qdtrack": QuasiDenseTracker,
    "tao": QuasiDenseTAOTracker,
    "iou": IoUTracker,
}


def build_tracker(name: str, settings: dict[str, object] | None = None) -> Tracker:
    """A tracker by CLI name with keyword settings; unknown names/keys give ``ValueError``."""
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {sorted(TRACKERS)}")
    cls = TRACKERS[name]
    try:
        return cls(**(settings or {}))  # type: ignore[arg-type]
    except TypeError as exc:
        valid = sorted(cls().settings())
        raise ValueError(f"bad setting for tracker {name!r}: {exc}; valid: {valid}") from exc


__all__ = [
    "SUPPRESSED",
    "TRACKERS",
    "UNMATCHED",
    "IoUTracker",
    "QuasiDenseTAOTracker",
    "QuasiDenseTracker",
    "Tracker",
    "Tracklet",
    "build_tracker",
]
