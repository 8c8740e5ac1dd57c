"""Fixtures of the monitoring tests: the live stack the dashboards' queries run against."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qdtrack.deploy import publish_version
from qdtrack.gate import decide

SERVING_TESTS = Path(__file__).resolve().parents[1] / "serving"
# Metrics recorded for the deployed test model (the figures of `make run`).
DEPLOYED_QUALITY = {"HOTA": 45.43, "DetA": 63.52, "AssA": 32.59, "MOTA": 69.48, "IDF1": 48.43}


@pytest.fixture(scope="module")
def live_stack(
    tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """PyTriton serving the tiny export, Redis, sidecars A and B, Prometheus scraping all,
    and traffic that touches every sidecar metric. Skips when a service is not installed."""
    for binary in ("redis-server", "prometheus"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not installed (make setup-serving)")
    sys.path.insert(0, str(SERVING_TESTS))  # the serving tests' helpers (tiny export, env)
    try:
        from stack_helpers import export_tiny, require_triton_venv, sidecar_env
    finally:
        sys.path.remove(str(SERVING_TESTS))
    require_triton_venv()
    from monitoring_stack import drive, start_prometheus, wait_for_targets

    from serving.launch import start_pytriton, start_redis, start_sidecar

    logs = tmp_path_factory.mktemp("monitoring-logs")
    exported = export_tiny(
        tiny_workspace, tmp_path_factory.mktemp("monitoring-export"), seed=0, version=1
    )
    # Served the way production is: published by the real gate + deploy, so the model
    # repository holds champion.json and the sidecar exports the model-quality gauges.
    repository = tmp_path_factory.mktemp("monitoring-served")
    decision = decide(DEPLOYED_QUALITY, champion=None, gate="HOTA>=0", max_drop=None)
    publish_version(exported, repository, metrics=DEPLOYED_QUALITY, decision=decision)
    env = sidecar_env(repository, stream_ttl_s=2, sweep_interval_s=0.5, readiness_cache_s=0)
    services = []
    try:
        redis = start_redis(logs)
        services.append(redis)
        triton = start_pytriton(repository, logs)
        services.append(triton)
        sidecars = []
        for _ in range(2):
            sidecar = start_sidecar(
                logs,
                triton_grpc_port=triton.ports["grpc"],
                redis_port=redis.ports["redis"],
                env=env,
            )
            services.append(sidecar)
            sidecars.append(sidecar)
        address = "127.0.0.1:{}".format
        prometheus = start_prometheus(
            logs,
            {
                "qdtrack-sidecar": [
                    (address(sidecars[0].ports["http"]), "serving-a"),
                    (address(sidecars[1].ports["http"]), "serving-b"),
                ],
                "triton": [(address(triton.ports["metrics"]), "serving-a")],
            },
        )
        services.append(prometheus)
        wait_for_targets(prometheus, 3)
        sequence = next(
            p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir()
        )
        frames = sorted((sequence / "img1").glob("*.jpg"))
        urls = [f"http://127.0.0.1:{s.ports['http']}" for s in sidecars]
        traffic = drive(urls[0], urls[1], [p.read_bytes() for p in frames])
        time.sleep(3.0)  # TTL expiry on B, then the last scrapes and a rule evaluation
        traffic.end = time.time()
        yield {
            "prometheus": prometheus,
            "triton": triton,
            "sidecars": sidecars,
            "traffic": traffic,
        }
    finally:
        for service in reversed(services):
            service.stop()
