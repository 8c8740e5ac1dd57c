"""Where per-stream tracker state lives between frames: Redis, or process memory.

A stream is one Redis hash (``<prefix><stream_id>``) with four fields:

- ``last_index``: the last committed frame index (``""`` before the first frame);
- ``state``: ``tracker.to_bytes()`` (npz, no pickle);
- ``meta``: JSON ``{"tracker", "model_version", "id_offset", "ids_issued", "created_at"}``;
- ``results``: JSON list of the most recent frame results (answers to retried indices).

Writes are compare-and-set on ``last_index`` in one Lua script, so two replicas that both
hold a stream cannot overwrite each other's frames: the loser reloads and re-associates.
Every write refreshes the key's TTL, so Redis expires idle streams by itself.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from serving.sidecar.errors import StoreUnavailable


@dataclass
class StreamRecord:
    """The persisted form of one stream.

    Attributes:
        tracker: tracker name (``qdtrack.trackers.TRACKERS`` key) that ``state`` belongs to.
        state: the tracker's ``to_bytes()``.
        last_index: last committed frame index, ``None`` before the first frame.
        model_version: version of the model whose embeddings the state holds.
        id_offset: added to the tracker's ids; grows at each model-version reset so ids
            stay unique within a stream.
        ids_issued: ``id_offset`` + the tracker's next id: where ids continue if ``state``
            ever has to be thrown away.
        results: recent ``(frame_index, result JSON)`` pairs, oldest first.
        created_at: Unix time the stream was opened.
    """

    tracker: str
    state: bytes
    last_index: int | None = None
    model_version: str | None = None
    id_offset: int = 0
    ids_issued: int = 0
    results: list[tuple[int, bytes]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    def meta_json(self) -> bytes:
        """The ``meta`` field."""
        meta = {
            "tracker": self.tracker,
            "model_version": self.model_version,
            "id_offset": self.id_offset,
            "ids_issued": self.ids_issued,
            "created_at": self.created_at,
        }
        return json.dumps(meta).encode()

    def results_json(self) -> bytes:
        """The ``results`` field (the stored result bytes joined, not re-encoded)."""
        return b"[" + b",".join(body for _, body in self.results) + b"]"

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> StreamRecord:
        """Inverse of the four hash fields; ``ValueError`` when they are not a record."""
        try:
            meta: dict[str, Any] = json.loads(fields[b"meta"])
            raw_results = json.loads(fields.get(b"results", b"[]"))
            last = fields[b"last_index"].decode()
            results = [
                (int(r["frame_index"]), json.dumps(r, separators=(",", ":")).encode())
                for r in raw_results
            ]
            return cls(
                tracker=str(meta["tracker"]),
                state=fields.get(b"state", b""),
                last_index=int(last) if last else None,
                model_version=meta.get("model_version"),
                id_offset=int(meta.get("id_offset", 0)),
                ids_issued=int(meta.get("ids_issued", 0)),
                results=results,
                created_at=float(meta.get("created_at", 0.0)),
            )
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"corrupt stream record: {exc}") from exc


class SaveOutcome(enum.Enum):
    """Result of a compare-and-set write."""

    SAVED = "saved"
    MISSING = "missing"  # the stream was closed or expired meanwhile
    CONFLICT = "conflict"  # another writer committed a frame first


class StateStore(Protocol):
    """Persistence of stream records (Redis in production, a dict in tests and dev)."""

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        """Store a new stream; False (and no write) if it exists."""
        ...

    async def load(self, stream_id: str) -> StreamRecord | None:
        """The stream's record, or None if unknown."""
        ...

    async def save(
        self, stream_id: str, record: StreamRecord, expected_last_index: int | None, ttl_s: float
    ) -> SaveOutcome:
        """Write ``record`` if the stored ``last_index`` still equals the expected one."""
        ...

    async def delete(self, stream_id: str) -> bool:
        """Remove a stream; False if it was unknown."""
        ...

    async def ping(self) -> bool:
        """True when the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _index_text(index: int | None) -> str:
    return "" if index is None else str(index)


class MemoryStore:
    """``StateStore`` in a dict: no persistence across restarts (development, unit tests).

    Two apps given the same instance behave like two replicas sharing one Redis.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[dict[bytes, bytes], float]] = {}

    def _live(self, stream_id: str) -> dict[bytes, bytes] | None:
        entry = self._data.get(stream_id)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._data[stream_id]
            return None
        return entry[0]

    @staticmethod
    def _fields(record: StreamRecord) -> dict[bytes, bytes]:
        return {
            b"last_index": _index_text(record.last_index).encode(),
            b"state": record.state,
            b"meta": record.meta_json(),
            b"results": record.results_json(),
        }

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        if self._live(stream_id) is not None:
            return False
        self._data[stream_id] = (self._fields(record), time.monotonic() + ttl_s)
        return True

    async def load(self, stream_id: str) -> StreamRecord | None:
        fields = self._live(stream_id)
        return None if fields is None else StreamRecord.from_fields(fields)

    async def save(
        self, stream_id: str, record: StreamRecord, expected_last_index: int | None, ttl_s: float
    ) -> SaveOutcome:
        fields = self._live(stream_id)
        if fields is None:
            return SaveOutcome.MISSING
        if fields[b"last_index"].decode() != _index_text(expected_last_index):
            return SaveOutcome.CONFLICT
        self._data[stream_id] = (self._fields(record), time.monotonic() + ttl_s)
        return SaveOutcome.SAVED

    async def delete(self, stream_id: str) -> bool:
        return self._data.pop(stream_id, None) is not None

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


# KEYS[1] = stream key; ARGV = ttl_ms, last_index, state, meta, results
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'last_index', ARGV[2], 'state', ARGV[3], 'meta', ARGV[4],
           'results', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
# ARGV = ttl_ms, expected_last_index, last_index, state, meta, results
_SAVE = """
local current = redis.call('HGET', KEYS[1], 'last_index')
if not current then return 0 end
if current ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'last_index', ARGV[3], 'state', ARGV[4], 'meta', ARGV[5],
           'results', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
_SAVE_OUTCOME = {1: SaveOutcome.SAVED, 0: SaveOutcome.MISSING, -1: SaveOutcome.CONFLICT}


class RedisStore:
    """``StateStore`` on Redis with timeouts and bounded retries.

    Args:
        url: ``redis://host:port/db``.
        prefix: key prefix; the stream id follows it.
        timeout_s: socket connect and read timeout.
        retries: extra attempts on connection errors and timeouts (exponential back-off).
            Writes are safe to retry: a replayed compare-and-set that already succeeded
            reports a conflict, and the caller then finds its own frame committed.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "qdtrack:stream:",
        timeout_s: float = 1.0,
        retries: int = 2,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
        )
        self._create = self._redis.register_script(_CREATE)
        self._save = self._redis.register_script(_SAVE)

    def _key(self, stream_id: str) -> str:
        return self.prefix + stream_id

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        args: list[bytes | str | int] = [
            int(ttl_s * 1000),
            _index_text(record.last_index),
            record.state,
            record.meta_json(),
            record.results_json(),
        ]
        try:
            return bool(await self._create(keys=[self._key(stream_id)], args=args))
        except RedisError as exc:
            raise StoreUnavailable(f"state store unavailable: {exc}") from exc

    async def load(self, stream_id: str) -> StreamRecord | None:
        try:
            fields: dict[bytes, bytes] = await self._redis.hgetall(self._key(stream_id))  # type: ignore[assignment]
        except RedisError as exc:
            raise StoreUnavailable(f"state store unavailable: {exc}") from exc
        return StreamRecord.from_fields(fields) if fields else None

    async def save(
        self, stream_id: str, record: StreamRecord, expected_last_index: int | None, ttl_s: float
    ) -> SaveOutcome:
        args: list[bytes | str | int] = [
            int(ttl_s * 1000),
            _index_text(expected_last_index),
            _index_text(record.last_index),
            record.state,
            record.meta_json(),
            record.results_json(),
        ]
        try:
            code = await self._save(keys=[self._key(stream_id)], args=args)
        except RedisError as exc:
            raise StoreUnavailable(f"state store unavailable: {exc}") from exc
        return _SAVE_OUTCOME[int(code)]

    async def delete(self, stream_id: str) -> bool:
        try:
            return bool(await self._redis.delete(self._key(stream_id)))
        except RedisError as exc:
            raise StoreUnavailable(f"state store unavailable: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
