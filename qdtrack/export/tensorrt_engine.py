"""Build a serialized TensorRT engine (``model.plan``) from the exported ONNX graph.

Needs the ``tensorrt`` Python package and a CUDA GPU, neither of which the development
machines have; :func:`tensorrt_unavailable_reason` says why an
export cannot run, and the GPU tests build an engine where both exist. A plan is tied to
the GPU model and the TensorRT version it was built with: build it on the serving GPU type.
TensorRT 8.6 or later imports everything the graph uses (``NonMaxSuppression``, ``NonZero``,
``RoiAlign`` with half-pixel coordinates, uint8 input). The other route is ONNX Runtime's
TensorRT provider (``--trt-fp16``), which falls back to CUDA for what TensorRT cannot run.
"""

from __future__ import annotations

from pathlib import Path

from qdtrack.export.contract import INPUT_IMAGE
from qdtrack.model.preprocess import SIZE_DIVISOR

#: TensorRT builder scratch memory.
WORKSPACE_BYTES = 2 << 30


class TensorRTBuildError(ValueError):
    """The ONNX graph could not be parsed or built into an engine."""


def tensorrt_unavailable_reason() -> str | None:
    """Why no engine can be built here (``None`` when TensorRT and a CUDA GPU are present)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the TensorRT Python package (tensorrt) is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is available"
    return None


def build_engine(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    fp16: bool = True,
    opt_hw: tuple[int, int],
    max_side: int,
    workspace_bytes: int = WORKSPACE_BYTES,
) -> None:
    """Parse ``onnx_path`` and write the serialized engine to ``plan_path``.

    Args:
        onnx_path: the exported graph.
        plan_path: engine file to write (Triton's default name is ``model.plan``).
        fp16: allow FP16 kernels.
        opt_hw: (h, w) the engine is tuned for (a typical resized frame).
        max_side: largest height or width accepted (the long side of ``img_scale``); the
            optimisation profile spans ``SIZE_DIVISOR`` to ``max_side`` on both axes.
        workspace_bytes: builder scratch memory.

    Raises:
        TensorRTBuildError: the parser or the builder failed (their messages included).
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Explicit batch is the only mode from TensorRT 10 on; 8.x needs the flag.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTBuildError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(
        INPUT_IMAGE.name,
        (SIZE_DIVISOR, SIZE_DIVISOR, 3),
        (opt_hw[0], opt_hw[1], 3),
        (max_side, max_side, 3),
    )
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTBuildError(f"TensorRT could not build an engine from {onnx_path}")
    Path(plan_path).write_bytes(bytes(serialized))
