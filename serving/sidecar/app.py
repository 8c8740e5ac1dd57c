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
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.sidecar.errors import SidecarError
from serving.sidecar.metrics import SidecarMetrics
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


def _error_response(request: Request, exc: SidecarError) -> JSONResponse:
    if _is_frame_request(request):
        request.app.state.metrics.rejected.labels(reason=exc.reason).inc()
    headers = {}
    if exc.retry_after:
        headers["Retry-After"] = str(request.app.state.settings.retry_after_s)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    body = {"error": exc.reason, "detail": exc.detail}
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _on_sidecar_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SidecarError)
    return _error_response(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _is_frame_request(request):
        request.app.state.metrics.rejected.labels(reason="invalid_request").inc()
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        for err in exc.errors()
    )
    return JSONResponse({"error": "invalid_request", "detail": problems}, status_code=422)


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    if _is_frame_request(request):
        request.app.state.metrics.rejected.labels(reason="internal").inc()
    body = {"error": "internal", "detail": f"{type(exc).__name__}: {exc}"}
    return JSONResponse(body, status_code=500)


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
    app.add_exception_handler(Exception, _on_unexpected_error)
    app.include_router(api, dependencies=AUTH if settings.auth_token is not None else [])
    app.include_router(probes)
    return app
