"""``QuasiDenseTracker``: the QDTrack MOT tracker (docs/reference-behaviour.md d.1–d.2).

The tracker consumes detections with embeddings and never holds the model, so the same
object runs in offline evaluation, in ``qdtrack associate`` and once per stream in the
serving sidecar. Memory is kept as arrays (one row per tracklet) so a frame costs a few
vectorised numpy calls plus one short greedy loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from qdtrack.structures import Detections, Tracks
from qdtrack.trackers.association import MATCH_METRICS, earlier_overlap, similarity
from qdtrack.trackers.settings import TrackerSettings, check_range
from qdtrack.trackers.state import check_frame_order, pack_state, unpack_state

UNMATCHED = -1  # no id: a backdrop candidate, or below init_score_thr
SUPPRESSED = -2  # low-score duplicate of a tracked object; never becomes a backdrop


@dataclass(frozen=True)
class Tracklet:
    """A read-only view of one remembered track."""

    track_id: int
    box_xyxy: np.ndarray
    score: float
    embedding: np.ndarray
    label: int
    last_frame: int
    velocity: np.ndarray


@dataclass
class _Memory:
    """Tracklets as parallel arrays, rows in ascending id order (= insertion order)."""

    ids: np.ndarray  # (T,) int64
    boxes: np.ndarray  # (T, 4) float32
    scores: np.ndarray  # (T,) float32
    embeds: np.ndarray  # (T, D) float32
    labels: np.ndarray  # (T,) int64
    last_frame: np.ndarray  # (T,) int64
    velocity: np.ndarray  # (T, 4) float32, running mean; stored, never used for matching
    acc_frame: np.ndarray  # (T,) int64

    @classmethod
    def empty(cls, dim: int = 0) -> _Memory:
        return cls(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, dim), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.int64),
        )

    def keep(self, mask: np.ndarray) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name)[mask])

    def append(self, other: _Memory) -> None:
        for name in self.__dataclass_fields__:
            mine = getattr(self, name)
            if name == "embeds" and mine.shape[0] == 0:
                mine = mine.reshape(0, other.embeds.shape[1])
            setattr(self, name, np.concatenate([mine, getattr(other, name)]))


@dataclass
class _Backdrops:
    """Unmatched low-similarity detections of one frame (memory only, never reported)."""

    boxes: np.ndarray  # (B, 4)
    embeds: np.ndarray  # (B, D)
    labels: np.ndarray  # (B,)


@dataclass(frozen=True)
class QuasiDenseTrackerSettings(TrackerSettings):
    """Settings of :class:`QuasiDenseTracker`; defaults = the mmtracking MOT17 config.

    The reference's class defaults differ from its MOT17 config; these are the config's
    values.

    Attributes:
        init_score_thr: minimum score to start a tracklet. Raise it for fewer false
            tracks, lower it to start tracks on weak detections.
        obj_score_thr: minimum score to take a tracklet's id; also selects the duplicate
            removal threshold.
        match_score_thr: minimum similarity for a match.
        memo_tracklet_frames: how long a lost tracklet stays matchable: one last seen at
            frame f can still match at f + memo_tracklet_frames and is forgotten after
            that frame's matching (``frame − last_frame >= memo_tracklet_frames``).
        memo_backdrop_frames: frames of backdrops kept.
        memo_momentum: weight of the new embedding in the tracklet's running embedding.
        nms_conf_thr: similarity above which a low-score match is suppressed (−2).
        nms_backdrop_iou_thr: IoU for low-score duplicate removal and backdrop dedup.
        nms_class_iou_thr: IoU for high-score duplicate removal.
        with_cats: only match detections to tracklets of the same label.
        match_metric: ``"bisoftmax"``, ``"softmax"`` or ``"cosine"``.
    """

    tracker_type: ClassVar[str] = "qdtrack"

    init_score_thr: float = 0.9
    obj_score_thr: float = 0.5
    match_score_thr: float = 0.5
    memo_tracklet_frames: int = 30
    memo_backdrop_frames: int = 1
    memo_momentum: float = 0.8
    nms_conf_thr: float = 0.5
    nms_backdrop_iou_thr: float = 0.3
    nms_class_iou_thr: float = 0.7
    with_cats: bool = True
    match_metric: Literal["bisoftmax", "softmax", "cosine"] = "bisoftmax"

    def __post_init__(self) -> None:
        check_range("memo_momentum", self.memo_momentum, 0.0, 1.0)
        check_range("memo_tracklet_frames", self.memo_tracklet_frames, 1)
        check_range("memo_backdrop_frames", self.memo_backdrop_frames, 0)
        if self.match_metric not in MATCH_METRICS:
            raise ValueError(
                f"match_metric must be one of {MATCH_METRICS}, got {self.match_metric!r}"
            )


class QuasiDenseTracker:
    """Associates detections to tracklets by quasi-dense appearance similarity.

    Defaults are the mmtracking MOT17 config (not the class defaults of the reference,
    reference d.1 / h.11). Each frame (reference d.2):

    1. sort detections by score, descending;
    2. drop duplicates: IoU above ``nms_backdrop_iou_thr`` (scores below
       ``obj_score_thr``) or ``nms_class_iou_thr`` (others) with any earlier box;
    3. score against memory (tracklets, then backdrops) with ``match_metric``, zeroed
       across labels when ``with_cats``; greedy in score order: a best score above
       ``match_score_thr`` on a tracklet gives its id when the detection scores above
       ``obj_score_thr``, else marks it suppressed (−2) when above ``nms_conf_thr``;
    4. start tracklets for unmatched detections above ``init_score_thr``, ids counting
       up from 0 in score order;
    5. update memory: momentum embeddings (``memo_momentum`` = weight of the new one),
       the frame's backdrops replace older ones, tracklets unseen for
       ``memo_tracklet_frames`` frames are forgotten.

    A frame without detections changes nothing (it does not age the memory). Frame ids
    must increase strictly; call :meth:`reset` between sequences.

    Args:
        settings: the tracker's settings (default: the MOT17 configuration).
    """

    kind = "quasi_dense"

    def __init__(self, settings: QuasiDenseTrackerSettings | None = None) -> None:
        self.settings = settings if settings is not None else QuasiDenseTrackerSettings()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything; the next id is 0."""
        self._memory = _Memory.empty()
        self._backdrops: list[_Backdrops] = []  # newest first
        self._next_id = 0
        self._last_frame_id: int | None = None

    @property
    def empty(self) -> bool:
        """True when no tracklet is remembered (backdrops alone do not count)."""
        return self._memory.ids.shape[0] == 0

    @property
    def num_tracklets(self) -> int:
        """Number of remembered tracklets."""
        return int(self._memory.ids.shape[0])

    @property
    def next_id(self) -> int:
        """The id the next new tracklet will get."""
        return self._next_id

    @property
    def tracklets(self) -> dict[int, Tracklet]:
        """Remembered tracklets by id (copies; editing them does not change the tracker)."""
        m = self._memory
        return {
            int(m.ids[i]): Tracklet(
                int(m.ids[i]),
                m.boxes[i].copy(),
                float(m.scores[i]),
                m.embeds[i].copy(),
                int(m.labels[i]),
                int(m.last_frame[i]),
                m.velocity[i].copy(),
            )
            for i in range(m.ids.shape[0])
        }

    @property
    def backdrop_boxes(self) -> np.ndarray:
        """(B, 4) boxes of the stored backdrops, newest frame first."""
        if not self._backdrops:
            return np.zeros((0, 4), np.float32)
        return np.concatenate([b.boxes for b in self._backdrops])

    # ----------------------------------------------------------------- update
    def update(
        self, detections: Detections, frame_id: int, *, include_unconfirmed: bool = False
    ) -> Tracks:
        """Track one frame.

        Args:
            detections: the frame's detections after NMS, with ``embeddings`` (N, D).
            frame_id: frame index; must be larger than the previous call's.
            include_unconfirmed: also return kept detections without an id (−1, −2).

        Returns:
            The kept detections in descending score order with their ids; by default only
            those with an id ``>= 0``. ``input_indices`` point into ``detections``.
        """
        self._last_frame_id = frame_id = check_frame_order(self._last_frame_id, frame_id)
        if len(detections) == 0:
            # Reference: an empty frame returns before touching memory (reference d.2 step 0).
            return Tracks.empty()
        if detections.embeddings is None:
            raise ValueError("QuasiDenseTracker needs detections.embeddings")
        if not self.empty and detections.embeddings.shape[1] != self._memory.embeds.shape[1]:
            raise ValueError(
                f"embedding size {detections.embeddings.shape[1]} differs from the "
                f"tracker memory's {self._memory.embeds.shape[1]}"
            )

        # 1. sort by score, descending
        order = np.argsort(-detections.scores, kind="stable")
        # 2. remove duplicates, comparing with every earlier box (dropped ones included)
        sorted_scores = detections.scores[order]
        settings = self.settings
        thr = np.where(
            sorted_scores < settings.obj_score_thr,
            settings.nms_backdrop_iou_thr,
            settings.nms_class_iou_thr,
        )
        order = order[~earlier_overlap(detections.boxes_xyxy[order], thr)]
        dets = detections.select(order)
        assert dets.embeddings is not None

        # 3. match against tracklets and backdrops
        ids = np.full(len(dets), UNMATCHED, dtype=np.int64)
        if len(dets) > 0 and not self.empty:
            ids = self._match(dets)
        # 4. start new tracklets in score order
        new = (ids == UNMATCHED) & (dets.scores > self.settings.init_score_thr)
        num_new = int(new.sum())
        ids[new] = np.arange(self._next_id, self._next_id + num_new)
        self._next_id += num_new
        # 5. update memory, backdrops, expiry
        self._update_tracklets(dets, ids, frame_id)
        self._update_backdrops(dets, ids)
        self._memory.keep(frame_id - self._memory.last_frame < self.settings.memo_tracklet_frames)

        out = Tracks(dets.boxes_xyxy, dets.scores, dets.labels, ids, order)
        return out if include_unconfirmed else out.confirmed()

    def match_scores(
        self, embeddings: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The similarities step 3 would use, without changing the tracker.

        Args:
            embeddings: (N, D) detection embeddings.
            labels: (N,) detection labels (only used when ``with_cats``).

        Returns:
            ``(scores, memo_ids)``: (N, M) ``match_metric`` similarities against the
            remembered tracklets followed by the stored backdrops (zero across labels when
            ``with_cats``), and the (M,) id of each column, ``-1`` for a backdrop.
        """
        m = self._memory
        memo_embeds = [m.embeds] + [b.embeds for b in self._backdrops]
        memo_labels = [m.labels] + [b.labels for b in self._backdrops]
        memo_ids = np.concatenate(
            [m.ids] + [np.full(b.labels.shape[0], UNMATCHED, np.int64) for b in self._backdrops]
        )
        scores = similarity(self.settings.match_metric, embeddings, np.concatenate(memo_embeds))
        if self.settings.with_cats:
            scores = scores * (np.asarray(labels)[:, None] == np.concatenate(memo_labels)[None, :])
        return scores, memo_ids

    def _match(self, dets: Detections) -> np.ndarray:
        """Greedy assignment of detections (score order) to the memory (step 3)."""
        assert dets.embeddings is not None
        scores, memo_ids = self.match_scores(dets.embeddings, dets.labels)

        ids = np.full(len(dets), UNMATCHED, dtype=np.int64)
        det_scores = dets.scores
        for i in range(len(dets)):
            row = scores[i]
            col = int(row.argmax())
            conf = row[col]
            if conf <= self.settings.match_score_thr or memo_ids[col] < 0:
                continue  # no match, or the best match is a backdrop: stays unmatched
            if det_scores[i] > self.settings.obj_score_thr:
                ids[i] = memo_ids[col]
                scores[i + 1 :, col] = 0.0  # a tracklet takes at most one detection
            elif conf > self.settings.nms_conf_thr:
                ids[i] = SUPPRESSED
        return ids

    def _update_tracklets(self, dets: Detections, ids: np.ndarray, frame_id: int) -> None:
        assert dets.embeddings is not None
        m = self._memory
        tracked = ids >= 0
        existing = tracked & np.isin(ids, m.ids)
        if existing.any():
            rows = np.searchsorted(m.ids, ids[existing])  # m.ids is sorted ascending
            new_boxes = dets.boxes_xyxy[existing]
            velocity = (new_boxes - m.boxes[rows]) / (frame_id - m.last_frame[rows])[:, None]
            acc = m.acc_frame[rows]
            m.velocity[rows] = (m.velocity[rows] * acc[:, None] + velocity) / (acc + 1)[:, None]
            m.acc_frame[rows] = acc + 1
            m.boxes[rows] = new_boxes
            m.scores[rows] = dets.scores[existing]
            m.embeds[rows] = (1.0 - self.settings.memo_momentum) * m.embeds[
                rows
            ] + self.settings.memo_momentum * dets.embeddings[existing]
            m.labels[rows] = dets.labels[existing]
            m.last_frame[rows] = frame_id
        fresh = tracked & ~existing
        if fresh.any():
            k = int(fresh.sum())
            m.append(
                _Memory(
                    ids[fresh].copy(),
                    dets.boxes_xyxy[fresh].copy(),
                    dets.scores[fresh].copy(),
                    dets.embeddings[fresh].copy(),
                    dets.labels[fresh].copy(),
                    np.full(k, frame_id, np.int64),
                    np.zeros((k, 4), np.float32),
                    np.zeros(k, np.int64),
                )
            )

    def _update_backdrops(self, dets: Detections, ids: np.ndarray) -> None:
        assert dets.embeddings is not None
        # Candidates are exactly the unmatched (−1, not −2); one overlapping any earlier
        # detection of the frame, tracked or not, is dropped.
        overlaps = earlier_overlap(dets.boxes_xyxy, self.settings.nms_backdrop_iou_thr)
        keep = (ids == UNMATCHED) & ~overlaps
        self._backdrops.insert(
            0, _Backdrops(dets.boxes_xyxy[keep], dets.embeddings[keep], dets.labels[keep])
        )
        del self._backdrops[self.settings.memo_backdrop_frames :]

    # ---------------------------------------------------------- serialisation
    def to_bytes(self) -> bytes:
        """Serialise settings and memory; :meth:`from_bytes` continues with the same ids."""
        m = self._memory
        arrays = {
            "ids": m.ids,
            "boxes": m.boxes,
            "scores": m.scores,
            "embeds": m.embeds,
            "labels": m.labels,
            "last_frame": m.last_frame,
            "velocity": m.velocity,
            "acc_frame": m.acc_frame,
        }
        for i, b in enumerate(self._backdrops):
            arrays[f"backdrop{i}_boxes"] = b.boxes
            arrays[f"backdrop{i}_embeds"] = b.embeds
            arrays[f"backdrop{i}_labels"] = b.labels
        meta = {
            "settings": self.settings.to_dict(),
            "next_id": self._next_id,
            "last_frame_id": self._last_frame_id,
            "num_backdrop_frames": len(self._backdrops),
        }
        return pack_state(self.kind, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuasiDenseTracker:
        """Rebuild a tracker (settings and memory) from :meth:`to_bytes` output."""
        meta, arrays = unpack_state(data, cls.kind)
        try:
            tracker = cls(QuasiDenseTrackerSettings.from_mapping(meta["settings"], "state"))
            memory = _Memory(**{name: arrays[name] for name in _Memory.__dataclass_fields__})
            backdrops = [
                _Backdrops(
                    arrays[f"backdrop{i}_boxes"],
                    arrays[f"backdrop{i}_embeds"],
                    arrays[f"backdrop{i}_labels"],
                )
                for i in range(int(meta["num_backdrop_frames"]))
            ]
            next_id = int(meta["next_id"])
            last = meta["last_frame_id"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"corrupt tracker state: missing {exc}") from exc
        n = memory.ids.shape[0]
        if any(getattr(memory, f).shape[0] != n for f in _Memory.__dataclass_fields__):
            raise ValueError("corrupt tracker state: memory arrays differ in length")
        tracker._memory = memory
        tracker._backdrops = backdrops
        tracker._next_id = next_id
        tracker._last_frame_id = None if last is None else int(last)
        return tracker
