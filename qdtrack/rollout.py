"""Make every Triton replica serve a published model version, and verify that it does.

``qdtrack deploy`` publishes ``<model>/<N>/`` into the shared model repository, then
:func:`roll_out` asks **each** replica (not the Service, which reaches one pod) to load the
model through Triton's HTTP model-control API, and checks that the replica then answers an
inference with version ``N``. Triton loads the new version beside the one it serves and
switches only once the new one is ready, so streams keep being served during the load.

A load may take minutes (the ORT TensorRT accelerator builds its engines first): a load
request that is still running when the client's request times out is *pending*, not
failed; the repository index says when it is ``READY`` or ``UNAVAILABLE`` (refused, with
Triton's reason). Only a refusal, a replica that never becomes live, or the deadline fails
a replica. :func:`restore` brings the replicas back to the previous version after a
rollback removed ``N`` from the repository.

Replicas come from a Service's EndpointSlices (:func:`replicas_from_endpoint_slices`, the
deployer's Role allows listing them) or from explicit URLs. The list is read again after
each round, so a pod that appeared during the deploy is brought to the version too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from qdtrack.export.contract import INPUT_IMAGE, OUTPUT_NUM_DETECTIONS

#: The HTTP header carrying the model-control key (``--http-restricted-api`` of the pods).
MODEL_CONTROL_HEADER = "qdtrack-model-control-key"
#: Where ``qdtrack deploy`` reads the key (the pipeline sets it from a Secret).
MODEL_CONTROL_KEY_ENV = "TRITON_MODEL_CONTROL_KEY"
#: Frame sent to verify a replica when the served config has no warm-up frame (h, w).
FALLBACK_FRAME_HW = (64, 64)
#: How long one load request waits before the load counts as pending (then polled).
LOAD_REQUEST_TIMEOUT_S = 30.0

READY, LOADING, REFUSED = "READY", "LOADING", "REFUSED"


class ModelControlError(RuntimeError):
    """A replica refused a model-control call or cannot be reached."""


@dataclass(frozen=True)
class Replica:
    """One Triton server: a name for messages (the pod) and its HTTP base URL."""

    name: str
    url: str


@dataclass(frozen=True)
class ReplicaOutcome:
    """What happened on one replica: ``ok`` and a one-line ``detail``."""

    replica: Replica
    ok: bool
    detail: str

    def line(self) -> str:
        where = self.replica.name
        if where != self.replica.url:
            where += f" ({self.replica.url})"
        return f"{where}: {self.detail}"


# ----------------------------------------------------------------------- discovery


def replicas_from_endpoint_slices(
    slices: Iterable[Mapping[str, Any]], port_name: str = "http"
) -> list[Replica]:
    """The replicas behind a Service, from its EndpointSlices (API JSON, camelCase).

    Every endpoint that is not terminating counts, ready or not: on a first install no pod
    is ready (its sidecar waits for a model), and those are exactly the pods to load.
    Addresses are deduplicated; the order is stable (by pod name, then address).
    """
    found: dict[str, Replica] = {}
    for piece in slices:
        ports = [p for p in piece.get("ports") or [] if p.get("name") == port_name]
        if not ports:
            continue
        port = int(ports[0]["port"])
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("terminating"):
                continue
            pod = (endpoint.get("targetRef") or {}).get("name")
            for address in endpoint.get("addresses") or []:
                host = f"[{address}]" if ":" in address else address
                url = f"http://{host}:{port}"
                found.setdefault(url, Replica(name=pod or address, url=url))
    return sorted(found.values(), key=lambda r: (r.name, r.url))


def parse_service(text: str) -> tuple[str, str]:
    """``NAMESPACE/SERVICE`` -> ``(namespace, service)`` (``ValueError`` otherwise)."""
    namespace, _, service = text.partition("/")
    if not namespace or not service or "/" in service:
        raise ValueError(f"--triton-service {text!r}: expected NAMESPACE/SERVICE")
    return namespace, service


def endpoint_slice_source(
    namespace: str, service: str, port_name: str = "http"
) -> Callable[[], list[Replica]]:
    """A function listing the Service's replicas (in-cluster credentials, or kubeconfig)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise ValueError(f"no Kubernetes credentials to list {service}'s pods: {exc}") from None
    api = client.DiscoveryV1Api()

    def replicas() -> list[Replica]:
        try:
            listed = api.list_namespaced_endpoint_slice(
                namespace, label_selector=f"kubernetes.io/service-name={service}"
            )
        except client.ApiException as exc:
            raise ModelControlError(
                f"cannot list the EndpointSlices of {namespace}/{service} "
                f"(HTTP {exc.status} {exc.reason}; the deployer's Role allows it)"
            ) from None
        items = api.api_client.sanitize_for_serialization(listed).get("items", [])
        return replicas_from_endpoint_slices(items, port_name)

    return replicas


def static_source(urls: Sequence[str]) -> Callable[[], list[Replica]]:
    """Replicas given as URLs (a local Triton, tests)."""
    replicas = [Replica(name=url, url=url.rstrip("/")) for url in urls]
    return lambda: list(replicas)


# ----------------------------------------------------------------------- one replica


def load_state(
    entry: tuple[str, str] | None, before: tuple[str, str] | None, seen_loading: bool
) -> tuple[str, str]:
    """Where a pending load of one version stands, from the repository index.

    ``entry`` is the version's ``(state, reason)`` now, ``before`` what the index said
    before the load was requested: Triton keeps the entry of an earlier failed attempt
    (a version number is reused after a rollback), so an ``UNAVAILABLE`` entry identical
    to the one before the request, with no ``LOADING`` seen since, is still pending.

    Returns:
        ``(READY | LOADING | REFUSED, reason)``.
    """
    if entry is None:
        return LOADING, ""
    state, reason = entry
    if state == "READY":
        return READY, ""
    if state == "UNAVAILABLE" and (seen_loading or entry != before):
        return REFUSED, reason or "UNAVAILABLE"
    return LOADING, state.lower()


class TritonReplica:
    """Triton's HTTP model-control and inference API on one replica."""

    def __init__(
        self, replica: Replica, *, key: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.replica = replica
        headers = {MODEL_CONTROL_HEADER: key} if key else {}
        self._client = httpx.Client(base_url=replica.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code != 200:
            raise ModelControlError(f"{what}: HTTP {response.status_code}: {_error_text(response)}")
        return response

    def live(self) -> bool:
        try:
            return self._client.get("/v2/health/live").status_code == 200
        except httpx.HTTPError:
            return False

    def index(self, model: str) -> dict[int, tuple[str, str]]:
        """``version -> (state, reason)`` of ``model`` in the repository index."""
        response = self._check(self._client.post("/v2/repository/index", json={}), "index")
        return {
            int(entry["version"]): (str(entry.get("state", "")), str(entry.get("reason", "")))
            for entry in response.json()
            if entry.get("name") == model and str(entry.get("version", "")).isdigit()
        }

    def request_load(self, model: str, timeout_s: float = LOAD_REQUEST_TIMEOUT_S) -> bool:
        """Ask for a (re)load: True when done, False when still running at ``timeout_s``.

        Raises:
            ModelControlError: Triton refused the load (its message included).
        """
        try:
            response = self._client.post(f"/v2/repository/models/{model}/load", timeout=timeout_s)
        except httpx.TimeoutException:
            return False
        self._check(response, f"load {model}")
        return True

    def unload(self, model: str) -> None:
        self._check(self._client.post(f"/v2/repository/models/{model}/unload"), "unload")

    def config(self, model: str) -> dict[str, Any]:
        response = self._client.get(f"/v2/models/{model}/config")
        return dict(self._check(response, f"config of {model}").json())

    def served_version(self, model: str) -> int:
        """The version that answers an inference of ``model`` (one zero frame).

        The frame has the size of the served config's warm-up frame (which every version
        ran before becoming ready), so it is a size the model accepts.
        """
        height, width = warmup_frame_hw(self.config(model))
        header = {
            "inputs": [
                {
                    "name": INPUT_IMAGE.name,
                    "shape": [height, width, 3],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": height * width * 3},
                }
            ],
            "outputs": [{"name": OUTPUT_NUM_DETECTIONS.name, "parameters": {"binary_data": False}}],
        }
        head = json.dumps(header).encode()
        response = self._client.post(
            f"/v2/models/{model}/infer",
            content=head + bytes(height * width * 3),
            headers={
                "Inference-Header-Content-Length": str(len(head)),
                "Content-Type": "application/octet-stream",
            },
        )
        answer = self._check(response, f"inference of {model}").json()
        return int(answer["model_version"])


def warmup_frame_hw(config: Mapping[str, Any]) -> tuple[int, int]:
    """(h, w) of the first warm-up frame of a served model config (JSON), or a fallback."""
    for warmup in config.get("model_warmup") or []:
        for tensor in (warmup.get("inputs") or {}).values():
            dims = [int(d) for d in tensor.get("dims") or []]
            if len(dims) == 3 and dims[2] == 3:
                return dims[0], dims[1]
    return FALLBACK_FRAME_HW


def _error_text(response: httpx.Response) -> str:
    """Triton's error message on one line (a python model's traceback included)."""
    try:
        text = str(response.json().get("error", response.text))
    except (json.JSONDecodeError, AttributeError):
        text = response.text
    return " ".join(text.split())[:500]


@dataclass(frozen=True)
class Timing:
    """How long to wait: ``deadline`` (monotonic seconds) and the polling period."""

    deadline: float
    poll_s: float = 2.0
    load_request_s: float = LOAD_REQUEST_TIMEOUT_S

    @classmethod
    def within(cls, seconds: float, poll_s: float = 2.0) -> Timing:
        return cls(deadline=time.monotonic() + seconds, poll_s=poll_s)

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _wait_live(triton: TritonReplica, timing: Timing) -> bool:
    while not triton.live():
        if timing.left() <= 0:
            return False
        time.sleep(min(timing.poll_s, max(timing.left(), 0.0)))
    return True


def _wait_loaded(triton: TritonReplica, model: str, version: int, timing: Timing) -> str:
    """Load ``version`` and wait for it: ``""`` when ready, else why it failed."""
    before = triton.index(model).get(version)
    try:
        if triton.request_load(model, min(timing.load_request_s, max(timing.left(), 1.0))):
            return ""
    except ModelControlError as exc:
        return f"refused: {exc}"
    seen_loading = False
    while timing.left() > 0:
        entry = triton.index(model).get(version)
        seen_loading = seen_loading or (entry is not None and entry[0] == LOADING)
        state, reason = load_state(entry, before, seen_loading)
        if state == READY:
            return ""
        if state == REFUSED:
            return f"refused: {reason.strip()}"
        time.sleep(min(timing.poll_s, max(timing.left(), 0.0)))
    return f"version {version} still loading at the deadline"


def bring_to_version(
    replica: Replica, model: str, version: int | None, *, key: str | None, timing: Timing
) -> ReplicaOutcome:
    """Make one replica serve ``version`` of ``model`` (``None``: serve no version).

    Waits until the replica is live, requests the load (or the unload), waits while it
    loads, then checks which version answers an inference.
    """
    triton = TritonReplica(replica, key=key)
    try:
        if not _wait_live(triton, timing):
            return ReplicaOutcome(replica, False, "never became live")
        if version is None:
            triton.unload(model)
            return ReplicaOutcome(replica, True, f"{model} unloaded")
        problem = _wait_loaded(triton, model, version, timing)
        if problem:
            return ReplicaOutcome(replica, False, problem)
        served = triton.served_version(model)
        if served != version:
            return ReplicaOutcome(replica, False, f"answers with version {served}, not {version}")
        return ReplicaOutcome(replica, True, f"serves {model} version {version}")
    except (ModelControlError, httpx.HTTPError, ValueError, KeyError) as exc:
        return ReplicaOutcome(replica, False, f"{type(exc).__name__}: {exc}")
    finally:
        triton.close()


def roll_out(
    source: Callable[[], list[Replica]],
    model: str,
    version: int | None,
    *,
    key: str | None,
    timing: Timing,
    rounds: int = 3,
) -> list[ReplicaOutcome]:
    """:func:`bring_to_version` on every replica, concurrently, until none is left.

    The replicas are listed again after each round: a pod that joined meanwhile (a scale
    up, a restarted pod) is handled in the next round. A failed replica is not retried.
    """
    outcomes: dict[str, ReplicaOutcome] = {}
    for round_ in range(rounds):
        try:
            listed = source()
        except ModelControlError:
            if round_ == 0:
                raise
            break  # the replicas handled so far stand; a later listing is a bonus
        todo = [r for r in listed if r.url not in outcomes]
        if not todo:
            break
        with ThreadPoolExecutor(max_workers=min(len(todo), 16)) as pool:
            done = pool.map(
                lambda r: bring_to_version(r, model, version, key=key, timing=timing), todo
            )
            outcomes.update((o.replica.url, o) for o in done)
    return list(outcomes.values())


def preflight(source: Callable[[], list[Replica]], model: str, key: str | None) -> list[Replica]:
    """The replicas to deploy to, checked before anything is published.

    Raises:
        ModelControlError: no replica, or a live replica rejects the model-control key
            (or cannot list its repository).
    """
    replicas = source()
    if not replicas:
        raise ModelControlError("no Triton replica found: nothing could serve the version")
    for replica in replicas:
        triton = TritonReplica(replica, key=key)
        try:
            if triton.live():
                triton.index(model)  # a restricted API: fails without the right key
        except ModelControlError as exc:
            raise ModelControlError(f"{replica.name}: {exc}") from None
        finally:
            triton.close()
    return replicas
