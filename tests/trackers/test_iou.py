"""The appearance-free IoU baseline."""

from __future__ import annotations

import pytest

from qdtrack.trackers import IoUTracker, IoUTrackerSettings

from .helpers import box, dets, ids_by_input


def test_follows_overlapping_boxes_and_ignores_appearance() -> None:
    t = IoUTracker()
    t.update(dets([box(0), box(100)], [0.9, 0.8]), 0)
    out = t.update(dets([box(102), box(3)], [0.9, 0.9], identities=[5, 6]), 1)
    assert ids_by_input(out, 2) == [1, 0]


def test_swaps_look_alikes_at_a_crossing() -> None:
    """Two objects pass each other: position alone hands each the other's id."""
    t = IoUTracker()
    t.update(dets([box(0), box(14)], [0.9, 0.9]), 0)  # A left, B right
    out = t.update(dets([box(13), box(1)], [0.9, 0.9]), 1)  # A moved right, B left
    assert ids_by_input(out, 2) == [1, 0]  # A got B's id


def test_thresholds_and_expiry() -> None:
    t = IoUTracker(IoUTrackerSettings(memo_tracklet_frames=2))
    out = t.update(dets([box(0), box(100)], [0.9, 0.4]), 0)
    assert ids_by_input(out, 2) == [0, None]  # 0.4 < init_score_thr
    out = t.update(dets([box(1), box(100)], [0.2, 0.9]), 1)
    assert ids_by_input(out, 2) == [None, 1]  # 0.2 <= obj_score_thr: not matched
    t.update(dets([box(500)], [0.9]), 2)  # track 0 last seen at 0: forgotten now
    out = t.update(dets([box(0)], [0.9]), 3)
    assert list(out.track_ids) == [3]


def test_bad_setting() -> None:
    with pytest.raises(ValueError):
        IoUTracker(IoUTrackerSettings(match_iou_thr=2.0))
