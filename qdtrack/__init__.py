"""QDTrack: quasi-dense similarity learning for multiple object tracking."""

from __future__ import annotations

from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import IoUTracker, QuasiDenseTAOTracker, QuasiDenseTracker

__all__ = ["Detections", "IoUTracker", "QuasiDenseTAOTracker", "QuasiDenseTracker", "Tracks"]
__version__ = "0.1.0"
