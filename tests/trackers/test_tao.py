"""Rules of the TAO tracker (reference d.3)."""

from __future__ import annotations

import numpy as np
import pytest

from qdtrack.structures import Detections
from qdtrack.trackers import QuasiDenseTAOTracker, TAOTrackerSettings
from qdtrack.trackers.association import cosine_similarity, masked_bisoftmax

from .helpers import DIM, box, dets, embed, ids_by_input


def test_defaults_are_the_tao_config() -> None:
    assert QuasiDenseTAOTracker().settings.to_dict() == {
        "init_score_thr": 1e-4,
        "obj_score_thr": 1e-4,
        "match_score_thr": 0.5,
        "memo_tracklet_frames": 10,
        "memo_momentum": 0.8,
        "momentum_obj_score": 0.5,
        "obj_score_diff_thr": 1.0,
        "distractor_nms_thr": 0.3,
        "distractor_score_thr": 0.5,
        "match_metric": "bisoftmax",
        "match_with_cosine": True,
    }


def test_ids_follow_input_order_not_score_order() -> None:
    out = QuasiDenseTAOTracker().update(dets([box(0), box(100)], [0.2, 0.9]), 0)
    assert ids_by_input(out, 2) == [0, 1]
    assert list(out.input_indices) == [0, 1]


def test_duplicate_removal_only_low_score_same_class_against_earlier() -> None:
    a, b = box(0, w=10, h=10), box(2.5, w=10, h=10)  # IoU 0.6
    t = QuasiDenseTAOTracker()
    # low-score later duplicate of the same class: dropped
    assert ids_by_input(t.update(dets([a, b], [0.9, 0.4]), 0), 2) == [0, None]
    # high-score duplicate: kept
    t.reset()
    assert ids_by_input(t.update(dets([a, b], [0.9, 0.6]), 0), 2) == [0, 1]
    # another class: kept
    t.reset()
    assert ids_by_input(t.update(dets([a, b], [0.9, 0.4], labels=[3, 4]), 0), 2) == [0, 1]
    # the low-score box comes first: nothing earlier to compare with, both kept
    t.reset()
    assert ids_by_input(t.update(dets([b, a], [0.4, 0.9]), 0), 2) == [0, 1]


def test_match_blends_scores_and_keeps_labels() -> None:
    t = QuasiDenseTAOTracker()
    t.update(dets([box(0)], [0.8], labels=[5]), 0)
    out = t.update(dets([box(2)], [0.4], labels=[5]), 1)
    assert list(out.track_ids) == [0]
    assert out.scores[0] == pytest.approx(0.5 * 0.4 + 0.5 * 0.8)
    assert list(out.labels) == [5]


def test_other_class_never_matches() -> None:
    t = QuasiDenseTAOTracker()
    t.update(dets([box(0)], [0.8], labels=[5]), 0)
    out = t.update(dets([box(0)], [0.8], labels=[6]), 1)
    assert list(out.track_ids) == [1]


def test_score_difference_gate() -> None:
    t = QuasiDenseTAOTracker(TAOTrackerSettings(obj_score_diff_thr=0.3))
    t.update(dets([box(0)], [0.9]), 0)
    assert list(t.update(dets([box(0)], [0.5]), 1).track_ids) == [1]


def test_below_obj_score_thr_is_skipped() -> None:
    t = QuasiDenseTAOTracker(TAOTrackerSettings(obj_score_thr=0.3, init_score_thr=0.3))
    t.update(dets([box(0)], [0.9]), 0)
    out = t.update(dets([box(0)], [0.2]), 1, include_unconfirmed=True)
    assert list(out.track_ids) == [-1]


def test_no_backdrops_a_lone_track_takes_a_similar_detection() -> None:
    # bi-softmax over one column is 1; with cosine averaging the match needs cosine > 0
    t = QuasiDenseTAOTracker()
    t.update(dets([box(0)], [0.8], identities=[0]), 0)
    e = embed(0, 1.0) * 0.3 + embed(1, 1.0)
    assert list(t.update(dets([box(0)], [0.8], embeddings=e[None]), 1).track_ids) == [0]
    t.reset()
    t.update(dets([box(0)], [0.8], identities=[0]), 0)
    assert list(t.update(dets([box(0)], [0.8], identities=[1]), 1).track_ids) == [1]


@pytest.mark.parametrize(("gap", "same"), [(10, True), (11, False)])
def test_expiry_after_memo_tracklet_frames(gap: int, same: bool) -> None:
    t = QuasiDenseTAOTracker()
    t.update(dets([box(0)], [0.8], identities=[0]), 0)
    for f in range(1, gap):
        t.update(dets([box(300)], [0.8], identities=[3], labels=[9]), f)
    out = t.update(dets([box(0)], [0.8], identities=[0]), gap)
    assert (list(out.track_ids) == [0]) is same


def test_masked_bisoftmax_equals_reference_formula_and_stays_finite() -> None:
    rng = np.random.default_rng(0)
    a, m = rng.normal(size=(4, DIM)), rng.normal(size=(3, DIM))
    mask = rng.random((4, 3)) > 0.3
    exps = np.exp(a @ m.T) * mask
    ref = (
        exps / (exps.sum(1, keepdims=True) + 1e-6) + exps / (exps.sum(0, keepdims=True) + 1e-6)
    ) / 2
    np.testing.assert_allclose(masked_bisoftmax(a, m, mask), ref, rtol=1e-5, atol=1e-7)
    # dot products of ~10,000 overflow exp() in float32; ours stays finite
    big = masked_bisoftmax(a * 100, m * 100, np.ones((4, 3), bool))
    assert np.isfinite(big).all() and big.max() <= 1.0


def test_large_embeddings_still_match() -> None:
    t = QuasiDenseTAOTracker()
    big = np.stack([embed(0, 300.0), embed(1, 300.0)])
    t.update(dets([box(0), box(100)], [0.8, 0.8], embeddings=big), 0)
    out = t.update(dets([box(100), box(0)], [0.8, 0.8], embeddings=big[::-1].copy()), 1)
    assert ids_by_input(out, 2) == [1, 0]


def test_cosine_metric() -> None:
    t = QuasiDenseTAOTracker(TAOTrackerSettings(match_metric="cosine"))
    t.update(dets([box(0)], [0.8], identities=[0]), 0)
    e = np.zeros(DIM, np.float32)
    e[0], e[1] = 0.6, 0.8
    assert cosine_similarity(e[None], embed(0)[None])[0, 0] == pytest.approx(0.6)
    assert list(t.update(dets([box(0)], [0.8], embeddings=e[None]), 1).track_ids) == [0]


def test_empty_frame_changes_nothing() -> None:
    t = QuasiDenseTAOTracker()
    t.update(dets([box(0)], [0.8]), 0)
    assert len(t.update(Detections.empty(DIM), 1)) == 0
    assert t.num_tracklets == 1
