"""``QuasiDenseTAOTracker``: the multi-class QDTrack tracker for TAO (reference d.3).

Differences from :class:`~qdtrack.trackers.quasi_dense.QuasiDenseTracker`: detections
keep their input order; only low-score detections are de-duplicated, and only against
earlier detections of the same class; there are no backdrops and no suppressed (−2)
state; similarity is a class-masked bi-softmax averaged with the class-masked cosine;
a match also needs similar scores and blends the detection's score with the track's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from qdtrack.structures import Detections, Tracks, box_iou
from qdtrack.trackers.association import cosine_similarity, masked_bisoftmax
from qdtrack.trackers.settings import TrackerSettings, check_range
from qdtrack.trackers.state import check_frame_order, pack_state, unpack_state

UNMATCHED = -1
TAO_MATCH_METRICS = ("bisoftmax", "cosine")


@dataclass
class _TaoMemory:
    ids: np.ndarray  # (T,) int64, ascending
    boxes: np.ndarray  # (T, 4) float32, last box
    scores: np.ndarray  # (T,) float32, last (blended) score
    embeds: np.ndarray  # (T, D) float32, momentum embedding
    labels: np.ndarray  # (T,) int64, last label
    last_frame: np.ndarray  # (T,) int64

    @classmethod
    def empty(cls) -> _TaoMemory:
        return cls(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 0), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )


@dataclass(frozen=True)
class TAOTrackerSettings(TrackerSettings):
    """Settings of :class:`QuasiDenseTAOTracker`; defaults = the mmtracking TAO config.

    Attributes:
        init_score_thr: minimum score to start a track.
        obj_score_thr: detections scoring below this are not matched.
        match_score_thr: minimum similarity for a match.
        memo_tracklet_frames: a track unseen for this many frames is forgotten (the
            reference calls it ``memo_frames``).
        memo_momentum: weight of the new embedding in the running embedding.
        momentum_obj_score: weight of the detection's score when blending it with the
            matched track's score.
        obj_score_diff_thr: a match needs ``|score_det − score_track|`` below this.
        distractor_nms_thr: IoU above which a low-score detection duplicating an earlier
            same-class detection is dropped.
        distractor_score_thr: scores below this count as low for that rule.
        match_metric: ``"bisoftmax"`` or ``"cosine"``.
        match_with_cosine: average the bi-softmax with the cosine similarity.
    """

    tracker_type: ClassVar[str] = "tao"

    init_score_thr: float = 1e-4
    obj_score_thr: float = 1e-4
    match_score_thr: float = 0.5
    memo_tracklet_frames: int = 10
    memo_momentum: float = 0.8
    momentum_obj_score: float = 0.5
    obj_score_diff_thr: float = 1.0
    distractor_nms_thr: float = 0.3
    distractor_score_thr: float = 0.5
    match_metric: Literal["bisoftmax", "cosine"] = "bisoftmax"
    match_with_cosine: bool = True

    def __post_init__(self) -> None:
        check_range("memo_momentum", self.memo_momentum, 0.0, 1.0)
        check_range("momentum_obj_score", self.momentum_obj_score, 0.0, 1.0)
        check_range("memo_tracklet_frames", self.memo_tracklet_frames, 1)
        if self.match_metric not in TAO_MATCH_METRICS:
            raise ValueError(
                f"match_metric must be one of {TAO_MATCH_METRICS}, got {self.match_metric!r}"
            )


class QuasiDenseTAOTracker:
    """Multi-class quasi-dense tracker with the TAO configuration as defaults.

    Args:
        settings: the tracker's settings (default: the TAO configuration).
    """

    kind = "quasi_dense_tao"

    def __init__(self, settings: TAOTrackerSettings | None = None) -> None:
        self.settings = settings if settings is not None else TAOTrackerSettings()
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next id is 0."""
        self._memory = _TaoMemory.empty()
        self._next_id = 0
        self._last_frame_id: int | None = None

    @property
    def empty(self) -> bool:
        """True when no track is remembered."""
        return self._memory.ids.shape[0] == 0

    @property
    def num_tracklets(self) -> int:
        """Number of remembered tracks."""
        return int(self._memory.ids.shape[0])

    @property
    def next_id(self) -> int:
        """The id the next new track will get."""
        return self._next_id

    def update(
        self, detections: Detections, frame_id: int, *, include_unconfirmed: bool = False
    ) -> Tracks:
        """Track one frame; see :meth:`QuasiDenseTracker.update` for the contract.

        Output rows keep the input order; their scores are the blended scores.
        """
        self._last_frame_id = frame_id = check_frame_order(self._last_frame_id, frame_id)
        if len(detections) == 0:
            return Tracks.empty()
        if detections.embeddings is None:
            raise ValueError("QuasiDenseTAOTracker needs detections.embeddings")

        # 1. same-class duplicate removal for low-score detections, against every
        #    earlier detection in input order (dropped ones included)
        keep_index = np.flatnonzero(~self._low_score_duplicates(detections))
        dets = detections.select(keep_index)
        scores = dets.scores.copy()
        # 2. match
        ids = np.full(len(dets), UNMATCHED, dtype=np.int64)
        if len(dets) > 0 and not self.empty:
            ids, scores = self._match(dets, scores)
        # 3. new tracks
        new = (ids == UNMATCHED) & (scores > self.settings.init_score_thr)
        num_new = int(new.sum())
        ids[new] = np.arange(self._next_id, self._next_id + num_new)
        self._next_id += num_new
        # 4. memory
        self._update_memory(dets, scores, ids, frame_id)

        out = Tracks(dets.boxes_xyxy, scores, dets.labels, ids, keep_index)
        return out if include_unconfirmed else out.confirmed()

    def _low_score_duplicates(self, dets: Detections) -> np.ndarray:
        n = len(dets)
        low = dets.scores < self.settings.distractor_score_thr
        ious = box_iou(dets.boxes_xyxy, dets.boxes_xyxy)
        same_class = dets.labels[:, None] == dets.labels[None, :]
        earlier = np.tri(n, k=-1, dtype=bool)
        return low & ((ious > self.settings.distractor_nms_thr) & same_class & earlier).any(axis=1)

    def _similarity(self, dets: Detections, same_class: np.ndarray) -> np.ndarray:
        assert dets.embeddings is not None
        memo = self._memory.embeds
        cosine = cosine_similarity(dets.embeddings, memo) * same_class
        if self.settings.match_metric == "cosine":
            return cosine
        scores = masked_bisoftmax(dets.embeddings, memo, same_class)
        return (scores + cosine) / 2 if self.settings.match_with_cosine else scores

    def _match(self, dets: Detections, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self._memory
        if dets.embeddings is not None and dets.embeddings.shape[1] != m.embeds.shape[1]:
            raise ValueError(
                f"embedding size {dets.embeddings.shape[1]} differs from the tracker "
                f"memory's {m.embeds.shape[1]}"
            )
        same_class = dets.labels[:, None] == m.labels[None, :]
        sim = self._similarity(dets, same_class)
        ids = np.full(len(dets), UNMATCHED, dtype=np.int64)
        w = self.settings.momentum_obj_score
        for i in range(len(dets)):
            if scores[i] < self.settings.obj_score_thr:
                continue
            col = int(sim[i].argmax())
            conf = sim[i, col]
            if conf > self.settings.match_score_thr and (
                abs(scores[i] - m.scores[col]) < self.settings.obj_score_diff_thr
            ):
                ids[i] = m.ids[col]
                sim[i + 1 :, col] = 0.0
                scores[i] = w * scores[i] + (1.0 - w) * m.scores[col]
        return ids, scores

    def _update_memory(
        self, dets: Detections, scores: np.ndarray, ids: np.ndarray, frame_id: int
    ) -> None:
        assert dets.embeddings is not None
        m = self._memory
        tracked = ids >= 0
        existing = tracked & np.isin(ids, m.ids)
        if existing.any():
            rows = np.searchsorted(m.ids, ids[existing])
            m.boxes[rows] = dets.boxes_xyxy[existing]
            m.scores[rows] = scores[existing]
            m.labels[rows] = dets.labels[existing]
            m.embeds[rows] = (1.0 - self.settings.memo_momentum) * m.embeds[
                rows
            ] + self.settings.memo_momentum * dets.embeddings[existing]
            m.last_frame[rows] = frame_id
        fresh = tracked & ~existing
        if fresh.any():
            embeds = (
                m.embeds if m.embeds.shape[0] else m.embeds.reshape(0, dets.embeddings.shape[1])
            )
            m.ids = np.concatenate([m.ids, ids[fresh]])
            m.boxes = np.concatenate([m.boxes, dets.boxes_xyxy[fresh]])
            m.scores = np.concatenate([m.scores, scores[fresh]])
            m.embeds = np.concatenate([embeds, dets.embeddings[fresh]])
            m.labels = np.concatenate([m.labels, dets.labels[fresh]])
            m.last_frame = np.concatenate([m.last_frame, np.full(int(fresh.sum()), frame_id)])
        alive = frame_id - m.last_frame < self.settings.memo_tracklet_frames
        for name in _TaoMemory.__dataclass_fields__:
            setattr(m, name, getattr(m, name)[alive])

    def to_bytes(self) -> bytes:
        """Serialise settings and memory."""
        m = self._memory
        arrays = {name: getattr(m, name) for name in _TaoMemory.__dataclass_fields__}
        meta = {
            "settings": self.settings.to_dict(),
            "next_id": self._next_id,
            "last_frame_id": self._last_frame_id,
        }
        return pack_state(self.kind, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuasiDenseTAOTracker:
        """Rebuild a tracker from :meth:`to_bytes` output."""
        meta, arrays = unpack_state(data, cls.kind)
        try:
            tracker = cls(TAOTrackerSettings.from_mapping(meta["settings"], "state"))
            memory = _TaoMemory(**{n: arrays[n] for n in _TaoMemory.__dataclass_fields__})
            tracker._next_id = int(meta["next_id"])
            last = meta["last_frame_id"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"corrupt tracker state: missing {exc}") from exc
        n = memory.ids.shape[0]
        if any(getattr(memory, f).shape[0] != n for f in _TaoMemory.__dataclass_fields__):
            raise ValueError("corrupt tracker state: memory arrays differ in length")
        tracker._memory = memory
        tracker._last_frame_id = None if last is None else int(last)
        return tracker
