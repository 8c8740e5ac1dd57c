"""``qdtrack export``: the network as a Triton model repository (ONNX or TensorRT).

Modules: ``contract`` (tensor names and shapes; imports nothing heavy), ``graph`` (the
exported module), ``onnx_export``, ``triton_config`` (``config.pbtxt``), ``tensorrt_engine``,
``runtime`` (ONNX Runtime runner and the request/response helpers, no torch) and
``repository`` (the command). Import the submodules directly; this package imports nothing
so that ``qdtrack.export.contract`` stays cheap for the serving sidecar.
"""
