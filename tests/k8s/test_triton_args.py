"""The Triton command line of the manifests, parsed by a real ``tritonserver``.

PyTriton's bundled server (2.51.0) takes the rendered flags of both
overlays against an empty model repository: every flag must be recognised, and the server
must get as far as trying to load the ``qdtrack`` model (explicit model control).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sysconfig
from pathlib import Path

import pytest
from k8s_helpers import OVERLAYS, one

from serving.launch import TRITON_VENV

SITE = TRITON_VENV / "lib" / "python3.11" / "site-packages"
TRITONSERVER = SITE / "pytriton" / "tritonserver" / "bin" / "tritonserver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tritonserver_accepts_the_rendered_flags(
    rendered: dict, overlay: str, tmp_path: Path
) -> None:
    if not TRITONSERVER.exists():
        pytest.skip(f"{TRITONSERVER} missing: run `make setup-serving`")
    spec = one(rendered[overlay], "Deployment", "qdtrack-serving")["spec"]["template"]["spec"]
    triton = next(c for c in spec["containers"] if c["name"] == "triton")
    ports = {
        "--http-port": _free_port(),
        "--grpc-port": _free_port(),
        "--metrics-port": _free_port(),
    }
    args = []
    for arg in triton["args"]:
        flag = arg.split("=", 1)[0]
        if flag == "--model-repository":
            arg = f"{flag}={tmp_path}"  # empty: nothing to load
        elif flag in ports:
            arg = f"{flag}={ports[flag]}"  # the pod's ports may be taken on this machine
        args.append(arg)
    libs = [str(sysconfig.get_config_var("LIBDIR")), str(SITE / "nvidia_pytriton.libs")]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(libs)}
    result = subprocess.run(
        [str(TRITONSERVER), *args], capture_output=True, text=True, timeout=60, env=env
    )
    output = result.stdout + result.stderr
    assert "unrecognized option" not in output, output[-2000:]
    assert "failed to poll model 'qdtrack'" in output or "failed to load 'qdtrack'" in output, (
        output[-2000:]
    )
    assert result.returncode != 0  # --exit-on-error: no model, no server
