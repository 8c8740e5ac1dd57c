"""The stream manager's link to the state store: a breaker, compare-and-set writes, resets.

While the store fails, the link is *down*: streams held in memory keep committing frames
(marked unpersisted, counted by ``qdtrack_sidecar_unpersisted_streams``) and every other
store call fails fast with ``StoreUnavailable`` instead of waiting out its timeouts. The
manager's sweeper calls :meth:`StoreLink.probe` every ``sweep_interval_s``; once the store
answers, the unpersisted streams are written back (a lost key is re-created from memory).

A stored record that cannot be used (:class:`~serving.sidecar.state.CorruptRecord`, or a
tracker state that does not load) resets the stream: a new generation, a fresh tracker,
ids continuing above every id the record still shows, ``stream_reset: true`` in the next
answer, and ``qdtrack_sidecar_state_resets_total{reason="corrupt_<field>"}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from serving.sidecar.errors import StoreUnavailable
from serving.sidecar.metrics import SidecarMetrics
from serving.sidecar.settings import Settings
from serving.sidecar.state import (
    CorruptRecord,
    Salvage,
    SaveOutcome,
    StateStore,
    StreamRecord,
    new_generation,
)

if TYPE_CHECKING:
    from serving.sidecar.streams import StreamSession

log = logging.getLogger(__name__)
T = TypeVar("T")
Loaded = StreamRecord | CorruptRecord


class StoreLink:
    """The state store as the stream manager uses it.

    Args:
        store: Redis or memory.
        settings: the TTLs.
        metrics: store errors, availability, unpersisted streams, resets, re-creations.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        settings: Settings,
        metrics: SidecarMetrics,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self._down_since: float | None = None
        self.unpersisted: set[StreamSession] = set()

    @property
    def available(self) -> bool:
        """False from a failed store call until a probe succeeds."""
        return self._down_since is None

    @property
    def tombstone_ttl_s(self) -> float:
        """How long a closed stream's tombstone outlives it: past any memory copy's TTL."""
        return 2 * self.settings.stream_ttl_s

    # ------------------------------------------------------------ availability
    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one store call; fails fast while the store is down, marks it down on failure."""
        if self._down_since is not None:
            raise StoreUnavailable("the state store is unavailable; retry shortly")
        try:
            return await op()
        except StoreUnavailable as exc:
            self.metrics.store_errors.inc()
            if self._down_since is None:
                log.warning("%s: streams held here are served from memory", exc.detail)
                self._down_since = time.monotonic()
                self.metrics.store_available.set(0)
            raise

    async def probe(self) -> bool:
        """While down, ping the store; True when it is (again) available."""
        if self._down_since is None:
            return True
        if not await self.store.ping():
            return False
        log.info("state store available again after %.1f s", time.monotonic() - self._down_since)
        self._down_since = None
        self.metrics.store_available.set(1)
        return True

    # ------------------------------------------------------------ unpersisted streams
    def mark(self, session: StreamSession, unpersisted: bool) -> None:
        """Record whether ``session`` has frames the store does not hold."""
        session.unpersisted = unpersisted
        if unpersisted:
            self.unpersisted.add(session)
        else:
            self.unpersisted.discard(session)
        self.metrics.unpersisted_streams.set(len(self.unpersisted))

    def forget(self, session: StreamSession) -> None:
        """A session left memory: stop counting it."""
        if session.unpersisted:
            log.warning(
                "stream %s left memory with frames up to %s never persisted",
                session.stream_id,
                session.last_index,
            )
        self.mark(session, False)

    # ------------------------------------------------------------ reads
    async def load(self, stream_id: str) -> Loaded | None:
        """The stored record (TTL refreshed), its corruption, or None (unknown or closed)."""
        try:
            return await self.call(lambda: self.store.load(stream_id, self.settings.stream_ttl_s))
        except CorruptRecord as exc:
            return exc

    def apply(self, session: StreamSession, loaded: Loaded) -> None:
        """Take over a stored record into ``session``; an unusable one resets the stream."""
        if isinstance(loaded, StreamRecord):
            try:
                session.load(loaded)
            except ValueError as exc:
                salvage = Salvage(loaded.last_index, loaded.ids_issued)
                loaded = CorruptRecord("state", str(exc), loaded.version, salvage)
            else:
                self.mark(session, False)
                return
        self._reset(session, loaded)

    def _reset(self, session: StreamSession, corrupt: CorruptRecord) -> None:
        # ids never repeat: above every id the record shows and every id this process issued
        issued = max(corrupt.salvage.ids_issued, session.id_offset + session.tracker.next_id)
        log.warning(
            "stream %s: stored record unusable (%s); resetting it: fresh tracker, "
            "ids continue from %d",
            session.stream_id,
            corrupt,
            issued,
        )
        self.metrics.state_resets.labels(reason=corrupt.reason).inc()
        session.tracker.reset()
        session.generation = new_generation()
        session.last_index = corrupt.salvage.last_index
        session.model_version = None
        session.id_offset = issued
        session.results = {}
        session.stored = corrupt.raw  # the reset's write replaces exactly what was read
        session.reset_pending = True
        self.mark(session, False)

    # ------------------------------------------------------------ writes
    async def persist(self, session: StreamSession) -> SaveOutcome | None:
        """Compare-and-set ``session`` over what the store is known to hold.

        Returns:
            SAVED or RECREATED (the store had lost the key); CLOSED; CONFLICT (the store
            holds another state: another replica's frame, a reopen or a reset); None when
            the store is unavailable: the session stays in memory, marked unpersisted.
        """
        try:
            outcome = await self.call(lambda: self._save(session))
            if outcome is SaveOutcome.CONFLICT and session.unpersisted:
                outcome = await self.call(lambda: self._over_own_write(session))
        except StoreUnavailable:
            self.mark(session, True)
            return None
        if outcome in (SaveOutcome.SAVED, SaveOutcome.RECREATED):
            if outcome is SaveOutcome.RECREATED:
                self.metrics.records_recreated.inc()
                log.info(
                    "stream %s: the store had lost it; re-created from memory", session.stream_id
                )
            session.stored = session.version
            self.mark(session, False)
        return outcome

    async def _save(self, session: StreamSession) -> SaveOutcome:
        record, ttl = session.to_record(), self.settings.stream_ttl_s
        return await self.store.save(session.stream_id, record, session.stored, ttl)

    async def _over_own_write(self, session: StreamSession) -> SaveOutcome:
        """A write that timed out may have landed all the same: when the store holds this
        generation at an index this session committed since its last confirmed write,
        that was ours, and the session writes over it."""
        try:
            record = await self.store.load(session.stream_id, self.settings.stream_ttl_s)
        except CorruptRecord:
            return SaveOutcome.CONFLICT
        if record is None or record.generation != session.generation:
            return SaveOutcome.CONFLICT
        confirmed = int(session.stored.last_index or -1)
        last = -1 if session.last_index is None else session.last_index
        if record.last_index is None or not confirmed < record.last_index <= last:
            return SaveOutcome.CONFLICT
        session.stored = record.version
        return await self._save(session)
