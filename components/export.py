"""Export: ``qdtrack export`` writes a Triton model repository for the candidate.

``export_format`` picks one of the exporter's three serving forms:

* ``onnx``: ``<model>/1/model.onnx`` for Triton's ONNX Runtime backend;
* ``onnx-trt-fp16``: the same ONNX file, served on GPU through ONNX Runtime's TensorRT
  accelerator in FP16 (``qdtrack export --trt-fp16``; the engine is built by Triton on
  first load and cached on its volume, so it always matches the serving GPU);
* ``tensorrt``: a ``model.plan`` built here, which needs the GPU the pipeline gives this
  step (of the same model as the serving GPUs) and an image built with TensorRT
  (``Dockerfile``, ``--build-arg WITH_TENSORRT=1``).
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Input, Model, Output

from components import CLI, IMAGE


@dsl.container_component
def export(
    model: Input[Model],
    exported: Output[Model],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    export_format: str = "onnx",
) -> dsl.ContainerSpec:
    """``qdtrack export`` of the candidate checkpoint into a model repository folder.

    The export records the config's tracker and serving settings for the sidecar; the
    model is named ``deploy.model_name``.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "export",
            "--config", config,
            "--set", overrides,
            "--checkpoint", dsl.ConcatPlaceholder([model.path, "/last.pt"]),
            "--out", exported.path,
            "--format", export_format,
        ],
    )  # fmt: skip
