"""Real ``tritonserver`` processes started with the Triton arguments of the rendered overlays.

PyTriton's wheel ships a real ``tritonserver`` (2.51.0) with the python backend only: the
servers here run the manifests' exact flags, with only what differs on this machine
substituted (ports, the model repository path, the backend folder, and ``$(VAR)``
references expanded from the container's environment as the kubelet does).

The ONNX Runtime backend is not in the wheel, so the model the tests deploy is a
*python-backend stand-in* for the exported network: the same name, input tensor,
``num_detections`` output, warm-up frame and ``qdtrack_model_version`` parameter, with a
``model.py`` that answers zero detections. It refuses to load when its version folder
holds a file ``REFUSE`` or its version is listed in the server's ``QDTRACK_STANDIN_REFUSE``
(so one replica can refuse what another accepts), and loads slowly when it holds
``DELAY`` (seconds), like an engine build.
"""

from __future__ import annotations

import json
import os
import re
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import one

from serving.launch import TRITON_VENV, Service, free_port, http_ok, spawn

SITE = TRITON_VENV / "lib" / "python3.11" / "site-packages"
PYTRITON = SITE / "pytriton" / "tritonserver"
TRITONSERVER = PYTRITON / "bin" / "tritonserver"
MODEL_CONTROL_KEY = "test-model-control-key"
_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def require_tritonserver() -> None:
    if not TRITONSERVER.exists():
        pytest.skip(f"{TRITONSERVER} missing: run `make setup-serving`")


def triton_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(objects, "Deployment", "qdtrack-serving")["spec"]["template"]["spec"]
    return dict(next(c for c in spec["containers"] if c["name"] == "triton"))


def expand_refs(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in container args (unknown references stay)."""
    return _REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def container_env(container: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet resolves it (Secret refs from ``secrets``)."""
    env = {}
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
        elif "fieldRef" in source:
            env[item["name"]] = "node-1"
    return env


def local_args(
    container: dict[str, Any], repository: Path, ports: dict[str, int], env: dict[str, str]
) -> list[str]:
    """The container's args with this machine's repository and ports substituted."""
    args = []
    for arg in container["args"]:
        flag = arg.split("=", 1)[0]
        if flag == "--model-repository":
            arg = f"{flag}={repository}"
        elif flag.startswith("--") and flag.endswith("-port") and flag[2:-5] in ports:
            arg = f"{flag}={ports[flag[2:-5]]}"
        args.append(expand_refs(arg, env))
    return args


def backend_dir(root: Path) -> Path:
    """A backend folder holding PyTriton's python backend and its Python 3.11 stub."""
    python = root / "python"
    python.mkdir(parents=True, exist_ok=True)
    for source in (
        PYTRITON / "backends" / "python" / "libtriton_python.so",
        PYTRITON / "backends" / "python" / "triton_python_backend_utils.py",
        PYTRITON / "python_backend_stubs" / "3.11" / "triton_python_backend_stub",
    ):
        link = python / source.name
        if not link.exists():
            link.symlink_to(source)
    return root


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The interpreter's libpython and PyTriton's bundled libraries first."""
    libs = [str(sysconfig.get_config_var("LIBDIR")), str(SITE / "nvidia_pytriton.libs")]
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(libs), **(extra or {})}


def start_replica(
    objects: list[dict[str, Any]],
    repository: Path,
    work: Path,
    *,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Service:
    """A ``tritonserver`` with the overlay's Triton args, live on 127.0.0.1."""
    container = triton_container(objects)
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    env = container_env(container, {"qdtrack-model-control/key": MODEL_CONTROL_KEY})
    args = local_args(container, repository, ports, env)
    argv = [str(TRITONSERVER), *args, f"--backend-directory={backend_dir(work / 'backends')}"]
    service = spawn(f"triton-{ports['http']}", argv, work, env=server_env(extra_env))
    service.ports.update(ports)
    url = f"http://127.0.0.1:{ports['http']}"
    service.wait_until(lambda: http_ok(f"{url}/v2/health/live"), timeout_s)
    return service


# ----------------------------------------------------------------------- the stand-in

_MODEL_PY = """\
import os
import sys
import time

sys.path.insert(0, {site!r})  # the stub ignores PYTHONPATH; numpy < 2 lives there
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        here = os.path.dirname(os.path.abspath(__file__))
        version = os.path.basename(here)
        refused = os.environ.get("QDTRACK_STANDIN_REFUSE", "").split(",")
        if os.path.exists(os.path.join(here, "REFUSE")) or version in refused:
            raise RuntimeError(f"stand-in version {{version}} refuses to load")
        delay = os.path.join(here, "DELAY")
        if os.path.exists(delay):
            with open(delay) as handle:
                time.sleep(float(handle.read()))

    def execute(self, requests):
        count = pb_utils.Tensor("num_detections", np.zeros(1, dtype=np.int32))
        return [pb_utils.InferenceResponse([count]) for _ in requests]
"""

_CONFIG = """\
# python-backend stand-in of the exported network (tests only)
name: "{name}"
backend: "python"
max_batch_size: 0
input {{ name: "image" data_type: TYPE_UINT8 dims: [-1, -1, 3] }}
output {{ name: "num_detections" data_type: TYPE_INT32 dims: [1] }}
instance_group {{ count: 1 kind: KIND_CPU }}
parameters {{ key: "qdtrack_model_version" value {{ string_value: "{tag}" }} }}
model_warmup {{
  name: "zero_frame"
  batch_size: 1
  inputs {{ key: "image" value {{ data_type: TYPE_UINT8 dims: [32, 48, 3] zero_data: true }} }}
}}
"""


def standin_export(root: Path, tag: str, *, name: str = "qdtrack", **flags: str) -> Path:
    """An export folder (``<root>/<name>/1/``) holding the stand-in as ``tag``.

    ``flags`` become files of the version folder (``REFUSE=""``, ``DELAY="3"``).
    """
    version = root / name / "1"
    version.mkdir(parents=True)
    (root / name / "config.pbtxt").write_text(_CONFIG.format(name=name, tag=tag))
    (version / "model.py").write_text(_MODEL_PY.format(site=str(SITE)))
    contract = {
        "model_version": tag,
        "img_scale": [48, 32],
        "class_names": ["pedestrian"],
        "tracker": {"type": "qdtrack"},
        "embedding_dim": 8,
        "max_detections": 100,
    }
    (version / "export.json").write_text(
        json.dumps({"model_version": tag, "serving_contract": contract})
    )
    for flag, value in flags.items():
        (version / flag).write_text(value)
    return root
