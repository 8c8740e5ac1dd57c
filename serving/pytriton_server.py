"""Serve an exported model repository with PyTriton on CPU (runs in ``.venv-triton``).

Production Triton runs ``REPO/qdtrack/<version>/model.onnx`` with its onnxruntime backend.
The ``tritonserver`` that PyTriton ships has only the python backend,
so here a python-backend model runs the same ONNX file with onnxruntime — under the name,
tensors, ``max_batch_size``, dynamic batcher, instance count and ``qdtrack_model_version``
parameter read from the repository's own ``config.pbtxt``. Clients cannot tell the two
apart. With the batched graph, Triton's dynamic batcher hands one call several requests;
those of equal frame size run as one ONNX Runtime call, as Triton's onnxruntime backend
runs a formed batch.

    .venv-triton/bin/python serving/pytriton_server.py --repository REPO [--grpc-port 8001]

This file runs in the Triton venv (numpy < 2, no torch, no qdtrack package): it imports
only PyTriton, numpy, onnxruntime and tritonclient's protobufs. Start it through
``serving.launch.start_pytriton``, which also sets ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
from tritonclient.grpc import model_config_pb2

log = logging.getLogger("pytriton_server")

#: Must equal ``qdtrack.export.contract.MODEL_VERSION_PARAMETER`` (this venv cannot import it;
#: the integration tests check the value arrives at the sidecar).
MODEL_VERSION_PARAMETER = "qdtrack_model_version"
ONNX_FILENAME = "model.onnx"
_NUMPY_DTYPES: dict[int, type] = {
    model_config_pb2.TYPE_UINT8: np.uint8,
    model_config_pb2.TYPE_INT32: np.int32,
    model_config_pb2.TYPE_INT64: np.int64,
    model_config_pb2.TYPE_FP32: np.float32,
}

InferFn = Callable[[list[Any]], list[dict[str, np.ndarray]]]


def read_config(model_dir: Path) -> model_config_pb2.ModelConfig:
    """``<model_dir>/config.pbtxt`` as Triton's ``ModelConfig`` protobuf."""
    text = (model_dir / "config.pbtxt").read_text()
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def latest_version(model_dir: Path) -> int:
    """The highest numbered version folder (Triton's default ``latest { num_versions: 1 }``)."""
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"{model_dir}: no numbered version folder")
    return max(versions)


def tensors(specs: Sequence[Any]) -> list[Tensor]:
    """PyTriton tensors for ``config.pbtxt`` inputs or outputs."""
    out = []
    for spec in specs:
        if spec.data_type not in _NUMPY_DTYPES:
            raise ValueError(f"tensor {spec.name}: unsupported type {spec.data_type}")
        out.append(
            Tensor(name=spec.name, dtype=_NUMPY_DTYPES[spec.data_type], shape=tuple(spec.dims))
        )
    return out


def run_batched(
    run: Callable[[np.ndarray], list[np.ndarray]],
    images: list[np.ndarray],
) -> list[list[np.ndarray]]:
    """Per request the outputs of ``run``, requests of equal frame size run together.

    ``images`` are the requests' (b_i, h, w, 3) inputs; ``run`` maps one (N, h, w, 3)
    array to outputs with a leading axis of N. Returns, in request order, each request's
    outputs (b_i rows each).
    """
    answers: list[list[np.ndarray]] = [[] for _ in images]
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(tuple(image.shape[1:]), []).append(index)
    for members in groups.values():
        values = run(np.concatenate([images[i] for i in members]))
        bounds = np.cumsum([images[i].shape[0] for i in members])[:-1]
        for value in values:
            for i, part in zip(members, np.split(value, bounds), strict=True):
                answers[i].append(part)
    return answers


def make_infer_fn(
    model_path: Path,
    output_names: list[str],
    dtypes: dict[str, type],
    threads: int,
    batched: bool = False,
) -> InferFn:
    """One model instance: an ONNX Runtime session answering PyTriton requests."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    (input_name,) = [i.name for i in session.get_inputs()]

    def run(image: np.ndarray) -> list[np.ndarray]:
        values = session.run(output_names, {input_name: np.ascontiguousarray(image)})
        # canonical numpy types: PyTriton's strict check rejects e.g. longlong for INT64
        return [np.asarray(v, dtype=dtypes[n]) for n, v in zip(output_names, values, strict=True)]

    def infer(requests: list[Any]) -> list[dict[str, np.ndarray]]:
        images = [np.asarray(request[input_name]) for request in requests]
        # batched: the dynamic batcher's requests, each (b_i, h, w, 3); else one frame each
        answers = run_batched(run, images) if batched else [run(image) for image in images]
        return [dict(zip(output_names, values, strict=True)) for values in answers]

    return infer


def warm_up(infer: InferFn, config: model_config_pb2.ModelConfig) -> None:
    """Run the config's ``model_warmup`` zero frames once (the model is READY only after)."""
    for warmup in config.model_warmup:
        request = {}
        batch = (max(warmup.batch_size, 1),) if config.max_batch_size > 0 else ()
        for name, value in warmup.inputs.items():
            dtype = _NUMPY_DTYPES[value.data_type]
            request[name] = np.zeros((*batch, *value.dims), dtype=dtype)
        infer([request])


def model_config(config: model_config_pb2.ModelConfig) -> ModelConfig:
    """PyTriton's model settings: batching and the dynamic batcher as ``config.pbtxt`` says."""
    if config.max_batch_size <= 0:
        return ModelConfig(batching=False, max_batch_size=0)
    dynamic = config.dynamic_batching
    batcher = DynamicBatcher(
        max_queue_delay_microseconds=dynamic.max_queue_delay_microseconds,
        preferred_batch_size=list(dynamic.preferred_batch_size) or None,
    )
    return ModelConfig(batching=True, max_batch_size=config.max_batch_size, batcher=batcher)


def set_model_parameters(triton: Triton, parameters: dict[str, str]) -> None:
    """Publish ``config.pbtxt`` parameters in the served model config.

    PyTriton 0.7.0 has no public way to add model parameters; its generated config carries
    ``backend_parameters`` (used for its own workspace path), which Triton reports as the
    model's ``parameters``. We add ours there before the model is loaded.
    """
    try:
        models = list(triton._model_manager.models)
        for model in models:
            model._get_triton_model_config().backend_parameters.update(parameters)
    except AttributeError as exc:  # a PyTriton version with other internals
        log.warning("cannot set model parameters %s: %s", sorted(parameters), exc)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repository", required=True, help="model repository (qdtrack export)")
    p.add_argument("--model", default="qdtrack", help="model folder name")
    p.add_argument("--model-version", type=int, default=None, help="default: the latest")
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads per instance")
    p.add_argument(
        "--workspace", default=None, help="PyTriton workspace (default: a temporary one)"
    )
    return p.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # leaves serve() through Triton's clean shutdown


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    model_dir = Path(args.repository) / args.model
    config = read_config(model_dir)
    version = args.model_version or latest_version(model_dir)
    model_path = model_dir / str(version) / ONNX_FILENAME
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} not found (only ONNX exports can be served here)")
    output_names = [o.name for o in config.output]
    dtypes: dict[str, type] = {o.name: _NUMPY_DTYPES[o.data_type] for o in config.output}
    instances = max(1, sum(g.count for g in config.instance_group) or 1)
    batched = config.max_batch_size > 0
    infer_fns = [
        make_infer_fn(model_path, output_names, dtypes, args.threads, batched)
        for _ in range(instances)
    ]
    warm_up(infer_fns[0], config)
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    triton_config = TritonConfig(
        http_address=args.address,
        http_port=args.http_port,
        grpc_address=args.address,
        grpc_port=args.grpc_port,
        metrics_address=args.address,
        metrics_port=args.metrics_port,
        allow_cpu_metrics=True,
    )
    # perf_analyzer reads the model config and statistics: no restricted endpoints (8.2)
    security = TritonSecurityConfig(restricted_endpoints=[])
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # No ``with``: entering the context would load the model before our parameters are set.
    triton = Triton(config=triton_config, security_config=security, workspace=args.workspace)
    try:
        triton.bind(
            model_name=config.name or args.model,
            infer_func=infer_fns,
            inputs=tensors(config.input),
            outputs=tensors(config.output),
            model_version=version,
            config=model_config(config),
            strict=True,
        )
        set_model_parameters(triton, parameters)
        log.info(
            "serving %s version %d (%s) from %s with %d instance(s): %s",
            config.name,
            version,
            json.dumps(parameters),
            model_path,
            instances,
            f"grpc {args.address}:{args.grpc_port}, http {args.http_port}, "
            f"metrics {args.metrics_port}",
        )
        triton.serve()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        triton.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
