"""Fixtures of the serving tests: a sidecar app on a fake Triton and an in-memory store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sidecar_fakes import FakeDetector, FlakyStore, make_settings
from stack_helpers import export_tiny, require_triton_venv, start_stack_sidecar

from serving.launch import Service, start_pytriton, start_redis
from serving.sidecar.app import create_app


@pytest.fixture
def detector() -> FakeDetector:
    return FakeDetector()


@pytest.fixture
def store() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def client(detector: FakeDetector, store: FlakyStore) -> Iterator[TestClient]:
    app = create_app(make_settings(), detector=detector, store=store)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def service_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the logs of the services the tests start."""
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def redis_server(service_logs: Path) -> Iterator[Service]:
    """A real ``redis-server`` on a free loopback port (skipped if not installed)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (make setup-serving)")
    service = start_redis(service_logs)
    yield service
    service.stop()


@pytest.fixture
def redis_url(redis_server: Service) -> str:
    """URL of the test Redis, with database 0 flushed."""
    import redis

    url = f"redis://127.0.0.1:{redis_server.ports['redis']}/0"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def tiny_repository(tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported with ``qdtrack export`` code (version 1)."""
    return export_tiny(tiny_workspace, tmp_path_factory.mktemp("export-a"), seed=0, version=1)


@pytest.fixture(scope="session")
def other_repository(tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Other weights exported as version 2 (a model rollout)."""
    return export_tiny(tiny_workspace, tmp_path_factory.mktemp("export-b"), seed=1, version=2)


@pytest.fixture(scope="session")
def frame_files(tiny_workspace: Path) -> list[Path]:
    """The JPEG files of the synthetic validation sequence (16 frames)."""
    seq = next(p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir())
    return sorted((seq / "img1").glob("*.jpg"))


@pytest.fixture(scope="session")
def triton(tiny_repository: Path, service_logs: Path) -> Iterator[Service]:
    """PyTriton serving the tiny export (gRPC, HTTP and metrics on free ports)."""
    require_triton_venv()
    service = start_pytriton(tiny_repository, service_logs)
    yield service
    service.kill()  # a clean stop takes ~5 s and nothing is left to save


@pytest.fixture(scope="session")
def sidecar(
    triton: Service, redis_server: Service, tiny_repository: Path, service_logs: Path
) -> Iterator[Service]:
    """A sidecar process in front of ``triton`` with state in ``redis_server``."""
    service = start_stack_sidecar(
        triton, redis_server, tiny_repository, service_logs, redis_prefix="session:"
    )
    yield service
    service.stop()
