"""config.pbtxt: parses as Triton's ModelConfig and matches the ONNX graph's IO."""

from __future__ import annotations

from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2

from qdtrack.export.contract import MODEL_VERSION_PARAMETER, TensorSpec
from qdtrack.export.onnx_export import onnx_io
from qdtrack.export.repository import ExportResult
from qdtrack.export.triton_config import check_config, parse_config, render_config

KIND_GPU = model_config_pb2.ModelInstanceGroup.Kind.KIND_GPU


def _render(**overrides: object) -> str:
    settings: dict[str, object] = {
        "name": "qdtrack",
        "platform": "onnxruntime_onnx",
        "embedding_dim": 32,
        "model_version": "qdtrack-0123456789ab",
        "warmup_hw": (90, 160),
    }
    settings.update(overrides)
    return render_config(**settings)  # type: ignore[arg-type]


def test_exported_config_parses_and_matches_the_graph(exported: ExportResult) -> None:
    config = parse_config(exported.config_path.read_text())
    check_config(config, onnx_io(exported.model_file))
    assert config.name == "qdtrack" and config.platform == "onnxruntime_onnx"
    # One frame per request: no batch axis and no dynamic batcher (see contract.py).
    assert config.max_batch_size == 0
    assert config.WhichOneof("scheduling_choice") is None
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.Kind.KIND_CPU, 1)
    ]
    version = config.parameters[MODEL_VERSION_PARAMETER].string_value
    assert version == exported.metadata["model_version"]
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 1 and list(warmup.inputs["image"].dims) == [90, 160, 3]
    assert not config.optimization.HasField("execution_accelerators")


def test_trt_fp16_adds_the_tensorrt_accelerator() -> None:
    config = parse_config(
        _render(
            instance_kind="KIND_GPU",
            instance_count=2,
            trt_fp16_cache_dir="/cache/qdtrack",
            img_scale=(1088, 1088),
        )
    )
    assert [(g.kind, g.count) for g in config.instance_group] == [(KIND_GPU, 2)]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_enable"] == "1"
    assert accelerator.parameters["trt_engine_cache_path"] == "/cache/qdtrack"
    assert accelerator.parameters["trt_timing_cache_path"] == "/cache/qdtrack"


@pytest.mark.parametrize("img_scale", [(1088, 1088), (1333, 800), (384, 384)])
def test_trt_shape_profile_covers_every_resized_frame(img_scale: tuple[int, int]) -> None:
    """Every frame the sidecar sends (the resize rule's output, any aspect ratio) lies in
    the profile, so ORT-TRT never rebuilds an engine at request time."""
    from qdtrack.model.preprocess import SIZE_DIVISOR
    from qdtrack.resize import rescale_size, typical_input_hw

    config = parse_config(
        _render(instance_kind="KIND_GPU", trt_fp16_cache_dir="/c", img_scale=img_scale)
    )
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator

    def shape(kind: str) -> tuple[int, ...]:
        name, dims = accelerator.parameters[f"trt_profile_{kind}_shapes"].split(":")
        assert name == "image"
        return tuple(int(d) for d in dims.split("x"))

    low, opt, high = shape("min"), shape("opt"), shape("max")
    assert low == (SIZE_DIVISOR, SIZE_DIVISOR, 3)
    assert opt == (*typical_input_hw(img_scale), 3)
    for width, height in [(1920, 1080), (1080, 1920), (640, 480), (4096, 2160), (768, 576),
                          (320, 240), (2000, 300), (160, 1200)]:  # fmt: skip
        w, h, _ = rescale_size(width, height, img_scale)
        assert low[0] <= h <= high[0] and low[1] <= w <= high[1], (width, height)
    assert high[0] == high[1] == max(img_scale)  # reached: a square or portrait frame


def test_tensorrt_plan_config() -> None:
    config = parse_config(_render(platform="tensorrt_plan", instance_kind="KIND_GPU"))
    assert config.platform == "tensorrt_plan"
    assert [g.kind for g in config.instance_group] == [KIND_GPU]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"platform": "tensorrt_plan"}, "GPU instances only"),
        ({"trt_fp16_cache_dir": "/c"}, "KIND_GPU"),
        ({"trt_fp16_cache_dir": "/c", "instance_kind": "KIND_GPU"}, "needs img_scale"),
        ({"instance_kind": "KIND_TPU"}, "KIND_CPU or KIND_GPU"),
        ({"instance_count": 0}, "at least 1"),
        ({"platform": "pytorch_libtorch"}, "platform must be"),
    ],
)
def test_render_refuses_inconsistent_settings(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _render(**overrides)


def test_check_config_names_the_mismatching_tensor(exported: ExportResult) -> None:
    graph_io = onnx_io(exported.model_file)
    wrong_width = parse_config(_render(embedding_dim=64))
    with pytest.raises(ValueError, match="embeddings"):
        check_config(wrong_width, graph_io)
    renamed = {**graph_io, "boxes": TensorSpec("boxes", "FP32", (100, 5))}
    with pytest.raises(ValueError, match="boxes"):
        check_config(parse_config(_render()), renamed)


def test_parse_config_rejects_text_that_is_not_a_model_config() -> None:
    with pytest.raises(ValueError, match="does not parse"):
        parse_config('name: "x"\nmax_batch_sizes: 0\n')


def test_an_ort_trt_export_profiles_its_own_resize_rule(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """``qdtrack export --trt-fp16`` writes the profile of the checkpoint's img_scale."""
    from qdtrack.export.repository import export_repository
    from qdtrack.resize import resized_hw_range

    result = export_repository(tiny_checkpoint, tmp_path, trt_fp16=True)
    config = parse_config(result.config_path.read_text())
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    low, opt, high = resized_hw_range(tuple(result.metadata["img_scale"]))
    assert accelerator.parameters["trt_profile_max_shapes"] == f"image:{high[0]}x{high[1]}x3"
    assert accelerator.parameters["trt_profile_opt_shapes"] == f"image:{opt[0]}x{opt[1]}x3"
    assert accelerator.parameters["trt_profile_min_shapes"] == f"image:{low[0]}x{low[1]}x3"
    assert accelerator.parameters["trt_engine_cache_path"] == "/trt-cache/qdtrack"


def test_the_batched_graph_profile_has_a_batch_axis() -> None:
    config = parse_config(
        _render(
            instance_kind="KIND_GPU",
            trt_fp16_cache_dir="/cache/qdtrack",
            img_scale=(160, 160),
            max_batch_size=8,
            preferred_batch_sizes=(4, 8),
        )
    )
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.parameters["trt_profile_min_shapes"].startswith("image:1x")
    assert accelerator.parameters["trt_profile_max_shapes"].startswith("image:8x")
