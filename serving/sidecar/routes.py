"""HTTP routes: the ``/v1`` stream API and the probes."""

from __future__ import annotations

import functools
import hmac
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BeforeValidator, Field, WithJsonSchema
from starlette.requests import ClientDisconnect

from serving.sidecar.errors import ClientDisconnected, EmptyBody, PayloadTooLarge, Unauthorized
from serving.sidecar.frames import (
    MEDIA_TYPES,
    RawShape,
    declared_pixels,
    decode_frame,
    media_type,
)
from serving.sidecar.schemas import ErrorOut, FrameResult, Health, Readiness, StreamInfo
from serving.sidecar.settings import Settings
from serving.sidecar.streams import StreamManager, StreamSession

STREAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_FRAME_INDEX = 2**53 - 1  # exact in JSON numbers
MAX_SIDE = 65535
_DECIMAL = re.compile(r"[0-9]{1,16}")
STAGES_IN_ORDER = ("receive", "decode", "inference", "association", "persistence", "total")

StreamId = Annotated[
    str,
    Path(
        pattern=STREAM_ID_PATTERN,
        description="letters, digits and . _ : - (≤ 128)",
        examples=["cam-1"],
    ),
]


def _decimal_digits(value: object) -> object:
    """Integers in paths and headers are decimal digits only: no sign, ``_`` or spaces."""
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("must be decimal digits only (at most 16)")
    return value


FrameIndex = Annotated[
    int,
    Path(description="decimal digits; increases strictly within a stream", examples=[0]),
    BeforeValidator(_decimal_digits),
    Field(ge=0, le=MAX_FRAME_INDEX),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_FRAME_INDEX}),
]
_SIDE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_SIDE}
FrameSide = Annotated[
    int | None,
    BeforeValidator(_decimal_digits),
    Field(ge=1, le=MAX_SIDE),
    WithJsonSchema({"anyOf": [_SIDE_SCHEMA, {"type": "null"}]}),
]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


# Dependencies are ``async def``: FastAPI runs plain ``def`` ones in a thread pool, a thread
# hop per request that costs milliseconds under load.
async def get_manager(request: Request) -> StreamManager:
    """The app's stream manager (created in the lifespan)."""
    manager: StreamManager = request.app.state.manager
    return manager


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


Manager = Annotated[StreamManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
_bearer = HTTPBearer(auto_error=False, description="required when SIDECAR_AUTH_TOKEN is set")


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Check ``Authorization: Bearer <token>`` when the sidecar has a token configured."""
    if settings.auth_token is None:
        return
    expected = settings.auth_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, expected):
        raise Unauthorized("missing or wrong bearer token")


#: The ``/v1`` API; ``create_app`` includes it with :func:`require_token` when a token is set,
#: so the published schema shows bearer auth exactly when it is enforced.
api = APIRouter(prefix="/v1")
AUTH = [Depends(require_token)]
probes = APIRouter()


def _info(session: StreamSession) -> StreamInfo:
    return StreamInfo(
        stream_id=session.stream_id,
        last_frame_index=session.last_index,
        model_version=session.model_version,
        active_tracks=session.num_tracks,
        next_track_id=session.id_offset + session.tracker.next_id,
        tracker=session.tracker_name if session.model_version is not None else None,
        generation=session.generation,
        persisted=not session.unpersisted,
    )


@api.put(
    "/streams/{stream_id}",
    response_model=StreamInfo,
    status_code=201,
    responses={200: {"model": StreamInfo, "description": "already open"}, **_errors(401, 422, 503)},
    summary="Open a stream (idempotent)",
)
async def open_stream(stream_id: StreamId, manager: Manager, response: Response) -> StreamInfo:
    """Open a stream: 201 when created, 200 when it was already open."""
    session, created = await manager.open(stream_id)
    response.status_code = 201 if created else 200
    return _info(session)


@api.get(
    "/streams/{stream_id}",
    response_model=StreamInfo,
    responses=_errors(401, 404, 422, 503),
    summary="State of a stream",
)
async def get_stream(stream_id: StreamId, manager: Manager) -> StreamInfo:
    """Last frame index, model version and track counts of an open stream."""
    return _info(await manager.info(stream_id))


@api.delete(
    "/streams/{stream_id}",
    status_code=204,
    responses=_errors(401, 404, 422, 503),
    summary="Close a stream",
)
async def close_stream(stream_id: StreamId, manager: Manager) -> Response:
    """Close a stream and delete its state (in memory and in the store)."""
    await manager.close(stream_id)
    return Response(status_code=204)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FRAME_BODY = {
    "requestBody": {
        "required": True,
        "description": "one frame: a JPEG or PNG image, or raw 8-bit pixels "
        "(height × width × 3, row-major) with X-Frame-Width and X-Frame-Height",
        "content": {kind: _BINARY for kind in MEDIA_TYPES},
    }
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise ClientDisconnected(f"the client left after {size} bytes of the body") from exc
    return b"".join(chunks)


@api.post(
    "/streams/{stream_id}/frames/{frame_index}",
    response_model=FrameResult,
    responses=_errors(400, 401, 404, 408, 409, 413, 415, 422, 429, 502, 503, 504),
    openapi_extra=_FRAME_BODY,
    summary="Track one frame",
)
async def push_frame(
    request: Request,
    stream_id: StreamId,
    frame_index: FrameIndex,
    manager: Manager,
    settings: SettingsDep,
    x_frame_width: Annotated[FrameSide, Header()] = None,
    x_frame_height: Annotated[FrameSide, Header()] = None,
    x_pixel_format: Annotated[str, Header(pattern="^(bgr24|rgb24)$")] = "bgr24",
) -> Response:
    """Track one frame of an open stream and return its tracks.

    A retried index that was already processed returns the stored result
    (``replayed: true``) without touching the tracker; an older index is refused (409).
    """
    start = time.perf_counter()
    kind = media_type(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    received = time.perf_counter()
    if not body:
        raise EmptyBody("the request body is empty; send one encoded image or raw pixels")
    raw = RawShape(x_frame_width, x_frame_height, x_pixel_format)
    prepare = functools.partial(decode_frame, body, kind, raw, settings.max_image_pixels)
    in_thread = declared_pixels(body, kind, raw) >= settings.decode_thread_min_pixels
    outcome = await manager.push(stream_id, frame_index, prepare, in_thread=in_thread)
    headers = {}
    if not outcome.replayed:
        timings = dict(outcome.timings_s, receive=received - start)
        timings["total"] = time.perf_counter() - start
        stage = manager.metrics.frame_latency
        for name, seconds in timings.items():
            stage.labels(stage=name).observe(seconds)
        headers["Server-Timing"] = ", ".join(
            f"{name};dur={timings[name] * 1e3:.3f}" for name in STAGES_IN_ORDER if name in timings
        )
    return Response(outcome.body, media_type="application/json", headers=headers)


@probes.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The process serves requests."""
    return Health(status="ok")


@probes.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready"}},
    summary="Readiness",
)
async def readyz(request: Request, manager: Manager, settings: SettingsDep) -> Response:
    """Ready when Triton reports the model ready: all this pod needs to serve its streams.

    The state store is shared by every pod: while it is down, pods serve the streams they
    hold from memory, so it does not take them out of the Service (``store_ok`` reports it).
    """
    state = request.app.state
    now = time.monotonic()
    cached: tuple[float, Readiness] | None = getattr(state, "readiness", None)
    if cached is None or now - cached[0] > settings.readiness_cache_s:
        triton_ok = await manager.detector.model_ready()
        store_ok = manager.link.available and await manager.store.ping()
        cached = (
            now,
            Readiness(ready=triton_ok, triton_model_ready=triton_ok, store_ok=store_ok),
        )
        state.readiness = cached
    readiness = cached[1]
    return Response(
        readiness.model_dump_json(),
        status_code=200 if readiness.ready else 503,
        media_type="application/json",
    )


@probes.get("/metrics", include_in_schema=False)
async def metrics(manager: Manager) -> Response:
    """Prometheus text exposition of the sidecar's own metrics."""
    return Response(generate_latest(manager.metrics.registry), media_type=CONTENT_TYPE_LATEST)
