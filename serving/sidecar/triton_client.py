"""The sidecar's only link to the network: one Triton infer call per frame.

Speaks the tensor contract of ``qdtrack.export.contract`` over gRPC
(``tritonclient.grpc.aio``), with a per-call deadline and a bounded number of retries on
``UNAVAILABLE``. Outputs are un-padded with ``num_detections`` and boxes are scaled back
to original-frame pixels.

How to use the model comes from the model itself: ``qdtrack export`` and ``qdtrack
deploy`` write each version's serving contract (resize rule, class names, tracker type
and settings, model version) into the model config's parameters. The detector resizes a
frame with the contract of the version it expects, and then takes the contract of the
version that actually answered (from the response, not the model-level config): a
replica that still serves an older version is tracked with that version's settings. When
the two resize rules differ (the first frame after a rollout), the frame is resized again
and sent to exactly that version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from qdtrack.export import contract
from qdtrack.export.runtime import unpack_detections
from qdtrack.export.serving_contract import (
    ServingContract,
    contracts_from_parameters,
    quality_from_parameters,
)
from qdtrack.structures import Detections
from serving.sidecar.errors import (
    ContractMissing,
    SidecarError,
    TritonBadResponse,
    TritonTimeout,
    TritonUnavailable,
)
from serving.sidecar.frames import Frame, resize_for_model
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
        model_version: the weights' identity of the version that answered (its contract's
            ``model_version``); tracker state is tagged with it.
        seconds: wall time of the Triton call(s), retries included.
        contract: the serving contract of the version that answered (its tracker and
            resize rule).
        quality: the metrics that version was deployed with (``qdtrack deploy``), empty
            when it was not deployed by it.
    """

    detections: Detections
    model_version: str
    seconds: float
    contract: ServingContract
    quality: Mapping[str, float] = field(default_factory=dict)


class Detector(Protocol):
    """What the sidecar needs from Triton (a fake implements it in the unit tests)."""

    async def detect(self, image: np.ndarray) -> Inference:
        """Detections and embeddings of one decoded full-resolution (h, w, 3) BGR frame."""
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
        log.warning("Triton outputs break the tensor contract: %s", exc)
        raise TritonBadResponse("Triton's outputs break the tensor contract") from exc


@dataclass(frozen=True)
class _ModelInfo:
    batched: bool  # max_batch_size > 0: the input needs a leading batch axis
    contracts: dict[int, ServingContract]  # by Triton version, overrides applied
    quality: dict[int, dict[str, float]]  # deployed metrics by Triton version
    triton_version: str | None  # the response version seen when this was read
    read_at: float

    def expected_version(self) -> int | None:
        """The version the next request will most likely reach: the last seen, or newest."""
        if self.triton_version is not None and self.triton_version.isdigit():
            return int(self.triton_version)
        return max(self.contracts, default=None)


class TritonDetector:
    """``Detector`` over Triton's gRPC API.

    Args:
        url: gRPC ``host:port``.
        model_name: the model's name in the repository (the contract's ``qdtrack``).
        timeout_s: deadline of one infer call.
        retries: extra attempts after ``UNAVAILABLE`` (exponential back-off from 50 ms).
        metrics: where call latency and errors are counted.
        contract_overrides: fields of every served contract to replace (experiments
            only: the model is then tracked with other settings than it was exported
            with; logged as a warning for every version it is applied to).
        resize_thread_min_pixels: frames with at least this many pixels are resized in a
            worker thread (OpenCV releases the GIL), smaller ones inline.
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
        contract_overrides: Mapping[str, Any] | None = None,
        resize_thread_min_pixels: int = 1280 * 720,
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.metrics = metrics if metrics is not None else SidecarMetrics()
        self.contract_overrides = dict(contract_overrides or {})
        self.resize_thread_min_pixels = resize_thread_min_pixels
        self._client: grpcaio.InferenceServerClient | None = None
        self._info: _ModelInfo | None = None
        self._refresh: asyncio.Task[None] | None = None  # a background re-read in flight
        self._overridden: set[str] = set()  # model versions the override warning named

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

    def _with_overrides(self, version: int, served: ServingContract) -> ServingContract:
        if not self.contract_overrides:
            return served
        try:
            changed = served.with_overrides(self.contract_overrides)
        except ValueError as exc:
            raise ContractMissing(
                f"SIDECAR_CONTRACT_OVERRIDES do not apply to version {version}: {exc}"
            ) from exc
        if served.model_version not in self._overridden:
            self._overridden.add(served.model_version)
            log.warning(
                "OVERRIDE: model %s version %d (%s) is tracked with SIDECAR_CONTRACT_OVERRIDES "
                "%s instead of its exported contract; its results are not those the model "
                "was evaluated with",
                self.model_name,
                version,
                served.model_version,
                json.dumps(self.contract_overrides, sort_keys=True),
            )
        return changed

    async def _read_model_info(self, triton_version: str | None) -> _ModelInfo:
        reply: dict[str, Any] = await self._call(
            lambda: self._get_client().get_model_config(
                self.model_name, as_json=True, client_timeout=self.timeout_s
            )
        )
        config = reply.get("config", {})
        parameters = {
            key: value.get("string_value", "")
            for key, value in config.get("parameters", {}).items()
            if isinstance(value, dict)
        }
        try:
            contracts = contracts_from_parameters(parameters)
        except ValueError as exc:
            self.metrics.triton_errors.labels(kind="bad_response").inc()
            raise ContractMissing(f"model {self.model_name!r}: {exc}") from exc
        self._info = _ModelInfo(
            batched=int(config.get("max_batch_size", 0)) > 0,
            contracts={v: self._with_overrides(v, c) for v, c in contracts.items()},
            quality=quality_from_parameters(parameters),
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
        """Batching and contracts from the model config.

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

    async def _contract(self, version: int | None) -> tuple[_ModelInfo, ServingContract]:
        """The contract of ``version`` (re-reading the config once if it is not known yet)."""
        info = await self._model_info()
        if version is None:
            version = info.expected_version()
        if version is not None and version not in info.contracts:
            info = await self._read_model_info(info.triton_version)
        if version is None or version not in info.contracts:
            self.metrics.triton_errors.labels(kind="bad_response").inc()
            which = "any version" if version is None else f"version {version}"
            raise ContractMissing(
                f"the config of model {self.model_name!r} has no serving contract for "
                f"{which}; export and deploy it with qdtrack export / qdtrack deploy"
            )
        return info, info.contracts[version]

    async def _resize(self, image: np.ndarray, img_scale: tuple[int, int]) -> Frame:
        if image.shape[0] * image.shape[1] >= self.resize_thread_min_pixels:
            return await asyncio.to_thread(resize_for_model, image, img_scale)
        return resize_for_model(image, img_scale)

    async def _infer(self, frame: Frame, batched: bool, version: int | None) -> Any:
        pixels = frame.image[None] if batched else frame.image
        infer_input = grpcclient.InferInput(contract.INPUT_IMAGE.name, list(pixels.shape), "UINT8")
        infer_input.set_data_from_numpy(pixels)
        requested = [grpcclient.InferRequestedOutput(name) for name in OUTPUT_NAMES]
        return await self._call(
            lambda: self._get_client().infer(
                self.model_name,
                [infer_input],
                model_version="" if version is None else str(version),
                outputs=requested,
                client_timeout=self.timeout_s,
            )
        )

    async def detect(self, image: np.ndarray) -> Inference:
        """Run the model on one decoded frame, resized with the serving version's contract."""
        info, expected = await self._contract(None)
        frame = await self._resize(image, expected.img_scale)
        start = time.perf_counter()
        result = await self._infer(frame, info.batched, None)
        triton_version = str(result.get_response().model_version)
        served_version = int(triton_version) if triton_version.isdigit() else None
        if triton_version != info.triton_version:
            await self._model_info(triton_version)
        info, served = await self._contract(served_version)
        if served.img_scale != expected.img_scale:  # that version was trained at another size
            frame = await self._resize(image, served.img_scale)
            result = await self._infer(frame, info.batched, served_version)
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
        quality = info.quality.get(served_version, {}) if served_version is not None else {}
        return Inference(detections, served.model_version, seconds, served, quality)

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
