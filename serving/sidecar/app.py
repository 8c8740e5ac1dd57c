"""The sidecar's FastAPI application: ``create_app()`` and its error handling.

Run it with ``python -m serving.sidecar`` (settings from ``SIDECAR_*`` variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from serving.sidecar.errors import ClientDisconnected, SidecarError
from serving.sidecar.metrics import SidecarMetrics
from serving.sidecar.requests import RequestIdMiddleware, error_body, request_id
from serving.sidecar.routes import AUTH, api, probes
from serving.sidecar.settings import Settings
from serving.sidecar.state import MemoryStore, RedisStore, StateStore
from serving.sidecar.streams import StreamManager
from serving.sidecar.triton_client import Detector, TritonDetector

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
GIL_SWITCH_INTERVAL_S = 0.0005


def _is_frame_request(request: Request) -> bool:
    return request.method == "POST" and "/frames/" in request.url.path


def _count_rejected(request: Request, reason: str) -> None:
    if _is_frame_request(request):
        request.app.state.metrics.rejected.labels(reason=reason).inc()


def _error_response(request: Request, exc: SidecarError) -> JSONResponse:
    reason = exc.reason
    if isinstance(exc, ClientDisconnected):  # one line, no traceback: nobody reads the answer
        cut = request.scope.get("state", {}).get("cut")  # the body timeout closed it
        reason = "request_timeout" if cut else reason
        log.info(
            "%s %s: %s (request %s)",
            request.method,
            request.url.path,
            "body read timed out" if cut else "client disconnected",
            request_id(request.scope),
        )
    _count_rejected(request, reason)
    headers = {}
    if exc.retry_after:
        headers["Retry-After"] = str(request.app.state.settings.retry_after_s)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    body = error_body(request.scope, exc.reason, exc.detail)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _on_sidecar_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SidecarError)
    return _error_response(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    _count_rejected(request, "invalid_request")
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        for err in exc.errors()
    )
    body = error_body(request.scope, "invalid_request", problems)
    return JSONResponse(body, status_code=422)


#: Reasons of the HTTP errors the framework raises itself (unknown path, wrong method).
_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed"}


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    reason = _HTTP_REASONS.get(exc.status_code, "invalid_request")
    body = error_body(request.scope, reason, str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _on_unexpected_error(scope: MutableMapping[str, Any], exc: BaseException) -> None:
    """Count a bug's 500 (the middleware logs it once and answers)."""
    if scope.get("method") == "POST" and "/frames/" in scope.get("path", ""):
        scope["app"].state.metrics.rejected.labels(reason="internal").inc()


def create_app(
    settings: Settings | None = None,
    *,
    detector: Detector | None = None,
    store: StateStore | None = None,
) -> FastAPI:
    """Build the sidecar app.

    Args:
        settings: defaults to ``Settings()`` (the ``SIDECAR_*`` environment).
        detector: the Triton client; by default a gRPC ``TritonDetector`` on
            ``settings.triton_url``.
        store: the state store; by default Redis at ``settings.redis_url``, or process
            memory when that is unset.
    """
    settings = settings if settings is not None else Settings()
    if settings.require_auth and settings.auth_token is None:
        raise ValueError(
            "SIDECAR_REQUIRE_AUTH is set but SIDECAR_AUTH_TOKEN is not: give the sidecar a "
            "bearer token (at least 8 characters), e.g. from the Secret qdtrack-sidecar-auth"
        )
    metrics = SidecarMetrics()
    if settings.contract_overrides:
        log.warning(
            "OVERRIDE: SIDECAR_CONTRACT_OVERRIDES=%s replaces the served models' own serving "
            "contracts (experiments only)",
            json.dumps(settings.contract_overrides, sort_keys=True),
        )
    if settings.model_quality_file:
        with open(settings.model_quality_file, encoding="utf-8") as handle:
            metrics.load_model_quality(json.load(handle))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_detector = detector is None
        own_store = store is None
        the_detector: Detector = detector or TritonDetector(
            settings.triton_url,
            settings.model_name,
            timeout_s=settings.triton_timeout_s,
            retries=settings.triton_retries,
            metrics=metrics,
            contract_overrides=settings.contract_overrides,
            resize_thread_min_pixels=settings.decode_thread_min_pixels,
        )
        the_store: StateStore
        if store is not None:
            the_store = store
        elif settings.redis_url:
            the_store = RedisStore(
                settings.redis_url,
                prefix=settings.redis_prefix,
                timeout_s=settings.redis_timeout_s,
                retries=settings.redis_retries,
            )
        else:
            log.warning("SIDECAR_REDIS_URL is unset: stream state lives in memory only")
            the_store = MemoryStore()
        app.state.manager = StreamManager(
            settings=settings, store=the_store, detector=the_detector, metrics=metrics
        )
        sweeper = asyncio.create_task(app.state.manager.run_sweeper())
        # Move the ~10^5 objects of the imported libraries out of the collector's reach:
        # a full collection over them takes tens of ms, a latency spike at random frames.
        gc.collect()
        gc.freeze()
        # Decoding runs in worker threads; with the default 5 ms GIL switch interval a
        # thread finishing a decode can wait that long (twice) while the event loop runs.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if own_detector:
                await the_detector.close()
            if own_store:
                await the_store.close()

    app = FastAPI(
        title="qdtrack tracking sidecar",
        version=API_VERSION,
        description=(
            "Push the frames of a video stream, get stable track ids back. Detections and "
            "embeddings come from the `qdtrack` model in Triton; one QDTrack tracker per "
            "stream keeps its state in Redis, so a restarted sidecar continues every stream "
            "with the same ids."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_exception_handler(SidecarError, _on_sidecar_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_middleware(RequestIdMiddleware, on_error=_on_unexpected_error)
    app.include_router(api, dependencies=AUTH if settings.auth_token is not None else [])
    app.include_router(probes)
    return app
