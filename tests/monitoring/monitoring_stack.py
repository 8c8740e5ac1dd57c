"""A real stack for the live dashboard test: PyTriton + Redis + two sidecars + Prometheus.

Two sidecar processes share one Redis, like two pods of the Deployment, and Prometheus gives
each target the ``namespace`` / ``pod`` labels Kubernetes service discovery would (Triton
shares pod ``serving-a`` with the first sidecar). Prometheus also loads the alert rules of
k8s/monitoring/prometheusrule.yaml, so their expressions are evaluated on real data too.
The services are started with the serving tests' own launcher (serving/launch.py).
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from promql_helpers import PROMETHEUS_RULE

from serving.launch import Service, free_port, http_ok, spawn

NAMESPACE = "qdtrack-test"
JPEG = {"Content-Type": "image/jpeg"}


def prometheus_config(targets: dict[str, tuple[str, str]], rules_file: Path) -> dict[str, Any]:
    """Scrape ``job -> [(address, pod)]`` every 0.5 s, labelled as service discovery would."""
    return {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    {"targets": [address], "labels": {"namespace": NAMESPACE, "pod": pod}}
                    for address, pod in pairs
                ],
            }
            for job, pairs in targets.items()
        ],
    }


def start_prometheus(log_dir: Path, targets: dict[str, Any], timeout_s: float = 15.0) -> Service:
    """Debian's ``prometheus`` with ``prometheus_config(targets)`` and the alert rules."""
    import shutil

    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("prometheus not found")
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=log_dir))
    rules = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))["spec"]
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rules))
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps(prometheus_config(targets, workdir / "rules.yaml")))
    port = free_port()
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
    argv += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    service = spawn(f"prometheus-{port}", argv, log_dir)
    service.ports["http"] = port
    service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout_s)
    return service


def api(prometheus: Service, path: str, **params: str) -> Any:
    """GET a Prometheus HTTP API path; the ``data`` of a successful answer."""
    url = f"http://127.0.0.1:{prometheus.ports['http']}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def wait_for_targets(prometheus: Service, count: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        targets = api(prometheus, "targets")["activeTargets"]
        if len(targets) == count and all(t["health"] == "up" for t in targets):
            return
        time.sleep(0.2)
    raise AssertionError(f"targets not up: {api(prometheus, 'targets')['activeTargets']}")


@dataclass
class Traffic:
    """What ``drive`` did, for the assertions."""

    start: float = 0.0
    end: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    moved: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # cam-1 as A, then B, saw it


def _post(client: httpx.Client, stream: str, index: int, body: bytes) -> int:
    return client.post(
        f"/v1/streams/{stream}/frames/{index}", content=body, headers=JPEG
    ).status_code


def drive(url_a: str, url_b: str, frames: list[bytes], seconds: float = 4.0) -> Traffic:
    """A closed stream and two streaming ones on sidecar A, refused frames of several kinds,
    a stream moving A -> B -> A (restores), and a stream left to expire on B."""
    traffic = Traffic(start=time.time())
    with (
        httpx.Client(base_url=url_a, timeout=30) as a,
        httpx.Client(base_url=url_b, timeout=30) as b,
    ):
        streams = ["cam-1", "cam-2"]
        for stream in [*streams, "cam-3"]:
            assert a.put(f"/v1/streams/{stream}").status_code == 201
        assert _post(a, "cam-3", 0, frames[0]) == 200
        traffic.statuses["closed"] = a.delete("/v1/streams/cam-3").status_code
        index = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or index < 4:  # frames across many scrapes
            for stream in streams:
                assert _post(a, stream, index, frames[index % len(frames)]) == 200
            index += 1
        statuses = traffic.statuses
        statuses["replay"] = _post(a, "cam-1", index - 1, frames[0])  # retried index: stored result
        statuses["empty_body"] = _post(a, "cam-1", index, b"")
        statuses["bad_image"] = _post(a, "cam-1", index, b"not a jpeg")
        statuses["unknown_stream"] = _post(a, "nobody", 0, frames[0])
        statuses["out_of_order"] = _post(a, "cam-2", 0, frames[0])
        # the ring moved cam-1 to B (scale-out, rollout): B restores it from Redis, with the
        # same last index, track memory and id counter as A had ...
        traffic.moved = (a.get("/v1/streams/cam-1").json(), b.get("/v1/streams/cam-1").json())
        for _ in range(3):
            statuses["moved_to_b"] = _post(b, "cam-1", index, frames[index % len(frames)])
            index += 1
        # ... and back to A, whose copy in memory is stale: reloaded from Redis
        statuses["back_to_a"] = _post(a, "cam-1", index, frames[index % len(frames)])
        assert b.put("/v1/streams/idle").status_code == 201  # expires on B after its TTL
    traffic.end = time.time()
    return traffic
