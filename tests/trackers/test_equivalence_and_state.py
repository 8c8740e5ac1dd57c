"""The vectorised tracker against a loop transcription of the spec, and state round trips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qdtrack.structures import Detections
from qdtrack.trackers import (
    IoUTracker,
    QuasiDenseTAOTracker,
    QuasiDenseTracker,
    QuasiDenseTrackerSettings,
)

from .reference_loop import LoopTracker


def random_sequence(seed: int, frames: int = 40, objects: int = 12, dim: int = 16):
    """Moving objects with noisy embeddings, dropouts, duplicates and low scores."""
    rng = np.random.default_rng(seed)
    identity = rng.normal(size=(objects, dim)).astype(np.float32) * 0.8
    pos = rng.uniform(0, 400, size=(objects, 2))
    vel = rng.normal(0, 4, size=(objects, 2))
    seq = []
    for f in range(frames):
        pos += vel
        visible = rng.random(objects) > 0.2
        if f % 9 == 8:
            seq.append(Detections.empty(dim))
            continue
        rows = np.flatnonzero(visible)
        boxes = np.concatenate([pos[rows], pos[rows] + [30, 60]], axis=1)
        scores = rng.choice([0.95, 0.97, 0.7, 0.45, 0.3], size=len(rows))
        emb = identity[rows] + rng.normal(0, 0.2, size=(len(rows), dim))
        labels = rng.integers(0, 2, size=len(rows))
        dup = rows[:2]  # near-duplicates of the first two objects
        boxes = np.concatenate([boxes, boxes[: len(dup)] + 2])
        scores = np.concatenate([scores, rng.choice([0.96, 0.4], size=len(dup))])
        emb = np.concatenate([emb, emb[: len(dup)]])
        labels = np.concatenate([labels, labels[: len(dup)]])
        seq.append(Detections(boxes, scores + rng.uniform(0, 1e-3, len(scores)), labels, emb))
    return seq


@pytest.mark.parametrize("seed", range(12))
def test_ids_equal_a_loop_transcription_of_the_spec(seed: int) -> None:
    fast, slow = (
        QuasiDenseTracker(QuasiDenseTrackerSettings(memo_tracklet_frames=5)),
        LoopTracker(memo_tracklet_frames=5),
    )
    total = 0
    for f, d in enumerate(random_sequence(seed)):
        out = fast.update(d, f, include_unconfirmed=True)
        kept, ids = slow.track(
            list(d.boxes_xyxy), list(d.scores), list(d.labels), list(d.embeddings), f
        )
        assert out.input_indices.tolist() == kept, f"frame {f}: kept rows differ"
        assert out.track_ids.tolist() == ids, f"frame {f}: ids differ"
        total += int((out.track_ids >= 0).sum())
    assert total > 50  # the scenario really tracks things


TRACKER_CLASSES = [QuasiDenseTracker, QuasiDenseTAOTracker, IoUTracker]


@pytest.mark.parametrize("cls", TRACKER_CLASSES)
@pytest.mark.parametrize("k", [0, 7, 20])
def test_restored_tracker_continues_with_the_same_ids(cls, k: int) -> None:
    seq = random_sequence(11, frames=35)
    original = cls(dataclasses.replace(cls().settings, memo_tracklet_frames=6))
    for f in range(k):
        original.update(seq[f], f)
    restored = cls.from_bytes(original.to_bytes())
    assert restored.settings == original.settings
    for f in range(k, len(seq)):
        a = original.update(seq[f], f, include_unconfirmed=True)
        b = restored.update(seq[f], f, include_unconfirmed=True)
        assert a.track_ids.tolist() == b.track_ids.tolist()
        np.testing.assert_array_equal(a.scores, b.scores)
    assert original.next_id == restored.next_id > 0


@pytest.mark.parametrize("cls", TRACKER_CLASSES)
def test_restored_tracker_keeps_frame_order_check(cls) -> None:
    t = cls()
    t.update(random_sequence(1)[0], 10)
    restored = cls.from_bytes(t.to_bytes())
    with pytest.raises(ValueError, match="increase"):
        restored.update(random_sequence(1)[1], 10)


@pytest.mark.parametrize("blob", [b"", b"garbage", QuasiDenseTAOTracker().to_bytes()])
def test_corrupt_or_foreign_state_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        QuasiDenseTracker.from_bytes(blob)


def test_state_is_small() -> None:
    t = QuasiDenseTracker()
    for f, d in enumerate(random_sequence(3)):
        t.update(d, f)
    blob = t.to_bytes()
    # ~ 4 bytes per embedding value dominate; no pickle, no per-object overhead
    assert len(blob) < 4 * 16 * (t.num_tracklets + 20) + 8000
