"""Where per-stream tracker state lives between frames: Redis, or process memory.

A stream is one Redis hash (``<prefix><stream_id>``) with five fields:

- ``generation``: 32 hex digits drawn when the stream is opened (or reset); a stream that
  is closed and opened again, or reset after an unreadable record, gets a new one;
- ``last_index``: the last committed frame index (``""`` before the first frame);
- ``state``: ``tracker.to_bytes()`` (npz, no pickle);
- ``meta``: JSON ``{"tracker", "model_version", "id_offset", "ids_issued", "created_at"}``;
- ``results``: JSON list of the most recent frame results (answers to retried indices).

Every write is a compare-and-set on the pair ``(generation, last_index)`` in one Lua
script: a replica can only commit over exactly the state it loaded, never over a stream
that was closed, reopened or reset since. Closing leaves a tombstone (a hash holding only
``closed``) for ``tombstone_ttl_s``, so a replica that still holds the closed stream in
memory learns that it was closed instead of writing it back. A key that is missing
altogether (Redis restarted or evicted it) is written anew by the next save: the
sidecar holding the stream re-creates it. Every write, ``load`` and ``create`` refreshes
the key's TTL, so Redis expires idle streams by itself.

``StreamRecord.from_fields`` checks every field and raises :class:`CorruptRecord` naming
the first bad one, with what could still be read (:class:`Salvage`): the caller resets
the stream instead of failing on it again at every frame.
"""

from __future__ import annotations

import enum
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from serving.sidecar.errors import StoreUnavailable

T = TypeVar("T")
_GENERATION = re.compile(r"[0-9a-f]{32}")
_INDEX = re.compile(r"0|[1-9][0-9]{0,15}")  # canonical: str(int(text)) == text
_FIELDS = ("generation", "last_index", "state", "meta", "results")


def new_generation() -> str:
    """A fresh stream generation (uuid4 as 32 hex digits)."""
    return uuid.uuid4().hex


def index_text(index: int | None) -> str:
    """The ``last_index`` field of an index (``""`` before the first frame)."""
    return "" if index is None else str(index)


@dataclass(frozen=True)
class Version:
    """The stored ``(generation, last_index)`` fields as text: what a write expects to find.

    A record written before generations existed has none: its generation is ``""``.
    """

    generation: str
    last_index: str

    @classmethod
    def of(cls, generation: str, last_index: int | None) -> Version:
        return cls(generation, index_text(last_index))


@dataclass(frozen=True)
class Salvage:
    """What an unreadable record still tells: where ids and indices continue."""

    last_index: int | None = None
    ids_issued: int = 0


class CorruptRecord(ValueError):
    """A stored record that cannot be used; ``field`` names the first bad field."""

    def __init__(self, field_name: str, detail: str, raw: Version, salvage: Salvage) -> None:
        super().__init__(f"field {field_name!r}: {detail}")
        self.field = field_name
        self.raw = raw  # the stored generation and index, for the reset's compare-and-set
        self.salvage = salvage

    @property
    def reason(self) -> str:
        """The ``reason`` label of the resets counter, e.g. ``corrupt_meta``."""
        return f"corrupt_{self.field}"


@dataclass
class StreamRecord:
    """The persisted form of one stream.

    Attributes:
        tracker: tracker name (``qdtrack.trackers.TRACKERS`` key) that ``state`` belongs to.
        state: the tracker's ``to_bytes()``.
        last_index: last committed frame index, ``None`` before the first frame.
        model_version: version of the model whose embeddings the state holds.
        id_offset: added to the tracker's ids; grows at each reset so ids stay unique
            within a stream.
        ids_issued: ``id_offset`` + the tracker's next id: where ids continue if ``state``
            ever has to be thrown away.
        results: recent ``(frame_index, result JSON)`` pairs, oldest first.
        created_at: Unix time the stream was opened.
        generation: the stream's generation (``""`` for a record older than generations).
    """

    tracker: str
    state: bytes
    last_index: int | None = None
    model_version: str | None = None
    id_offset: int = 0
    ids_issued: int = 0
    results: list[tuple[int, bytes]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    generation: str = field(default_factory=new_generation)

    @property
    def version(self) -> Version:
        """The compare-and-set fields of this record."""
        return Version.of(self.generation, self.last_index)

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

    def fields(self) -> dict[str, bytes]:
        """The hash fields, in :data:`_FIELDS` order."""
        return {
            "generation": self.generation.encode(),
            "last_index": index_text(self.last_index).encode(),
            "state": self.state,
            "meta": self.meta_json(),
            "results": self.results_json(),
        }

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> StreamRecord:
        """Inverse of :meth:`fields`; :class:`CorruptRecord` names the first bad field."""
        raw = Version(
            fields.get(b"generation", b"").decode("utf-8", "replace"),
            fields.get(b"last_index", b"").decode("utf-8", "replace"),
        )
        problems: dict[str, str] = {}
        generation = raw.generation
        if b"generation" in fields and not _GENERATION.fullmatch(generation):
            problems["generation"] = "not 32 hex digits"
        last_index = _parse_index(fields, problems)
        meta = _parse_meta(fields, problems)
        results = _parse_results(fields, problems)
        if b"state" not in fields:
            problems["state"] = "missing"
        if problems:
            name = next(n for n in _FIELDS if n in problems)
            issued = [meta["ids_issued"] if meta else 0]
            issued += [_max_track_id(body) + 1 for _, body in results or []]
            salvage = Salvage(last_index, max(issued))
            raise CorruptRecord(name, problems[name], raw, salvage)
        assert meta is not None and results is not None
        return cls(
            tracker=meta["tracker"],
            state=fields[b"state"],
            last_index=last_index,
            model_version=meta["model_version"],
            id_offset=meta["id_offset"],
            ids_issued=meta["ids_issued"],
            results=results,
            created_at=meta["created_at"],
            generation=generation,
        )


def _parse_index(fields: dict[bytes, bytes], problems: dict[str, str]) -> int | None:
    raw = fields.get(b"last_index")
    if raw is None:
        problems["last_index"] = "missing"
        return None
    text = raw.decode("ascii", "replace")
    if text == "":
        return None
    if not _INDEX.fullmatch(text):
        problems["last_index"] = f"{text[:20]!r} is not a frame index"
        return None
    return int(text)


def _parse_meta(fields: dict[bytes, bytes], problems: dict[str, str]) -> dict[str, Any] | None:
    try:
        meta = json.loads(fields[b"meta"])
        version = meta.get("model_version")
        parsed = {
            "tracker": meta["tracker"],
            "model_version": version,
            "id_offset": meta.get("id_offset", 0),
            "ids_issued": meta.get("ids_issued", 0),
            "created_at": float(meta.get("created_at", 0.0)),
        }
        ok = isinstance(parsed["tracker"], str) and isinstance(version, str | None)
        ok = ok and all(_count(parsed[k]) for k in ("id_offset", "ids_issued"))
        if not ok:
            raise ValueError("a value has the wrong type")
    except KeyError as exc:
        problems["meta"] = f"missing {exc}"
        return None
    except (AttributeError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        problems["meta"] = str(exc)[:200]
        return None
    return parsed


def _parse_results(
    fields: dict[bytes, bytes], problems: dict[str, str]
) -> list[tuple[int, bytes]] | None:
    try:
        rows = json.loads(fields.get(b"results", b"[]"))
        if not isinstance(rows, list):
            raise ValueError("not a list")
        results = []
        for row in rows:
            if not (isinstance(row, dict) and _count(row.get("frame_index"))):
                raise ValueError("an entry without a frame_index")
            if not isinstance(row.get("tracks"), list):
                raise ValueError("an entry without tracks")
            results.append((row["frame_index"], json.dumps(row, separators=(",", ":")).encode()))
    except ValueError as exc:
        problems["results"] = str(exc)[:200]
        return None
    return results


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _max_track_id(body: bytes) -> int:
    tracks = json.loads(body)["tracks"]
    ids: list[Any] = [t.get("track_id") for t in tracks if isinstance(t, dict)]
    return max((i for i in ids if _count(i)), default=-1)


class SaveOutcome(enum.Enum):
    """Result of a compare-and-set write."""

    SAVED = "saved"
    RECREATED = "recreated"  # the key was gone (Redis restarted, evicted it): written anew
    CLOSED = "closed"  # the stream was closed meanwhile (a tombstone)
    CONFLICT = "conflict"  # another writer committed, or the stream was reopened or reset


class StateStore(Protocol):
    """Persistence of stream records (Redis in production, a dict in tests and dev)."""

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        """Store a new stream unless a live one exists (a closed one is replaced)."""
        ...

    async def load(self, stream_id: str, ttl_s: float) -> StreamRecord | None:
        """The stream's record (its TTL refreshed), or None if unknown or closed.

        Raises:
            CorruptRecord: the stored fields are not a record.
        """
        ...

    async def save(
        self, stream_id: str, record: StreamRecord, expected: Version, ttl_s: float
    ) -> SaveOutcome:
        """Write ``record`` if the stored generation and index still equal ``expected``."""
        ...

    async def delete(self, stream_id: str, tombstone_ttl_s: float) -> bool:
        """Close a stream (leave a tombstone); False if no live stream was stored."""
        ...

    async def ping(self) -> bool:
        """True when the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """``StateStore`` in a dict: no persistence across restarts (development, unit tests).

    Two apps given the same instance behave like two replicas sharing one Redis.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[dict[bytes, bytes], float]] = {}

    def _get(self, stream_id: str) -> dict[bytes, bytes] | None:
        entry = self._data.get(stream_id)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._data[stream_id]
            return None
        return entry[0]

    def _put(self, stream_id: str, fields: dict[bytes, bytes], ttl_s: float) -> None:
        self._data[stream_id] = (fields, time.monotonic() + ttl_s)

    @staticmethod
    def _encode(record: StreamRecord) -> dict[bytes, bytes]:
        return {name.encode(): value for name, value in record.fields().items()}

    def raw(self, stream_id: str) -> dict[bytes, bytes] | None:
        """The stored fields as they are (tests corrupt them through this)."""
        return self._get(stream_id)

    def forget(self, stream_id: str) -> None:
        """Lose a key without a tombstone, as a restarted Redis does."""
        self._data.pop(stream_id, None)

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        fields = self._get(stream_id)
        if fields is not None and b"closed" not in fields:
            return False
        self._put(stream_id, self._encode(record), ttl_s)
        return True

    async def load(self, stream_id: str, ttl_s: float) -> StreamRecord | None:
        fields = self._get(stream_id)
        if fields is None or b"closed" in fields:
            return None
        self._put(stream_id, fields, ttl_s)
        return StreamRecord.from_fields(fields)

    async def save(
        self, stream_id: str, record: StreamRecord, expected: Version, ttl_s: float
    ) -> SaveOutcome:
        fields = self._get(stream_id)
        if fields is None:
            self._put(stream_id, self._encode(record), ttl_s)
            return SaveOutcome.RECREATED
        if b"closed" in fields:
            return SaveOutcome.CLOSED
        stored = (fields.get(b"generation", b""), fields.get(b"last_index", b""))
        if stored != (expected.generation.encode(), expected.last_index.encode()):
            return SaveOutcome.CONFLICT
        self._put(stream_id, self._encode(record), ttl_s)
        return SaveOutcome.SAVED

    async def delete(self, stream_id: str, tombstone_ttl_s: float) -> bool:
        fields = self._get(stream_id)
        self._put(stream_id, {b"closed": b"1"}, tombstone_ttl_s)
        return fields is not None and b"closed" not in fields

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


# KEYS[1] = stream key. A record's fields are ARGV[n..n+4] in _FIELDS order.
_WRITE = """
local function write(key, ttl, first, clear)
  if clear then redis.call('DEL', key) end  -- a new record: no field of a tombstone left
  redis.call('HSET', key, 'generation', ARGV[first], 'last_index', ARGV[first + 1],
             'state', ARGV[first + 2], 'meta', ARGV[first + 3], 'results', ARGV[first + 4])
  redis.call('PEXPIRE', key, ttl)
end
local function live(key)
  return redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'closed') == 0
end
"""
# ARGV = ttl_ms, record fields
_CREATE = (
    _WRITE
    + """
if live(KEYS[1]) then return 0 end
write(KEYS[1], ARGV[1], 2, true)
return 1
"""
)
# ARGV = ttl_ms, expected generation, expected last_index, record fields
_SAVE = (
    _WRITE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then write(KEYS[1], ARGV[1], 4, true) return 2 end
if redis.call('HEXISTS', KEYS[1], 'closed') == 1 then return 0 end
local generation = redis.call('HGET', KEYS[1], 'generation') or ''
local last_index = redis.call('HGET', KEYS[1], 'last_index') or ''
if generation ~= ARGV[2] or last_index ~= ARGV[3] then return -1 end
write(KEYS[1], ARGV[1], 4, false)
return 1
"""
)
# ARGV = ttl_ms: every field, the TTL of a live record refreshed
_LOAD = (
    _WRITE
    + """
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 and live(KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return fields
"""
)
# ARGV = tombstone ttl_ms
_DELETE = (
    _WRITE
    + """
local existed = live(KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'closed', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if existed then return 1 end
return 0
"""
)
_SAVE_OUTCOME = {
    1: SaveOutcome.SAVED,
    2: SaveOutcome.RECREATED,
    0: SaveOutcome.CLOSED,
    -1: SaveOutcome.CONFLICT,
}


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


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
        self._load = self._redis.register_script(_LOAD)
        self._delete = self._redis.register_script(_DELETE)

    def _key(self, stream_id: str) -> str:
        return self.prefix + stream_id

    @staticmethod
    async def _call(call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except RedisError as exc:
            raise StoreUnavailable(f"state store unavailable: {type(exc).__name__}") from exc

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        args: list[bytes | str | int] = [_ms(ttl_s), *record.fields().values()]
        return bool(await self._call(lambda: self._create(keys=[self._key(stream_id)], args=args)))

    async def load(self, stream_id: str, ttl_s: float) -> StreamRecord | None:
        flat = await self._call(lambda: self._load(keys=[self._key(stream_id)], args=[_ms(ttl_s)]))
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        if not fields or b"closed" in fields:
            return None
        return StreamRecord.from_fields(fields)

    async def save(
        self, stream_id: str, record: StreamRecord, expected: Version, ttl_s: float
    ) -> SaveOutcome:
        args: list[bytes | str | int] = [_ms(ttl_s), expected.generation, expected.last_index]
        args += record.fields().values()
        code = await self._call(lambda: self._save(keys=[self._key(stream_id)], args=args))
        return _SAVE_OUTCOME[int(code)]

    async def delete(self, stream_id: str, tombstone_ttl_s: float) -> bool:
        key, args = self._key(stream_id), [_ms(tombstone_ttl_s)]
        return bool(await self._call(lambda: self._delete(keys=[key], args=args)))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
