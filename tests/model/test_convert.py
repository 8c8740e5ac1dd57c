"""Tests of the mmtracking → project checkpoint conversion against the key inventory JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops import FrozenBatchNorm2d

from qdtrack.cli import main as cli_main
from qdtrack.convert import (
    convert_mmtracking_state_dict,
    expected_mmtracking_shapes,
    load_mmtracking_checkpoint,
    mmtracking_to_project_key,
)

torch.set_flush_denormal(True)

#: The published R-50 key list (names, shapes, dtypes, torchvision counterparts).
KEYS_JSON = Path(__file__).resolve().parents[1] / "fixtures" / "mmtracking_qdtrack_r50_keys.json"
CLS = "detector.roi_head.bbox_head.fc_cls"
REG = "detector.roi_head.bbox_head.fc_reg"
TV_CLS = "detector.roi_heads.box_predictor.cls_score"
TV_REG = "detector.roi_heads.box_predictor.bbox_pred"


@pytest.fixture(scope="module")
def key_entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(KEYS_JSON.read_text())["keys"]
    return entries


@pytest.fixture(scope="module")
def mm_state(key_entries: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """A state dict with exactly the JSON's names, shapes and dtypes, random values."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for entry in key_entries:
        dtype = getattr(torch, entry["dtype"])
        if dtype.is_floating_point:
            tensor = torch.empty(entry["shape"], dtype=dtype).normal_(generator=generator)
        else:
            tensor = torch.randint(0, 1000, entry["shape"], dtype=dtype, generator=generator)
        state[entry["key"]] = tensor
    return state


def test_expected_shapes_equal_the_json(key_entries: list[dict[str, Any]]) -> None:
    expected = {e["key"]: tuple(e["shape"]) for e in key_entries}
    assert expected_mmtracking_shapes() == expected
    assert len(expected) == 364


def test_key_mapping_equals_the_json(key_entries: list[dict[str, Any]]) -> None:
    for entry in key_entries:
        tv_key = entry["torchvision_key"]
        wanted = f"detector.{tv_key}" if tv_key is not None else entry["key"]
        assert mmtracking_to_project_key(entry["key"]) == wanted
    with pytest.raises(ValueError, match="no conversion rule"):
        mmtracking_to_project_key("detector.mask_head.conv.weight")


def test_all_keys_convert_with_the_right_shapes(
    mm_state: dict[str, torch.Tensor], key_entries: list[dict[str, Any]]
) -> None:
    kept = convert_mmtracking_state_dict(mm_state, keep_num_batches_tracked=True)
    assert len(kept) == 364
    for entry in key_entries:
        tv_shape = entry.get("torchvision_shape") or entry["shape"]
        assert tuple(kept[mmtracking_to_project_key(entry["key"])].shape) == tuple(tv_shape)
    dropped = convert_mmtracking_state_dict(mm_state)
    assert len(dropped) == 364 - 53
    assert not any(key.endswith("num_batches_tracked") for key in dropped)
    body = "detector.backbone.body.layer3.4.conv2.weight"
    assert torch.equal(dropped[body], mm_state["detector.backbone.layer3.4.conv2.weight"])
    embed = "track_head.embed_head.convs.2.gn.bias"
    assert torch.equal(dropped[embed], mm_state[embed])


def test_class_rows_swapped_and_deltas_placed(mm_state: dict[str, torch.Tensor]) -> None:
    out = convert_mmtracking_state_dict(mm_state)
    for suffix in ("weight", "bias"):
        mm_cls, tv_cls = mm_state[f"{CLS}.{suffix}"], out[f"{TV_CLS}.{suffix}"]
        assert torch.equal(tv_cls[0], mm_cls[1]) and torch.equal(tv_cls[1], mm_cls[0])
        mm_reg, tv_reg = mm_state[f"{REG}.{suffix}"], out[f"{TV_REG}.{suffix}"]
        assert torch.equal(tv_reg[4:8], mm_reg) and not tv_reg[:4].any()
    # numerically: same person probability and same person deltas from the same features
    features = torch.randn(5, 1024)
    mm_logits = features @ mm_state[f"{CLS}.weight"].t() + mm_state[f"{CLS}.bias"]
    tv_logits = features @ out[f"{TV_CLS}.weight"].t() + out[f"{TV_CLS}.bias"]
    torch.testing.assert_close(mm_logits.softmax(1)[:, 0], tv_logits.softmax(1)[:, 1])
    mm_deltas = features @ mm_state[f"{REG}.weight"].t() + mm_state[f"{REG}.bias"]
    tv_deltas = features @ out[f"{TV_REG}.weight"].t() + out[f"{TV_REG}.bias"]
    torch.testing.assert_close(tv_deltas[:, 4:], mm_deltas)


def test_converted_detector_loads_strictly_into_torchvision(
    mm_state: dict[str, torch.Tensor],
) -> None:
    def detector_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k[len("detector.") :]: v for k, v in state.items() if k.startswith("detector.")}

    with torch.device("meta"):
        plain = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2)
        body = torchvision.models.resnet50(norm_layer=FrozenBatchNorm2d)
        frozen = FasterRCNN(_resnet_fpn_extractor(body, 3), num_classes=2)
    plain.load_state_dict(
        detector_part(convert_mmtracking_state_dict(mm_state, keep_num_batches_tracked=True)),
        strict=True,
        assign=True,
    )
    frozen.load_state_dict(
        detector_part(convert_mmtracking_state_dict(mm_state)), strict=True, assign=True
    )


def test_missing_extra_and_misshapen_keys_are_refused(mm_state: dict[str, torch.Tensor]) -> None:
    missing = dict(mm_state)
    del missing["detector.neck.fpn_convs.2.conv.bias"]
    with pytest.raises(
        ValueError, match=r"missing keys 1: detector\.neck\.fpn_convs\.2\.conv\.bias"
    ):
        convert_mmtracking_state_dict(missing)
    extra = {**mm_state, "track_head.embed_head.extra.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"unexpected keys 1: track_head\.embed_head\.extra"):
        convert_mmtracking_state_dict(extra)
    misshapen = {**mm_state, "track_head.embed_head.fc_embed.weight": torch.zeros(128, 1024)}
    with pytest.raises(ValueError, match=r"wrong shapes 1: .*fc_embed\.weight \(128, 1024\)"):
        convert_mmtracking_state_dict(misshapen)
    prefixed = {f"module.{k}": v for k, v in mm_state.items()}
    with pytest.raises(ValueError, match=r"missing keys 364: .*\(\+354 more\)"):
        convert_mmtracking_state_dict(prefixed)


def test_checkpoint_file_round_trip(mm_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    source = tmp_path / "qdtrack_mm.pth"
    torch.save({"state_dict": mm_state, "meta": {"epoch": 4, "CLASSES": ("pedestrian",)}}, source)
    assert load_mmtracking_checkpoint(source).keys() == mm_state.keys()

    output = tmp_path / "out" / "qdtrack_r50.pt"
    assert cli_main(["convert-checkpoint", str(source), str(output)]) == 0
    written = torch.load(output, map_location="cpu", weights_only=True)
    assert set(written) == {"format", "model", "config", "source"}
    assert written["source"]["file"] == "qdtrack_mm.pth"
    assert written["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert written["config"]["tracker"]["init_score_thr"] == 0.9
    expected = convert_mmtracking_state_dict(mm_state)
    assert written["model"].keys() == expected.keys()
    assert all(torch.equal(written["model"][k], v) for k, v in expected.items())
    assert [p.name for p in output.parent.iterdir()] == ["qdtrack_r50.pt"]  # no temp file left


def test_bare_state_dict_and_bad_files(mm_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    bare = tmp_path / "bare.pth"
    small = {k: v for k, v in mm_state.items() if k.startswith("track_head.")}
    torch.save(small, bare)
    assert load_mmtracking_checkpoint(bare).keys() == small.keys()

    other = tmp_path / "other.pth"
    torch.save({"model": small}, other)
    with pytest.raises(ValueError, match="no 'state_dict' entry"):
        load_mmtracking_checkpoint(other)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_mmtracking_checkpoint(garbage)
    with pytest.raises(FileNotFoundError):
        load_mmtracking_checkpoint(tmp_path / "absent.pth")


def test_converted_checkpoint_rebuilds_and_runs_the_reference_model(
    mm_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    """The converted file alone rebuilds the R-50 model (strict load) and tracks a frame."""
    from qdtrack.checkpoint import model_from_checkpoint

    # small weights and unit variances keep a random R-50 numerically tame
    tame = {}
    for key, value in mm_state.items():
        if key.endswith("running_var"):
            tame[key] = torch.ones_like(value)
        elif key.endswith("running_mean"):
            tame[key] = torch.zeros_like(value)
        elif value.is_floating_point():
            tame[key] = value * 0.01
        else:
            tame[key] = value
    source = tmp_path / "mm.pth"
    torch.save({"state_dict": tame, "meta": {}}, source)
    output = tmp_path / "qdtrack_r50.pt"
    assert cli_main(["convert-checkpoint", str(source), str(output)]) == 0
    model, config = model_from_checkpoint(output)
    assert (config.model.depth, config.model.style, config.model.img_scale) == (
        50,
        "caffe",
        (1088, 1088),
    )
    layer2 = model.detector.backbone.body.layer2[0]
    assert layer2.conv1.stride == (2, 2) and layer2.conv2.stride == (1, 1)
    # embed head weights are mmtracking's tensors, untouched
    assert torch.equal(
        model.track_head.embed_head.fc_embed.weight, tame["track_head.embed_head.fc_embed.weight"]
    )
    model.eval()
    frame = np.random.default_rng(0).integers(0, 255, size=(96, 160, 3), dtype=np.uint8)
    (det,) = model.predict([frame])
    assert det.embeddings is not None and det.embeddings.shape == (len(det), 256)
    assert len(det) <= 100 and (det.scores > 0.05).all()


def test_mmdet_detector_converts_for_train_init(
    mm_state: dict[str, torch.Tensor], tmp_path: Path, capsys
) -> None:
    """An mmdet Faster R-CNN checkpoint (the reference's COCO-person init) → `train --init`."""
    from qdtrack.checkpoint import load_initial_weights
    from qdtrack.config import ModelConfig
    from qdtrack.model.qdtrack import build_qdtrack

    detector = {k[len("detector.") :]: v for k, v in mm_state.items() if k.startswith("detector.")}
    assert len(detector) == 348
    source = tmp_path / "faster_rcnn_coco_person.pth"
    torch.save({"state_dict": detector, "meta": {}}, source)
    output = tmp_path / "init.pt"
    assert cli_main(["convert-checkpoint", "--from", "mmdet", str(source), str(output)]) == 0
    written = torch.load(output, map_location="cpu", weights_only=True)
    assert all(k.startswith("detector.") for k in written["model"]) and len(written["model"]) == 295
    model = build_qdtrack(ModelConfig())
    load_initial_weights(model, output)
    assert torch.equal(model.detector.backbone.body.conv1.weight, detector["backbone.conv1.weight"])
    # an mmtracking file is not an mmdet detector (and the reverse): refused with the reason
    mm_file = tmp_path / "qdtrack.pth"
    torch.save({"state_dict": mm_state}, mm_file)
    assert cli_main(["convert-checkpoint", "--from", "mmdet", str(mm_file), str(output)]) == 2
    assert cli_main(["convert-checkpoint", str(source), str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "closest layout, Faster R-CNN R-50-FPN detector, 1 class state dict" in err
    assert "closest layout, QDTrack R-50-FPN, 1 class state dict" in err
