"""Streams: one tracker per video stream, ordered per stream, snapshotted after every frame.

The in-process sessions are a cache of the state store. A frame is committed when its
snapshot is written with a compare-and-set on the stream's ``(generation, last_index)``
(``state.py``): a replica holding an outdated copy (another replica went on, or the
stream was closed, reopened or reset) loses the write, reloads and re-associates, so ids
never fork. While the store is unavailable, streams held here go on from memory, marked
unpersisted, and are written back when it answers again (``persistence.py``). PUT and
GET consult the store too: they refresh its TTL, re-create a record it lost and take over
a newer stored state.

Per stream, decoding and inference of concurrent frames overlap, but association and
persistence run one frame at a time in index order: a frame waits for every lower index
that is still in flight. A frame index must be larger than the last committed one; a
retried index within the last ``result_window`` frames gets its stored result back.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qdtrack.structures import Tracks
from qdtrack.trackers import TRACKERS, QuasiDenseTrackerSettings, Tracker, build_tracker
from serving.sidecar.errors import (
    FrameOutOfOrder,
    Overloaded,
    StoreUnavailable,
    StreamBusy,
    TritonBadResponse,
    UnknownStream,
)
from serving.sidecar.metrics import SidecarMetrics
from serving.sidecar.persistence import Loaded, StoreLink
from serving.sidecar.settings import Settings
from serving.sidecar.state import (
    SaveOutcome,
    StateStore,
    StreamRecord,
    Version,
    new_generation,
)
from serving.sidecar.triton_client import Detector, Inference

log = logging.getLogger(__name__)

MAX_COMMIT_ATTEMPTS = 3  # compare-and-set conflicts with another replica before giving up


class Gone(enum.Enum):
    """Why a session left memory; requests that still hold it must not commit."""

    CLOSED = "closed"  # the stream was closed: 404
    EVICTED = "evicted"  # expired from memory or found outdated: reload


@dataclass(eq=False)
class StreamSession:
    """One stream held in memory: its tracker and bookkeeping."""

    stream_id: str
    tracker_name: str
    tracker: Tracker
    last_index: int | None = None
    model_version: str | None = None
    id_offset: int = 0
    created_at: float = field(default_factory=time.time)
    results: dict[int, bytes] = field(default_factory=dict)  # insertion = index order
    pending: set[int] = field(default_factory=set)
    cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    last_seen: float = field(default_factory=time.monotonic)
    gone: Gone | None = None
    counted_tracks: int = 0  # this session's share of the active-tracks gauge
    generation: str = field(default_factory=new_generation)
    # what the store holds, as far as this process knows: the next write's expectation
    stored: Version = field(default_factory=lambda: Version("", ""))
    unpersisted: bool = False  # committed frames the store does not hold (it was down)
    reset_pending: bool = False  # the stored record was unusable: say so in the next result

    @property
    def num_tracks(self) -> int:
        return self.tracker.num_tracklets

    @property
    def version(self) -> Version:
        """This session's ``(generation, last_index)``."""
        return Version.of(self.generation, self.last_index)

    def to_record(self) -> StreamRecord:
        return StreamRecord(
            tracker=self.tracker_name,
            state=self.tracker.to_bytes(),
            last_index=self.last_index,
            model_version=self.model_version,
            id_offset=self.id_offset,
            ids_issued=self.id_offset + self.tracker.next_id,
            results=list(self.results.items()),
            created_at=self.created_at,
            generation=self.generation,
        )

    def load(self, record: StreamRecord) -> None:
        """Take over ``record``; ``ValueError`` (and nothing changed) if it is unusable."""
        if record.tracker not in TRACKERS:
            raise ValueError(f"unknown tracker {record.tracker!r} in stored state")
        try:
            self.tracker = TRACKERS[record.tracker].from_bytes(record.state)
        except Exception as exc:  # whatever the bytes make the decoder raise
            raise ValueError(f"tracker state does not load: {exc}") from exc
        self.tracker_name = record.tracker
        # a record older than generations gets one with this session's next write
        self.generation = record.generation or self.generation
        self.stored = record.version
        self.reset_pending = False
        self.last_index = record.last_index
        self.model_version = record.model_version
        self.id_offset = record.id_offset
        self.created_at = record.created_at
        self.results = dict(record.results)


@dataclass(frozen=True)
class FrameOutcome:
    """What the API returns for a frame: the result JSON and how it was obtained."""

    body: bytes
    replayed: bool
    timings_s: dict[str, float]


def _replayed(body: bytes) -> bytes:
    result = json.loads(body)
    result["replayed"] = True
    return json.dumps(result, separators=(",", ":")).encode()


def _result_json(
    session: StreamSession, index: int, version: str, reset: bool, tracks: Tracks
) -> bytes:
    boxes = np.round(tracks.boxes_xyxy.astype(np.float64), 2).tolist()
    scores = np.round(tracks.scores.astype(np.float64), 4).tolist()
    rows = [
        {"track_id": int(t) + session.id_offset, "box_xyxy": b, "score": s, "label": int(c)}
        for t, b, s, c in zip(tracks.track_ids, boxes, scores, tracks.labels, strict=True)
    ]
    result = {
        "stream_id": session.stream_id,
        "frame_index": index,
        "model_version": version,
        "replayed": False,
        "stream_reset": reset or session.reset_pending,
        "tracks": rows,
    }
    return json.dumps(result, separators=(",", ":")).encode()


class StreamManager:
    """All streams of one sidecar process.

    Args:
        settings: limits, TTL and tracker choice.
        store: where snapshots go (``RedisStore`` or ``MemoryStore``).
        detector: the Triton client.
        metrics: the app's metrics.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: StateStore,
        detector: Detector,
        metrics: SidecarMetrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.detector = detector
        self.metrics = metrics
        self._sessions: dict[str, StreamSession] = {}
        self._inflight = 0
        self.link = StoreLink(store, settings=settings, metrics=metrics)

    @property
    def num_streams(self) -> int:
        """Streams held in memory."""
        return len(self._sessions)

    # ------------------------------------------------------------ sessions
    @staticmethod
    def _new_session(stream_id: str) -> StreamSession:
        # Which tracker a stream needs is known only when a model version answers its
        # first frame (the version's serving contract); until then it holds a default one.
        settings = QuasiDenseTrackerSettings()
        return StreamSession(stream_id, settings.tracker_type, build_tracker(settings))

    def _count_tracks(self, session: StreamSession) -> None:
        """Move the active-tracks gauge by the session's change since the last count."""
        self.metrics.active_tracks.inc(session.num_tracks - session.counted_tracks)
        session.counted_tracks = session.num_tracks

    def _hold(self, session: StreamSession) -> StreamSession:
        """Keep a session in memory (unless another request put one there first)."""
        current = self._sessions.get(session.stream_id)
        if current is not None:
            return current
        self._sessions[session.stream_id] = session
        self.metrics.active_streams.set(len(self._sessions))
        self._count_tracks(session)
        return session

    def _drop(self, session: StreamSession, why: Gone) -> None:
        """Forget a session in memory; requests holding it will not commit."""
        session.gone = why
        self.link.forget(session)
        if self._sessions.get(session.stream_id) is session:
            del self._sessions[session.stream_id]
            self.metrics.active_streams.set(len(self._sessions))
            self.metrics.active_tracks.dec(session.counted_tracks)
            session.counted_tracks = 0

    def _check_capacity(self) -> None:
        if len(self._sessions) >= self.settings.max_streams:
            raise Overloaded(
                f"this sidecar holds {len(self._sessions)} streams, its limit; "
                "retry later or on another replica"
            )

    async def _restore(self, stream_id: str) -> StreamSession:
        loaded = await self.link.load(stream_id)
        if loaded is None:
            raise UnknownStream(
                f"stream {stream_id!r} is not open (never opened, closed or expired)"
            )
        current = self._sessions.get(stream_id)
        if current is not None:  # restored by a concurrent request meanwhile
            return current
        self._check_capacity()
        session = self._new_session(stream_id)
        self.link.apply(session, loaded)
        held = self._hold(session)
        if held is session:
            async with session.cond:
                await self._after_take_over(session)
        return held

    async def _after_take_over(self, session: StreamSession) -> None:
        """Count a restore, or write a reset (under the stream's lock)."""
        self._count_tracks(session)
        if not session.reset_pending:
            self.metrics.state_restores.inc()
        elif await self.link.persist(session) is SaveOutcome.CONFLICT:
            self._drop(session, Gone.EVICTED)  # reset elsewhere meanwhile: reload next time

    async def _take_over(self, session: StreamSession, loaded: Loaded | None) -> None:
        """Replace a held session's state with the stored one (closed: drop it)."""
        if loaded is None:
            self._drop(session, Gone.CLOSED)
            return
        if session.unpersisted:
            log.warning(
                "stream %s: frames up to %s committed while the store was down were "
                "overtaken by the stored state",
                session.stream_id,
                session.last_index,
            )
        self.link.apply(session, loaded)
        await self._after_take_over(session)

    async def _refresh(self, session: StreamSession) -> None:
        """Bring a held session in line with the store, under its lock.

        The store wins, except where it lost the record (written anew from memory) or
        misses frames committed during an outage (written back). A closed stream's session
        is dropped. While the store is unavailable the session stays as it is.
        """
        async with session.cond:
            if session.gone is not None or not self.link.available:
                return
            try:
                loaded = None if session.unpersisted else await self.link.load(session.stream_id)
                if loaded is None:  # lost, closed, or frames to write back
                    outcome = await self.link.persist(session)
                    if outcome is SaveOutcome.CLOSED:
                        self._drop(session, Gone.CLOSED)
                    if outcome is not SaveOutcome.CONFLICT:
                        return
                    loaded = await self.link.load(session.stream_id)
                if isinstance(loaded, StreamRecord) and loaded.version == session.stored:
                    return  # in line (and its TTL refreshed)
                await self._take_over(session, loaded)
            except StoreUnavailable:
                return  # served from memory meanwhile

    async def _session(self, stream_id: str) -> StreamSession:
        session = self._sessions.get(stream_id)
        if session is None:
            session = await self._restore(stream_id)
        session.last_seen = time.monotonic()
        return session

    async def _consulted(self, stream_id: str) -> StreamSession | None:
        """A held session after consulting the store; None if not held or found outdated."""
        session = self._sessions.get(stream_id)
        if session is None:
            return None
        await self._refresh(session)
        if session.gone is Gone.EVICTED:
            return None
        session.last_seen = time.monotonic()
        return session

    # ------------------------------------------------------------ open / close / info
    async def open(self, stream_id: str) -> tuple[StreamSession, bool]:
        """Open a stream (idempotent); returns the session and whether it was created."""
        held = await self._consulted(stream_id)
        if held is not None and held.gone is None:
            return held, False
        self._check_capacity()
        fresh = self._new_session(stream_id)
        ttl = self.settings.stream_ttl_s
        created = await self.link.call(lambda: self.store.create(stream_id, fresh.to_record(), ttl))
        if not created:
            return await self._session(stream_id), False
        fresh.stored = fresh.version
        held = self._hold(fresh)
        if held is fresh:
            self.metrics.streams_opened.inc()
        return held, held is fresh

    async def close(self, stream_id: str) -> None:
        """Close a stream and forget its state everywhere; ``UnknownStream`` if not open."""
        ttl = self.link.tombstone_ttl_s
        existed = await self.link.call(lambda: self.store.delete(stream_id, ttl))
        session = self._sessions.get(stream_id)
        if session is not None:
            self._drop(session, Gone.CLOSED)
            async with session.cond:
                session.cond.notify_all()
        if not existed and session is None:
            raise UnknownStream(f"stream {stream_id!r} is not open")
        self.metrics.streams_closed.inc()

    async def info(self, stream_id: str) -> StreamSession:
        """The session of an open stream, after consulting the store."""
        session = await self._consulted(stream_id)
        if session is not None and session.gone is Gone.CLOSED:
            raise UnknownStream(f"stream {stream_id!r} is not open (closed)")
        return session if session is not None else await self._session(stream_id)

    # ------------------------------------------------------------ expiry, store recovery
    def sweep(self, now: float | None = None) -> int:
        """Drop sessions idle for longer than the TTL from memory; returns how many.

        The store expires the same streams by itself (its key TTL is refreshed on every
        write, PUT and GET), so a stream idle for a TTL is gone everywhere.
        """
        now = time.monotonic() if now is None else now
        ttl = self.settings.stream_ttl_s
        idle = [s for s in self._sessions.values() if not s.pending and now - s.last_seen > ttl]
        for session in idle:
            self._drop(session, Gone.EVICTED)
        self.metrics.streams_expired.inc(len(idle))
        return len(idle)

    async def write_back(self) -> None:
        """Once the store answers, persist the streams that committed frames without it."""
        if not await self.link.probe():
            return
        for session in list(self.link.unpersisted):
            if not self.link.available:
                return
            await self._refresh(session)

    async def run_sweeper(self) -> None:
        """Sweep and write back every ``sweep_interval_s``, forever (a lifespan task)."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            self.sweep()
            await self.write_back()

    # ------------------------------------------------------------ frames
    async def push(
        self,
        stream_id: str,
        index: int,
        prepare: Callable[[], np.ndarray],
        *,
        in_thread: bool = True,
    ) -> FrameOutcome:
        """Track one frame of a stream.

        Args:
            stream_id: an open stream.
            index: the frame index; larger than the last committed one.
            prepare: decodes the body (the detector resizes it for the served model).
            in_thread: run ``prepare`` in a worker thread (large frames) instead of inline.

        Raises:
            SidecarError: a subclass for every refusal (see ``errors.py``).
        """
        if self._inflight >= self.settings.max_inflight_frames:
            raise Overloaded(f"{self._inflight} frames in flight, the limit; retry shortly")
        self._inflight += 1
        try:
            session = await self._session(stream_id)
            if session.gone is Gone.EVICTED:  # expired between lookup and lock: reload once
                session = await self._session(stream_id)
            return await self._push(session, index, prepare, in_thread)
        finally:
            self._inflight -= 1

    async def _push(
        self, session: StreamSession, index: int, prepare: Callable[[], np.ndarray], in_thread: bool
    ) -> FrameOutcome:
        async with session.cond:
            stored = await self._admit(session, index)
            if stored is not None:
                self.metrics.replays.inc()
                return FrameOutcome(_replayed(stored), True, {})
            session.pending.add(index)
        try:
            timings: dict[str, float] = {}
            start = time.perf_counter()
            image = await asyncio.to_thread(prepare) if in_thread else prepare()
            timings["decode"] = time.perf_counter() - start
            inference = await self.detector.detect(image)
            timings["inference"] = inference.seconds
            self.metrics.observe_model_version(inference.model_version, inference.quality)
            async with session.cond:
                await session.cond.wait_for(
                    lambda: session.gone is not None or min(session.pending) == index
                )
                return await self._commit(session, index, inference, timings)
        finally:
            async with session.cond:
                session.pending.discard(index)
                session.cond.notify_all()

    @staticmethod
    def _check_live(session: StreamSession) -> None:
        if session.gone is Gone.CLOSED:
            raise UnknownStream(f"stream {session.stream_id!r} was closed")
        if session.gone is Gone.EVICTED:
            raise StoreUnavailable(
                f"stream {session.stream_id!r} was reloaded meanwhile; retry the frame"
            )

    def _stored_or_refuse(self, session: StreamSession, index: int) -> bytes | None:
        """The stored result of a retried index; ``FrameOutOfOrder`` for an older one."""
        if index in session.results:
            return session.results[index]
        if session.last_index is not None and index <= session.last_index:
            raise FrameOutOfOrder(
                f"frame {index} of stream {session.stream_id!r} is not after the last "
                f"processed frame {session.last_index} (and its result is no longer kept)"
            )
        return None

    async def _admit(self, session: StreamSession, index: int) -> bytes | None:
        """Under the stream's lock: the stored result of a retried index, or None to go on."""
        while True:
            self._check_live(session)
            stored = self._stored_or_refuse(session, index)
            if stored is not None:
                return stored
            if index not in session.pending:
                break
            await session.cond.wait()  # the same index is in flight: wait for its result
        if len(session.pending) >= self.settings.max_pending_per_stream:
            raise StreamBusy(
                f"{len(session.pending)} frames of stream {session.stream_id!r} are in flight; "
                "send the next one after an answer"
            )
        return None

    async def _commit(
        self, session: StreamSession, index: int, inference: Inference, timings: dict[str, float]
    ) -> FrameOutcome:
        """Associate and persist under the stream's lock; redone after a replica conflict."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            self._check_live(session)
            stored = self._stored_or_refuse(session, index)  # may have moved in a reload
            if stored is not None:
                self.metrics.replays.inc()
                return FrameOutcome(_replayed(stored), True, timings)
            start = time.perf_counter()
            reset = session.model_version not in (None, inference.model_version)
            if session.model_version != inference.model_version:
                # A new model version (or the stream's first frame): its contract says
                # which tracker to run. Embeddings of other weights are not comparable, so
                # a stream that changes version starts afresh, ids above the old ones.
                session.id_offset += session.tracker.next_id
                settings = inference.contract.tracker_settings()
                session.tracker = build_tracker(settings)
                session.tracker_name = settings.tracker_type
            ids_before = session.tracker.next_id
            try:
                tracks = session.tracker.update(inference.detections, index)
            except ValueError as exc:  # e.g. an embedding width the memory does not have
                self._drop(session, Gone.EVICTED)
                log.warning(
                    "stream %s: detections do not fit its tracker: %s", session.stream_id, exc
                )
                raise TritonBadResponse(
                    "the model's detections do not fit the stream's tracker"
                ) from exc
            body = _result_json(session, index, inference.model_version, reset, tracks)
            session.last_index, session.model_version = index, inference.model_version
            session.results[index] = body
            while len(session.results) > self.settings.result_window:
                del session.results[next(iter(session.results))]
            persist_start = time.perf_counter()
            timings["association"] = persist_start - start
            outcome = await self._save(session)
            timings["persistence"] = time.perf_counter() - persist_start
            if outcome is SaveOutcome.SAVED:
                self.metrics.frames.inc()
                self.metrics.new_tracks.inc(session.tracker.next_id - ids_before)
                self._count_tracks(session)
                if reset:
                    self.metrics.state_resets.labels(reason="model_version").inc()
                return FrameOutcome(body, False, timings)
            await self._reload(session, outcome)
        raise FrameOutOfOrder(
            f"stream {session.stream_id!r} is being written by another replica; retry frame {index}"
        )

    async def _save(self, session: StreamSession) -> SaveOutcome:
        """Persist a committed frame: SAVED also while the store is down (kept unpersisted)."""
        outcome = await self.link.persist(session)
        if outcome in (None, SaveOutcome.SAVED, SaveOutcome.RECREATED):
            session.reset_pending = False
            return SaveOutcome.SAVED
        return outcome

    async def _reload(self, session: StreamSession, outcome: SaveOutcome | None) -> None:
        """Bring a session back to the stored state after a failed compare-and-set."""
        if outcome is SaveOutcome.CLOSED:
            self._drop(session, Gone.CLOSED)
            raise UnknownStream(f"stream {session.stream_id!r} was closed")
        try:
            loaded = await self.link.load(session.stream_id)
        except StoreUnavailable:
            self._drop(session, Gone.EVICTED)  # memory holds a frame nobody committed
            raise
        await self._take_over(session, loaded)
        if session.gone is Gone.CLOSED:
            raise UnknownStream(f"stream {session.stream_id!r} was closed or expired")
