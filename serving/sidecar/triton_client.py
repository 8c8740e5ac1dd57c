"""The sidecar's only link to the network: one Triton infer call per frame.

Speaks the tensor contract of ``qdtrack.export.contract`` over gRPC
(``tritonclient.grpc.aio``), with a per-call deadline and a bounded number of retries on
``UNAVAILABLE``. Outputs are un-padded with ``num_detections`` and boxes are scaled back
to original-frame pixels. ``model_version`` comes from each response, so the tracker
state can be tagged with the model that produced its embeddings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from qdtrack.export import contract
from qdtrack.export.runtime import unpack_detections
from qdtrack.structures import Detections
from serving.sidecar.errors import (
    SidecarError,
    TritonBadResponse,
    TritonTimeout,
    TritonUnavailable,
)
from serving.sidecar.frames import Frame
from serving.sidecar.metrics import SidecarMetrics

log = logging.getLogger(__name__)
OUTPUT_NAMES = tuple(spec.name for spec in contract.OUTPUTS)
#: Re-read the model config (version parameter) at least this often, and whenever the
#: version Triton reports in responses changes.
CONFIG_REFRESH_S = 5.0
T = TypeVar("T")
#: gRPC codes seen while Triton restarts or reloads the model: connection refused or reset
#: (UNAVAILABLE, CANCELLED), the model not loaded yet (NOT_FOUND), a call cut inside the
#: server (INTERNAL). Retried, then answered 503 + Retry-After: the client retries the frame.
_TRANSIENT = {
    "StatusCode.UNAVAILABLE": "unavailable",
    "StatusCode.NOT_FOUND": "unavailable",
    "StatusCode.CANCELLED": "unavailable",
    "StatusCode.INTERNAL": "internal",
}


@dataclass(frozen=True)
class Inference:
    """One frame's network output.

    Attributes:
        detections: original-frame boxes, scores, labels and (N, D) embeddings.
        model_version: Triton's version string of the model that answered.
        seconds: wall time of the Triton call(s), retries included.
    """

    detections: Detections
    model_version: str
    seconds: float


class Detector(Protocol):
    """What the sidecar needs from Triton (a fake implements it in the unit tests)."""

    async def detect(self, frame: Frame) -> Inference:
        """Detections and embeddings of one resized frame."""
        ...

    async def model_ready(self) -> bool:
        """True when the model can serve requests now."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def detections_from_outputs(outputs: dict[str, np.ndarray], scale_factor: np.ndarray) -> Detections:
    """Un-pad one frame's contract outputs, boxes back in original-frame pixels.

    ``qdtrack.export.runtime.unpack_detections`` with its errors turned into
    ``TritonBadResponse`` (a tensor missing or of the wrong shape breaks the contract).
    """
    try:
        return unpack_detections(outputs, scale_factor)
    except (KeyError, ValueError, IndexError) as exc:
        raise TritonBadResponse(f"Triton outputs break the tensor contract: {exc}") from exc


@dataclass(frozen=True)
class _ModelInfo:
    batched: bool  # max_batch_size > 0: the input needs a leading batch axis
    version_tag: str | None  # the config's qdtrack_model_version parameter
    triton_version: str | None  # the response version seen when this was read
    read_at: float


class TritonDetector:
    """``Detector`` over Triton's gRPC API.

    Args:
        url: gRPC ``host:port``.
        model_name: the model's name in the repository (the contract's ``qdtrack``).
        timeout_s: deadline of one infer call.
        retries: extra attempts after ``UNAVAILABLE`` (exponential back-off from 50 ms).
        metrics: where call latency and errors are counted.
    """

    def __init__(
        self,
        url: str,
        model_name: str = contract.MODEL_NAME,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        metrics: SidecarMetrics | None = None,
        backoff_s: float = 0.05,
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.metrics = metrics if metrics is not None else SidecarMetrics()
        self._client: grpcaio.InferenceServerClient | None = None
        self._info: _ModelInfo | None = None
        self._refresh: asyncio.Task[None] | None = None  # a background re-read in flight

    def _get_client(self) -> grpcaio.InferenceServerClient:
        # created lazily inside the running event loop (grpc.aio channels are loop-bound)
        if self._client is None:
            self._client = grpcaio.InferenceServerClient(self.url)
        return self._client

    async def model_ready(self) -> bool:
        """Triton's per-model readiness (false on any error)."""
        try:
            ready = await self._get_client().is_model_ready(
                self.model_name, client_timeout=min(self.timeout_s, 2.0)
            )
        except InferenceServerException:
            return False
        return bool(ready)

    async def _read_model_info(self, triton_version: str | None) -> _ModelInfo:
        reply: dict[str, Any] = await self._call(
            lambda: self._get_client().get_model_config(
                self.model_name, as_json=True, client_timeout=self.timeout_s
            )
        )
        config = reply.get("config", {})
        parameter = config.get("parameters", {}).get(contract.MODEL_VERSION_PARAMETER, {})
        self._info = _ModelInfo(
            batched=int(config.get("max_batch_size", 0)) > 0,
            version_tag=parameter.get("string_value") or None,
            triton_version=triton_version,
            read_at=time.monotonic(),
        )
        return self._info

    async def _refresh_in_background(self) -> None:
        try:
            info = self._info
            await self._read_model_info(info.triton_version if info else None)
        except SidecarError:
            pass  # the next frame's own call reports Triton's state
        finally:
            self._refresh = None

    async def _model_info(self, triton_version: str | None = None) -> _ModelInfo:
        """Batching and version tag from the model config.

        Read on the request path only the first time and when the version Triton reports
        changes; otherwise re-read in the background every ``CONFIG_REFRESH_S`` so that no
        frame waits for it.
        """
        info = self._info
        if info is None:
            return await self._read_model_info(triton_version)
        if triton_version is not None and triton_version != info.triton_version:
            return await self._read_model_info(triton_version)
        if time.monotonic() - info.read_at > CONFIG_REFRESH_S and self._refresh is None:
            self._refresh = asyncio.create_task(self._refresh_in_background())
        return info

    async def detect(self, frame: Frame) -> Inference:
        """Run the model on one resized frame.

        The version tag is the config's ``qdtrack_model_version`` (same weights, same tag,
        whatever the Triton version folder), or Triton's version number without it.
        """
        info = await self._model_info()
        image = frame.image[None] if info.batched else frame.image
        infer_input = grpcclient.InferInput(contract.INPUT_IMAGE.name, list(image.shape), "UINT8")
        infer_input.set_data_from_numpy(image)
        requested = [grpcclient.InferRequestedOutput(name) for name in OUTPUT_NAMES]
        start = time.perf_counter()
        result = await self._call(
            lambda: self._get_client().infer(
                self.model_name,
                [infer_input],
                outputs=requested,
                client_timeout=self.timeout_s,
            )
        )
        seconds = time.perf_counter() - start
        self.metrics.triton_latency.observe(seconds)
        outputs = {name: result.as_numpy(name) for name in OUTPUT_NAMES}
        try:
            if any(value is None for value in outputs.values()):
                missing = [name for name, value in outputs.items() if value is None]
                raise TritonBadResponse(f"Triton response lacks outputs {missing}")
            detections = detections_from_outputs(outputs, frame.scale_factor)
        except TritonBadResponse:
            self.metrics.triton_errors.labels(kind="bad_response").inc()
            raise
        triton_version = str(result.get_response().model_version)
        if info.triton_version != triton_version:
            info = await self._model_info(triton_version)
        return Inference(detections, info.version_tag or triton_version, seconds)

    async def _call(self, make_call: Callable[[], Awaitable[T]]) -> T:
        """Await ``make_call()`` with bounded retries on transient errors; map errors.

        Transient errors (:data:`_TRANSIENT`) end as ``TritonUnavailable`` (503), a deadline
        as ``TritonTimeout`` (504), anything else as ``TritonBadResponse`` (502). Triton's
        own message goes to the log, not into the answer.
        """
        for attempt in range(self.retries + 1):
            try:
                return await make_call()
            except InferenceServerException as exc:
                status = str(exc.status())
                if status == "StatusCode.DEADLINE_EXCEEDED":
                    self.metrics.triton_errors.labels(kind="timeout").inc()
                    raise TritonTimeout(f"Triton did not answer within {self.timeout_s} s") from exc
                if status in _TRANSIENT:
                    self.metrics.triton_errors.labels(kind=_TRANSIENT[status]).inc()
                    if attempt < self.retries:
                        await asyncio.sleep(self.backoff_s * 2**attempt)
                        continue
                    log.warning("Triton at %s: %s %s", self.url, status, exc.message())
                    raise TritonUnavailable(
                        f"Triton is unavailable ({status.removeprefix('StatusCode.')}); "
                        "retry the frame"
                    ) from exc
                self.metrics.triton_errors.labels(kind="other").inc()
                log.warning("Triton at %s refused a call: %s %s", self.url, status, exc.message())
                raise TritonBadResponse(
                    f"Triton refused the request ({status.removeprefix('StatusCode.')})"
                ) from exc
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the gRPC channel."""
        if self._refresh is not None:
            self._refresh.cancel()
        if self._client is not None:
            await self._client.close()
            self._client = None
