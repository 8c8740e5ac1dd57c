"""Converting both published layouts: R-50 / 1 class and R-101 / 482 classes (LVIS, TAO)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from qdtrack.checkpoint import load_checkpoint
from qdtrack.cli import main as cli
from qdtrack.config import config_from_dict
from qdtrack.convert import (
    LAYOUTS,
    REFERENCE_R101_TAO_CONFIG,
    convert_mmtracking_state_dict,
    expected_mmtracking_shapes,
    mmtracking_layout,
)
from qdtrack.model.qdtrack import build_qdtrack

from .published import CLS, REG, Layout, r50_layout, r101_layout, tao_class_names

REPO = Path(__file__).resolve().parents[2]
TV_CLS = "detector.roi_heads.box_predictor.cls_score"
TV_REG = "detector.roi_heads.box_predictor.bbox_pred"


def meta_state(layout: Layout) -> dict[str, torch.Tensor]:
    """The layout's keys as meta tensors (no memory), the box head with real values."""
    state = {
        key: torch.empty(shape, dtype=dtype, device="meta")
        for key, (shape, dtype) in layout.items()
    }
    generator = torch.Generator().manual_seed(0)
    for key in (f"{CLS}.weight", f"{CLS}.bias", f"{REG}.weight", f"{REG}.bias"):
        state[key] = torch.randn(layout[key][0], generator=generator)
    return state


def test_r101_layout_from_facts_equals_the_module_definitions() -> None:
    derived = r101_layout()
    expected = expected_mmtracking_shapes(101, 482)
    assert list(expected) == list(derived)  # same keys in the same (state_dict) order
    assert expected == {key: shape for key, (shape, _) in derived.items()}
    assert len(expected) == 670 and sum(k.startswith("detector.") for k in expected) == 654
    assert expected_mmtracking_shapes() == {k: s for k, (s, _) in r50_layout().items()}


@pytest.mark.parametrize(("depth", "classes"), sorted(LAYOUTS))
def test_each_layout_converts_and_loads_strictly(depth: int, classes: int) -> None:
    layout = r50_layout() if depth == 50 else r101_layout()
    state = meta_state(layout)
    assert mmtracking_layout(state) is LAYOUTS[(depth, classes)]
    converted = convert_mmtracking_state_dict(state)
    config = config_from_dict(LAYOUTS[(depth, classes)].config)
    with torch.device("meta"):
        model = build_qdtrack(config.model)
    model.load_state_dict(converted, strict=True, assign=True)
    # background row first, class rows after it in order; four zero background deltas
    mm_cls, tv_cls = state[f"{CLS}.weight"], converted[f"{TV_CLS}.weight"]
    assert tv_cls.shape == (classes + 1, 1024)
    assert torch.equal(tv_cls[0], mm_cls[-1]) and torch.equal(tv_cls[1:], mm_cls[:-1])
    mm_reg, tv_reg = state[f"{REG}.bias"], converted[f"{TV_REG}.bias"]
    assert tv_reg.shape == (4 * (classes + 1),)
    assert not tv_reg[:4].any() and torch.equal(tv_reg[4:], mm_reg)
    # numerically: the same class probabilities and per-class deltas from the same features
    features = torch.randn(3, 1024)
    mm_prob = (features @ mm_cls.t() + state[f"{CLS}.bias"]).softmax(1)
    tv_prob = (features @ tv_cls.t() + converted[f"{TV_CLS}.bias"]).softmax(1)
    torch.testing.assert_close(tv_prob[:, 1:], mm_prob[:, :-1])
    torch.testing.assert_close(tv_prob[:, 0], mm_prob[:, -1])
    mm_deltas = features @ state[f"{REG}.weight"].t() + mm_reg
    tv_deltas = features @ converted[f"{TV_REG}.weight"].t() + tv_reg
    torch.testing.assert_close(tv_deltas[:, 4:], mm_deltas)


def test_other_layouts_are_refused_with_the_offending_keys() -> None:
    coco = meta_state(r101_layout(num_classes=80))
    with pytest.raises(ValueError) as info:
        mmtracking_layout(coco)
    message = str(info.value)
    assert "closest layout, QDTrack R-101-FPN, 482 classes state dict (670 keys)" in message
    assert (
        "wrong shapes 4:" in message
        and "fc_cls.weight (81, 1024) (expected (483, 1024))" in message
    )
    assert "Supported layouts: QDTrack R-50-FPN, 1 class (MOT17 pedestrian); " in message
    # an R-101 with one class (no such published file) and an R-152-like backbone
    with pytest.raises(ValueError, match=r"wrong shapes 4: .*fc_reg\.weight \(4, 1024\)"):
        mmtracking_layout(meta_state(r101_layout(num_classes=1)))
    deeper = dict(meta_state(r101_layout()))
    deeper["detector.backbone.layer3.23.conv1.weight"] = torch.empty(256, 1024, 1, 1, device="meta")
    with pytest.raises(
        ValueError, match=r"unexpected keys 1: detector\.backbone\.layer3\.23\.conv1"
    ):
        convert_mmtracking_state_dict(deeper)
    detector = {k: v for k, v in meta_state(r101_layout()).items() if k.startswith("detector.")}
    assert mmtracking_layout(detector, detector_only=True) is LAYOUTS[(101, 482)]


def test_tao_settings_equal_the_repository_config() -> None:
    """The config a converted R-101 file carries is configs/qdtrack_r101_tao.yaml's."""
    params = yaml.safe_load((REPO / "configs" / "qdtrack_r101_tao.yaml").read_text())
    converted = config_from_dict(REFERENCE_R101_TAO_CONFIG).to_dict()
    from_yaml = config_from_dict(params).to_dict()
    for paths in ("backbone_weights_path", "classes_file"):
        from_yaml["model"][paths] = converted["model"][paths]
    assert converted["model"] == from_yaml["model"]
    assert converted["tracker"] == from_yaml["tracker"]
    train_keys = set(from_yaml["train"]) - {"sources", "load_from", "batch_size", "num_workers"}
    assert {k: converted["train"][k] for k in train_keys} == {
        k: from_yaml["train"][k] for k in train_keys
    }


def _save_r101(path: Path, meta: dict[str, object]) -> None:
    generator = torch.Generator().manual_seed(1)
    state = {
        key: torch.randn(shape, generator=generator).to(dtype)
        if dtype.is_floating_point
        else torch.zeros(shape, dtype=dtype)
        for key, (shape, dtype) in r101_layout().items()
    }
    torch.save({"state_dict": state, "meta": meta}, path)


def test_convert_checkpoint_cli_takes_class_names_from_meta_or_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tao.pth"
    _save_r101(source, {"CLASSES": tao_class_names(), "epoch": 12})
    out = tmp_path / "tao.pt"
    assert cli(["convert-checkpoint", str(source), str(out)]) == 0
    written = load_checkpoint(out)
    assert tuple(written["config"]["model"]["classes"]) == tao_class_names()
    assert written["source"]["classes"] == "checkpoint meta"
    assert written["source"]["layout"] == "QDTrack R-101-FPN, 482 classes"
    assert len(written["model"]) == 670 - 104  # FrozenBatchNorm2d: no num_batches_tracked
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"name_{i}" for i in range(482)) + "\n")
    assert cli(["convert-checkpoint", "--classes-file", str(names), str(source), str(out)]) == 0
    assert load_checkpoint(out)["config"]["model"]["classes"][481] == "name_481"
    names.write_text("a\nb\n")
    assert cli(["convert-checkpoint", "--classes-file", str(names), str(source), str(out)]) == 2
    assert "2 class names given for a 482-class checkpoint" in capsys.readouterr().err
    # without meta CLASSES: converted, names unknown (labels shown as class_<i>)
    _save_r101(source, {})
    assert cli(["convert-checkpoint", str(source), str(out)]) == 0
    written = load_checkpoint(out)
    assert written["config"]["model"]["classes"] == [] and written["source"]["classes"] == "unknown"
    assert config_from_dict(written["config"]).model.class_names()[7] == "class_7"
