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

from components import IMAGE
from components._shell import command

_EXPORT = """
model=$1; format=$2; model_name=$3; exported=$4
case "$format" in
  onnx-trt-fp16) set -- --format onnx --trt-fp16 ;;
  *) set -- --format "$format" ;;
esac
qdtrack export --checkpoint "$model/last.pt" --out "$exported" --model-name "$model_name" \\
  "$@" --force
"""


@dsl.container_component
def export(
    model: Input[Model],
    exported: Output[Model],
    export_format: str = "onnx",
    model_name: str = "qdtrack",
) -> dsl.ContainerSpec:
    """``qdtrack export`` of the candidate checkpoint into a model repository folder."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_EXPORT, "export"),
        args=[model.path, export_format, model_name, exported.path],
    )
