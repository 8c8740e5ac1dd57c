"""Every rule of the QDTrack MOT tracker (reference d.1–d.2) on hand-built frames."""

from __future__ import annotations

import numpy as np
import pytest

from qdtrack.structures import Detections
from qdtrack.trackers import SUPPRESSED, UNMATCHED, QuasiDenseTracker, QuasiDenseTrackerSettings
from qdtrack.trackers.association import bisoftmax_similarity

from .helpers import DIM, box, dets, embed, ids_by_input


def test_defaults_are_the_mot17_config() -> None:
    s = QuasiDenseTracker().settings.to_dict()
    assert s == {
        "init_score_thr": 0.9,
        "obj_score_thr": 0.5,
        "match_score_thr": 0.5,
        "memo_tracklet_frames": 30,
        "memo_backdrop_frames": 1,
        "memo_momentum": 0.8,
        "nms_conf_thr": 0.5,
        "nms_backdrop_iou_thr": 0.3,
        "nms_class_iou_thr": 0.7,
        "with_cats": True,
        "match_metric": "bisoftmax",
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"memo_momentum": 1.5}, {"memo_tracklet_frames": 0}, {"match_metric": "l2"}],
)
def test_bad_settings_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        QuasiDenseTracker(QuasiDenseTrackerSettings(**kwargs))


def test_new_ids_in_descending_score_order_from_zero() -> None:
    t = QuasiDenseTracker()
    d = dets([box(0), box(100), box(200), box(300)], [0.95, 0.99, 0.5, 0.91])
    out = t.update(d, 0)
    assert ids_by_input(out, 4) == [1, 0, None, 2]
    # output rows follow the sorted order
    assert list(out.input_indices) == [1, 0, 3]
    assert t.next_id == 3


def test_init_threshold_is_strict() -> None:
    out = QuasiDenseTracker().update(dets([box(0)], [0.9]), 0)
    assert len(out) == 0


def test_identity_follows_appearance_not_input_order() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0), box(100)], [0.95, 0.96], identities=[0, 1]), 0)
    # frame 1: the two objects swap places and the input order is reversed
    out = t.update(dets([box(0), box(100)], [0.97, 0.95], identities=[1, 0]), 1)
    assert ids_by_input(out, 2) == [0, 1]


def test_mid_score_detection_keeps_an_id_but_cannot_start_one() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    out = t.update(dets([box(5), box(100)], [0.7, 0.7], identities=[0, 1]), 1)
    assert ids_by_input(out, 2) == [0, None]


def test_low_score_match_is_suppressed_not_tracked_and_not_a_backdrop() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    out = t.update(dets([box(5)], [0.4], identities=[0]), 1, include_unconfirmed=True)
    assert list(out.track_ids) == [SUPPRESSED]
    assert len(out.confirmed()) == 0
    assert t.tracklets[0].last_frame == 0  # the track was not updated
    assert len(t.backdrop_boxes) == 0  # −2 never becomes a backdrop


def test_suppression_needs_conf_above_nms_conf_thr() -> None:
    # cosine similarity 0.6 > match_score_thr 0.5 but below nms_conf_thr 0.7 -> stays −1
    t = QuasiDenseTracker(QuasiDenseTrackerSettings(match_metric="cosine", nms_conf_thr=0.7))
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    e = np.zeros(DIM, np.float32)
    e[0], e[1] = 0.6, 0.8
    out = t.update(dets([box(5)], [0.4], embeddings=e[None]), 1, include_unconfirmed=True)
    assert list(out.track_ids) == [UNMATCHED]
    assert len(t.backdrop_boxes) == 1


def test_score_equal_to_obj_score_thr_cannot_take_an_id() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    out = t.update(dets([box(5)], [0.5], identities=[0]), 1, include_unconfirmed=True)
    assert list(out.track_ids) == [SUPPRESSED]


def test_duplicate_removal_thresholds_depend_on_score() -> None:
    a, b_high, c_far = box(0, w=10, h=10), box(1, w=10, h=10), box(50, w=10, h=10)
    # IoU(a, b) = 90/110 = 0.82 > 0.7: high-score duplicate dropped
    out = QuasiDenseTracker().update(dets([a, b_high, c_far], [0.99, 0.98, 0.97]), 0)
    assert ids_by_input(out, 3) == [0, None, 1]
    # IoU 0.6 between high-score boxes: below 0.7, both kept
    b_mid = box(2.5, w=10, h=10)  # IoU(a, b_mid) = 75/125 = 0.6
    out = QuasiDenseTracker().update(dets([a, b_mid], [0.99, 0.98]), 0)
    assert ids_by_input(out, 2) == [0, 1]
    # the same IoU 0.6 with a low score (< obj_score_thr): above 0.3, dropped
    t = QuasiDenseTracker()
    out = t.update(dets([a, b_mid], [0.99, 0.45]), 0, include_unconfirmed=True)
    assert list(out.input_indices) == [0]


def test_duplicate_removal_compares_with_dropped_boxes() -> None:
    a = box(0, w=10, h=10)
    b = box(1, w=10, h=10)  # IoU(a, b) = 0.818: dropped
    c = box(2.5, w=10, h=10)  # IoU(a, c) = 0.6 (kept vs a), IoU(b, c) = 0.739 > 0.7
    out = QuasiDenseTracker().update(dets([a, b, c], [0.99, 0.98, 0.97]), 0)
    assert ids_by_input(out, 3) == [0, None, None]


def test_duplicate_removal_is_class_agnostic() -> None:
    a, b = box(0, w=10, h=10), box(1, w=10, h=10)
    out = QuasiDenseTracker().update(dets([a, b], [0.99, 0.98], labels=[0, 1]), 0)
    assert ids_by_input(out, 2) == [0, None]


def test_backdrop_absorbs_a_wrong_match() -> None:
    """Without backdrops a lone tracklet wins every softmax; a backdrop stops that."""
    frames = [
        dets([box(0), box(200)], [0.95, 0.4], identities=[0, 1]),  # track 0 + backdrop (id 1)
        dets([box(205)], [0.7], identities=[1]),  # looks like the backdrop, not the track
    ]
    with_backdrops = QuasiDenseTracker()
    without = QuasiDenseTracker(QuasiDenseTrackerSettings(memo_backdrop_frames=0))
    for tracker in (with_backdrops, without):
        tracker.update(frames[0], 0)
    assert len(with_backdrops.update(frames[1], 1)) == 0
    assert list(without.update(frames[1], 1).track_ids) == [0]


def test_matching_a_backdrop_leaves_the_detection_free_to_start_a_track() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0), box(200)], [0.95, 0.4], identities=[0, 1]), 0)
    out = t.update(dets([box(205)], [0.95], identities=[1]), 1)
    assert list(out.track_ids) == [1]


def test_backdrop_dedup_against_any_earlier_detection() -> None:
    t = QuasiDenseTracker()
    # tracked 0.95 box; a 0.45 box overlapping it at IoU 0.2 (kept by dup removal, < 0.3)
    # is a backdrop candidate; a 0.44 box overlapping the 0.45 one at IoU 0.25 too.
    a = box(0, w=10, h=10)
    b = box(7, w=10, h=10)  # IoU(a, b) = 30/170 = 0.176
    c = box(13, w=10, h=10)  # IoU(b, c) = 40/160 = 0.25, IoU(a, c) = 0
    t.update(dets([a, b, c], [0.95, 0.45, 0.44], identities=[0, 1, 2]), 0)
    np.testing.assert_allclose(t.backdrop_boxes, np.asarray([b, c], np.float32))
    # with a looser backdrop IoU the second candidate overlaps the first: dropped
    t2 = QuasiDenseTracker(QuasiDenseTrackerSettings(nms_backdrop_iou_thr=0.2))
    t2.update(dets([a, b, c], [0.95, 0.45, 0.44], identities=[0, 1, 2]), 0)
    np.testing.assert_allclose(t2.backdrop_boxes, np.asarray([b], np.float32))


def test_match_scores_shows_tracklets_then_backdrops_without_changing_state() -> None:
    t = QuasiDenseTracker()
    # tracks 0 and 1; a 0.4 box far away is the one backdrop
    t.update(dets([box(0), box(100), box(200)], [0.95, 0.92, 0.4], identities=[0, 1, 2]), 0)
    probe = np.stack([embed(1), embed(2)])
    scores, memo_ids = t.match_scores(probe, np.asarray([0, 0]))
    assert list(memo_ids) == [0, 1, UNMATCHED]
    memo = np.stack([embed(0), embed(1), embed(2)])
    np.testing.assert_allclose(scores, bisoftmax_similarity(probe, memo), rtol=1e-6)
    assert scores[0].argmax() == 1 and scores[1].argmax() == 2  # the second one: a backdrop
    # with_cats: a label no column has gives zeros
    other, _ = t.match_scores(probe[:1], np.asarray([3]))
    np.testing.assert_array_equal(other, np.zeros((1, 3), np.float32))
    # nothing changed: the next frame still matches track 1
    out = t.update(dets([box(101)], [0.95], identities=[1]), 1)
    assert list(out.track_ids) == [1]


def test_only_the_latest_frame_of_backdrops_is_kept() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0), box(100)], [0.95, 0.3], identities=[0, 1]), 0)
    assert len(t.backdrop_boxes) == 1
    t.update(dets([box(0)], [0.95], identities=[0]), 1)
    assert len(t.backdrop_boxes) == 0
    t3 = QuasiDenseTracker(QuasiDenseTrackerSettings(memo_backdrop_frames=2))
    t3.update(dets([box(0), box(100)], [0.95, 0.3], identities=[0, 1]), 0)
    t3.update(dets([box(0), box(200)], [0.95, 0.3], identities=[0, 2]), 1)
    np.testing.assert_allclose(t3.backdrop_boxes, np.asarray([box(200), box(100)], np.float32))


def _filler(frame: int) -> Detections:
    # an unrelated low-score detection of another class keeps frames non-empty
    return dets([box(500)], [0.3], identities=[7], labels=[1])


@pytest.mark.parametrize(("gap", "same_id"), [(29, True), (30, True), (31, False)])
def test_expiry_at_exactly_memo_tracklet_frames(gap: int, same_id: bool) -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    for f in range(1, gap):
        t.update(_filler(f), f)
    out = t.update(dets([box(0)], [0.95], identities=[0]), gap)
    assert (list(out.track_ids) == [0]) is same_id
    if not same_id:
        assert list(out.track_ids) == [1]


def test_empty_frames_do_not_age_memory_or_refresh_backdrops() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0), box(100)], [0.95, 0.3], identities=[0, 1]), 0)
    for f in range(1, 60):
        assert len(t.update(Detections.empty(DIM), f)) == 0
    assert len(t.backdrop_boxes) == 1
    out = t.update(dets([box(0)], [0.95], identities=[0]), 60)
    assert list(out.track_ids) == [0]


def test_momentum_update_weights_the_new_embedding() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    e_new = embed(0) + embed(1, scale=2.0)
    t.update(dets([box(3)], [0.95], embeddings=e_new[None]), 1)
    track = t.tracklets[0]
    np.testing.assert_allclose(track.embedding, 0.2 * embed(0) + 0.8 * e_new, rtol=1e-6)
    np.testing.assert_allclose(track.box_xyxy, box(3))
    assert track.last_frame == 1
    np.testing.assert_allclose(track.velocity, [3, 0, 3, 0])


def test_with_cats_only_matches_equal_labels() -> None:
    frames = [dets([box(0)], [0.95], labels=[0]), dets([box(0)], [0.95], labels=[1])]
    strict, loose = (
        QuasiDenseTracker(),
        QuasiDenseTracker(QuasiDenseTrackerSettings(with_cats=False)),
    )
    for t in (strict, loose):
        t.update(frames[0], 0)
    assert list(strict.update(frames[1], 1).track_ids) == [1]
    assert list(loose.update(frames[1], 1).track_ids) == [0]


def test_greedy_order_higher_score_takes_the_track() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    # two look-alikes of track 0: the 0.97 one (input row 1) takes it, the other starts id 1
    out = t.update(dets([box(100), box(0)], [0.93, 0.97], identities=[0, 0]), 1)
    assert ids_by_input(out, 2) == [1, 0]


@pytest.mark.parametrize(
    ("metric", "cos", "matched"),
    [("cosine", 0.6, True), ("cosine", 0.4, False), ("softmax", 0.0, True)],
)
def test_match_metrics(metric: str, cos: float, matched: bool) -> None:
    t = QuasiDenseTracker(QuasiDenseTrackerSettings(match_metric=metric))
    t.update(dets([box(0)], [0.95], identities=[0]), 0)
    e = np.zeros(DIM, np.float32)
    e[0], e[1] = cos, np.sqrt(1 - cos**2)
    out = t.update(dets([box(0)], [0.95], embeddings=e[None]), 1)
    # softmax over a single memory column is 1 whatever the embedding
    assert (list(out.track_ids) == [0]) is matched


def test_bisoftmax_is_mean_of_row_and_column_softmax() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    m = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], np.float32)
    s = a @ m.T
    row = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    col = np.exp(s) / np.exp(s).sum(0, keepdims=True)
    np.testing.assert_allclose(bisoftmax_similarity(a, m), (row + col) / 2, rtol=1e-6)


def test_frame_ids_must_increase_and_reset_restarts_ids() -> None:
    t = QuasiDenseTracker()
    t.update(dets([box(0)], [0.95]), 5)
    with pytest.raises(ValueError, match="increase"):
        t.update(dets([box(0)], [0.95]), 5)
    t.reset()
    out = t.update(dets([box(0), box(100)], [0.95, 0.96]), 0)
    assert sorted(out.track_ids.tolist()) == [0, 1]


def test_missing_embeddings_is_a_clear_error() -> None:
    d = Detections(np.asarray([box(0)], np.float32), [0.95], [0])
    with pytest.raises(ValueError, match="embeddings"):
        QuasiDenseTracker().update(d, 0)
