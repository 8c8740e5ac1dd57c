"""Starting the local serving stack as child processes: Redis, PyTriton, the sidecar, Prometheus.

Used by ``make serve`` (``python -m serving.launch``), the integration tests and the
benchmarks. Every service binds 127.0.0.1 on a port given or picked free, runs in its
own process group and is waited for until it answers.

PyTriton runs in the separate ``.venv-triton`` (PyTriton pins numpy < 2) with
``LD_LIBRARY_PATH`` set to the interpreter's ``LIBDIR`` (its tritonserver links against libpython).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TRITON_VENV = REPO_ROOT / ".venv-triton"
PYTRITON_SERVER = Path(__file__).resolve().parent / "pytriton_server.py"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """True when ``GET url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@dataclass
class Service:
    """A child process and how to tell that it serves."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)
    scratch: list[Path] = field(default_factory=list)  # removed once the process is gone

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_until(self, check: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``check`` until true; ``RuntimeError`` with the log tail on exit or timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group (no clean-up: a crash)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for path in self.scratch:
            shutil.rmtree(path, ignore_errors=True)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the main process (it stops its children), then SIGKILL what is left."""
        if self.alive():
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        self.kill()  # leftovers of the process group, if any


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    ports: Sequence[int] = (),
    cpus: Sequence[int] | None = None,
) -> Service:
    """Start ``argv`` in a new process group, output to ``log_dir/<name>.log``.

    ``ports`` must be free: otherwise a stale server could answer the readiness checks.
    ``cpus`` pins the process and its children to those cores (``taskset``), as CPU
    limits of separate containers would.
    """
    if cpus is not None:
        argv = ["taskset", "-c", ",".join(str(c) for c in cpus), *argv]
    busy = [port for port in ports if port_open(port)]
    if busy:
        raise RuntimeError(f"cannot start {name}: port(s) {busy} already in use")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return Service(name, process, log_path)


# ---------------------------------------------------------------- Redis
def start_redis(
    log_dir: Path,
    port: int | None = None,
    timeout_s: float = 10.0,
    cpus: Sequence[int] | None = None,
) -> Service:
    """``redis-server`` without persistence on 127.0.0.1 (data in memory only)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found; run `make setup-serving`")
    port = port or free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(log_dir)]
    service = spawn(f"redis-{port}", argv, log_dir, ports=[port], cpus=cpus)
    service.ports["redis"] = port
    service.wait_until(lambda: port_open(port), timeout_s)
    return service


# ---------------------------------------------------------------- PyTriton
def triton_python() -> Path:
    """The ``.venv-triton`` interpreter (``FileNotFoundError`` if not set up)."""
    python = TRITON_VENV / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} not found; run `make setup-serving`")
    return python


def triton_env() -> dict[str, str]:
    """Environment for PyTriton: the interpreter's own libpython first."""
    env = dict(os.environ)
    libdir = str(sysconfig.get_config_var("LIBDIR") or "")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH")) if p)
    env.pop("PYTHONPATH", None)
    return env


def start_pytriton(
    repository: Path,
    log_dir: Path,
    *,
    model_version: int | None = None,
    grpc_port: int | None = None,
    http_port: int | None = None,
    metrics_port: int | None = None,
    threads: int = 1,
    model_name: str = "qdtrack",
    timeout_s: float = 60.0,
    cpus: Sequence[int] | None = None,
) -> Service:
    """The exported model repository served by PyTriton (python backend running onnxruntime)."""
    ports = {
        "grpc": grpc_port or free_port(),
        "http": http_port or free_port(),
        "metrics": metrics_port or free_port(),
    }
    # our own workspace (not ~/.cache/pytriton), so that a killed server leaves nothing behind
    log_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="pytriton-", dir=log_dir))
    workspace = scratch / "workspace"  # PyTriton creates it
    argv = [str(triton_python()), str(PYTRITON_SERVER), "--repository", str(repository)]
    argv += [f"--{name}-port={port}" for name, port in ports.items()]
    argv += ["--workspace", str(workspace)]
    argv += ["--threads", str(threads), "--model", model_name]
    if model_version is not None:
        argv += ["--model-version", str(model_version)]
    service = spawn(
        f"pytriton-{ports['grpc']}",
        argv,
        log_dir,
        env=triton_env(),
        ports=list(ports.values()),
        cpus=cpus,
    )
    service.ports.update(ports)
    service.scratch.append(scratch)
    # the server is up before PyTriton loads the model: wait for the model itself
    ready = f"http://127.0.0.1:{ports['http']}/v2/models/{model_name}/ready"
    service.wait_until(lambda: http_ok(ready), timeout_s)
    return service


# ---------------------------------------------------------------- sidecar
def start_sidecar(
    log_dir: Path,
    *,
    triton_grpc_port: int,
    redis_port: int | None,
    port: int | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    cpus: Sequence[int] | None = None,
    log_level: str = "warning",
) -> Service:
    """``python -m serving.sidecar`` in the current interpreter (the main venv)."""
    port = port or free_port()
    child_env = dict(os.environ)
    child_env["SIDECAR_TRITON_URL"] = f"127.0.0.1:{triton_grpc_port}"
    if redis_port is not None:
        child_env["SIDECAR_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    child_env.update(env or {})
    argv = [sys.executable, "-m", "serving.sidecar", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", log_level]
    service = spawn(f"sidecar-{port}", argv, log_dir, env=child_env, ports=[port], cpus=cpus)
    service.ports["http"] = port
    service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout_s)
    return service


# ---------------------------------------------------------------- Prometheus
def prometheus_config(targets: dict[str, str], scrape_interval_s: float = 1.0) -> str:
    """A Prometheus config scraping ``job -> host:port`` targets (JSON is valid YAML)."""
    config = {
        "global": {"scrape_interval": f"{round(scrape_interval_s * 1000)}ms"},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    return json.dumps(config, indent=2)


def start_prometheus(
    log_dir: Path,
    targets: dict[str, str],
    *,
    port: int | None = None,
    scrape_interval_s: float = 1.0,
    timeout_s: float = 15.0,
) -> Service:
    """Debian's ``prometheus`` scraping ``targets`` (job name -> ``host:port``)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("prometheus not found; run `make setup-serving`")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=log_dir))
    config = workdir / "prometheus.yml"
    config.write_text(prometheus_config(targets, scrape_interval_s))
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
    argv += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    service = spawn(f"prometheus-{port}", argv, log_dir, ports=[port])
    service.ports["http"] = port
    service.scratch.append(workdir)
    service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout_s)
    return service


# ---------------------------------------------------------------- make serve
@contextlib.contextmanager
def local_stack(
    repository: Path,
    log_dir: Path,
    *,
    sidecar_port: int | None = None,
    triton_grpc_port: int | None = None,
    sidecar_env: dict[str, str] | None = None,
    prometheus: bool = False,
    triton_cpus: Sequence[int] | None = None,
    sidecar_cpus: Sequence[int] | None = None,
) -> Iterator[dict[str, Service]]:
    """Redis + PyTriton + sidecar (+ Prometheus scraping both) until the block ends.

    ``triton_cpus`` / ``sidecar_cpus`` (the latter also for Redis) pin them to cores.
    """
    services: dict[str, Service] = {}
    try:
        services["redis"] = start_redis(log_dir, cpus=sidecar_cpus)
        services["triton"] = start_pytriton(
            repository, log_dir, grpc_port=triton_grpc_port, cpus=triton_cpus
        )
        services["sidecar"] = start_sidecar(
            log_dir,
            triton_grpc_port=services["triton"].ports["grpc"],
            redis_port=services["redis"].ports["redis"],
            port=sidecar_port,
            env=sidecar_env,
            cpus=sidecar_cpus,
        )
        if prometheus:
            services["prometheus"] = start_prometheus(
                log_dir,
                {
                    "qdtrack-sidecar": f"127.0.0.1:{services['sidecar'].ports['http']}",
                    "triton": f"127.0.0.1:{services['triton'].ports['metrics']}",
                },
            )
        yield services
    finally:
        for service in reversed(list(services.values())):
            service.stop()


def sidecar_env_for(repository: Path, model_name: str = "qdtrack") -> dict[str, str]:
    """``SIDECAR_*`` settings for a served repository: only its quality record.

    How to use the model (resize rule, tracker and its settings) is not among them: the
    sidecar reads it from the model config Triton serves, per version.
    """
    champion = repository / model_name / "champion.json"  # written by `qdtrack deploy`
    if champion.is_file():
        return {"SIDECAR_MODEL_QUALITY_FILE": str(champion.resolve())}
    return {}


def repository_for_weights(weights: str, repository: Path, model_name: str = "qdtrack") -> Path:
    """Export ``--weights NAME|FILE|URL`` into ``repository`` as its newest version.

    The weights are resolved by :func:`qdtrack.zoo.resolve_weights` (downloaded and
    converted once). Nothing is exported when the newest version already holds the same
    checkpoint; otherwise the export becomes version ``newest + 1`` (``1`` in an empty
    repository), so Triton serves it.

    Returns:
        The version folder that holds the weights.
    """
    from qdtrack.export.repository import export_repository, file_sha256
    from qdtrack.export.runtime import latest_version_dir, read_metadata
    from qdtrack.zoo import resolve_weights

    checkpoint = resolve_weights(weights)
    sha256 = file_sha256(checkpoint)
    try:
        newest = latest_version_dir(repository / model_name)
        record = read_metadata(newest)
    except FileNotFoundError:
        newest, record = None, {}
    if newest is not None and record.get("checkpoint_sha256") == sha256:
        log.info("%s already serves %s (%s)", newest, weights, record.get("model_version"))
        return newest
    version = int(newest.name) + 1 if newest is not None else 1
    log.info("exporting %s to %s as version %d", weights, repository / model_name, version)
    result = export_repository(checkpoint, repository, model_name=model_name, version=version)
    return result.version_dir


def auth_hint(env: Mapping[str, str]) -> str:
    """What ``make serve`` says about the bearer token of the stream API."""
    if env.get("SIDECAR_AUTH_TOKEN"):
        return "auth: on: /v1 needs 'Authorization: Bearer $SIDECAR_AUTH_TOKEN'"
    return (
        "auth: OFF (anyone who reaches the port can use /v1); to require a token, start with "
        "SIDECAR_AUTH_TOKEN=$(openssl rand -hex 24) make serve and pass "
        "--token $SIDECAR_AUTH_TOKEN to qdtrack stream"
    )


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)  # runs the ``finally`` that stops the children


def main(argv: Sequence[str] | None = None) -> int:
    """``make serve``: run Redis, PyTriton, the sidecar and Prometheus until Ctrl-C."""
    p = argparse.ArgumentParser(prog="python -m serving.launch", description=main.__doc__)
    p.add_argument(
        "--repository",
        default=None,
        help="model repository from `qdtrack export` "
        "(with --weights: default runs/serve/repository)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="serve these weights: a model zoo name (qdtrack weights list), a URL or a "
        "checkpoint file; exported into --repository first unless already there",
    )
    p.add_argument("--port", type=int, default=8080, help="sidecar port")
    p.add_argument("--triton-grpc-port", type=int, default=8001)
    p.add_argument("--logs", default="runs/serve", help="folder for the services' logs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    if args.repository is None and args.weights is None:
        p.error("give --repository, --weights or both")
    repository = Path(args.repository or "runs/serve/repository")
    if args.weights is not None:
        try:
            repository_for_weights(args.weights, repository)
        except (ValueError, FileNotFoundError) as exc:  # the zoo's and export's user errors
            log.error("%s", exc)
            return 2
    try:
        sidecar_env = sidecar_env_for(repository)
    except FileNotFoundError as exc:
        log.error(
            "no exported model in %s (%s): run `make run && make deploy`, or "
            "`qdtrack export --checkpoint CKPT --out %s`",
            repository,
            exc,
            repository,
        )
        return 2
    with local_stack(
        repository,
        Path(args.logs),
        sidecar_port=args.port,
        triton_grpc_port=args.triton_grpc_port,
        sidecar_env=sidecar_env,
        prometheus=True,
    ) as services:
        for name, service in services.items():
            log.info(
                "%-10s pid %-7d ports %s  log %s",
                name,
                service.pid,
                service.ports,
                service.log_path,
            )
        log.info(
            "sidecar: http://127.0.0.1:%d (docs at /docs); Prometheus: http://127.0.0.1:%d; "
            "try: qdtrack stream VIDEO --url http://127.0.0.1:%d --render out.mp4%s",
            args.port,
            services["prometheus"].ports["http"],
            args.port,
            " --token $SIDECAR_AUTH_TOKEN" if os.environ.get("SIDECAR_AUTH_TOKEN") else "",
        )
        log.info("%s", auth_hint(os.environ))
        with contextlib.suppress(KeyboardInterrupt):
            while all(s.alive() for s in services.values()):
                time.sleep(0.5)
        dead = [name for name, s in services.items() if not s.alive()]
        if dead:
            log.error("stopped because %s exited; see the logs in %s", dead, args.logs)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
