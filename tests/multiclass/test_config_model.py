"""Multi-class settings end to end through config, model and tracker construction: the
TAO tracker type, class names, the reference d.3 detector settings, RGB ImageNet normalisation
and the frozen-detector (TAO fine-tuning) mode."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from qdtrack.config import ModelConfig, config_from_dict, load_config, resolve_classes
from qdtrack.model.inputs import PairOrigin, TrainBatch
from qdtrack.model.preprocess import ImageBatch, batch_images, normalize_image
from qdtrack.model.qdtrack import build_qdtrack
from qdtrack.trackers import (
    QuasiDenseTAOTracker,
    QuasiDenseTracker,
    QuasiDenseTrackerSettings,
    TAOTrackerSettings,
    build_tracker,
)

REPO = Path(__file__).resolve().parents[2]
SMALL = {
    "depth": 18,
    "img_scale": [128, 128],
    "norm_eval": False,
    "frozen_stages": -1,
    "fpn_channels": 32,
    "representation_size": 64,
    "roi_sampling_ratio": 1,
    "embed_conv_channels": 32,
    "embed_num_convs": 1,
    "embed_fc_channels": 64,
    "embed_channels": 32,
}


def test_tao_configs_carry_the_spec_d3_settings() -> None:
    for name in ("cpu_tao_synth.yaml", "qdtrack_r101_lvis_coco.yaml", "qdtrack_r101_tao.yaml"):
        cfg = load_config(REPO / "configs" / name)
        m = cfg.model
        assert (m.score_thr, m.max_per_img, m.nms_iou_thr) == (1e-4, 300, 0.5), name
        assert m.clip_border and m.track_neg_iou_thr == 0.3, name
        assert cfg.tracker == TAOTrackerSettings(), name  # the TAO defaults, written out
        assert cfg.train.augment == "lvis", name
    lvis = load_config(REPO / "configs" / "qdtrack_r101_lvis_coco.yaml")
    assert (lvis.model.depth, lvis.model.num_classes, lvis.model.style) == (101, 482, "pytorch")
    assert lvis.model.normalization == "pytorch" and lvis.train.oversample_thr == 1e-3
    assert (lvis.train.epochs, lvis.train.lr_steps, lvis.train.warmup_iters) == (24, (16, 22), 1000)
    tao = load_config(REPO / "configs" / "qdtrack_r101_tao.yaml")
    assert tao.train.freeze_detector and tao.train.frame_range == 1 and tao.train.lr == 0.002
    assert (tao.train.epochs, tao.train.lr_steps) == (12, (8, 11))
    assert tao.train.load_from == "runs/lvis/last.pt"


def test_tracker_type_picks_the_tracker() -> None:
    mot = config_from_dict({})
    assert isinstance(mot.tracker, QuasiDenseTrackerSettings)
    assert isinstance(build_tracker(mot.tracker), QuasiDenseTracker)
    tao = config_from_dict({"tracker": {"type": "tao", "memo_tracklet_frames": 4}})
    tracker = build_tracker(tao.tracker)
    assert isinstance(tracker, QuasiDenseTAOTracker)
    assert tracker.settings.memo_tracklet_frames == 4
    assert tao.to_dict()["tracker"]["type"] == "tao"  # a checkpoint rebuilds the same tracker
    assert config_from_dict(tao.to_dict()).tracker == tao.tracker
    with pytest.raises(ValueError, match=r"tracker\.type"):
        config_from_dict({"tracker": {"type": "sort"}})
    with pytest.raises(ValueError, match=r"tracker\.nms_conf_thr: unknown key"):
        config_from_dict({"tracker": {"type": "tao", "nms_conf_thr": 0.5}})  # a MOT17 key


def test_class_names_inline_and_from_a_file(tmp_path: Path) -> None:
    assert ModelConfig().class_names() == ("pedestrian",)
    cfg = config_from_dict({"model": {"num_classes": 2, "classes": ["person", "car"]}})
    assert cfg.model.class_names() == ("person", "car")
    with pytest.raises(ValueError, match="num_classes = 3 but classes lists 2"):
        config_from_dict({"model": {"num_classes": 3, "classes": ["person", "car"]}})
    with pytest.raises(ValueError, match="duplicate"):
        config_from_dict({"model": {"num_classes": 2, "classes": ["car", "car"]}})
    names = tmp_path / "classes.txt"
    names.write_text("person\ncar\n\ndog\n")
    lazy = config_from_dict({"model": {"num_classes": 3, "classes_file": str(names)}})
    assert lazy.model.classes == ()  # read when training starts, not when the file loads
    resolved = resolve_classes(lazy.model)
    assert resolved.classes == ("person", "car", "dog") and resolved.classes_file is None
    wrong = dataclasses.replace(lazy.model, num_classes=4)
    with pytest.raises(ValueError, match="num_classes = 4"):
        resolve_classes(wrong)
    with pytest.raises(FileNotFoundError):
        resolve_classes(dataclasses.replace(lazy.model, classes_file=str(tmp_path / "no.txt")))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"train": {"augment": "mosaic"}}, "train.augment"),
        ({"train": {"lvis_scales": [640, 800]}}, "lvis_scales"),
        ({"train": {"sources": [{"kind": "voc", "path": "x"}]}}, r"sources\[0\]\.kind: expected"),
    ],
)
def test_bad_multiclass_settings_are_refused(section: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict(section)


def test_detector_settings_reach_the_network() -> None:
    cfg = ModelConfig(
        **{**SMALL, "img_scale": (128, 128)},
        num_classes=3,
        score_thr=1e-4,
        max_per_img=300,
        nms_iou_thr=0.6,
        clip_border=True,
        track_neg_iou_thr=0.3,
        normalization="pytorch",
    )
    model = build_qdtrack(cfg)
    heads = model.detector.roi_heads
    assert (heads.score_thr, heads.max_per_img, heads.nms_iou_thr) == (1e-4, 300, 0.6)
    assert heads.clip_border and model.detector.rpn.clip_border
    assert heads.num_classes == 3 and model.track_head.neg_iou_thr == 0.3
    assert model.detector.normalization.to_rgb
    with pytest.raises(ValueError, match="normalization"):
        build_qdtrack(dataclasses.replace(cfg, normalization="imagenet"))


def test_pytorch_normalization_is_rgb_imagenet() -> None:
    image = torch.tensor([[[10.0]], [[20.0]], [[30.0]]])  # B, G, R
    out = normalize_image(
        image, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), to_rgb=True
    )
    expected = [(30 - 123.675) / 58.395, (20 - 116.28) / 57.12, (10 - 103.53) / 57.375]
    np.testing.assert_allclose(out.flatten().numpy(), expected, rtol=1e-6)
    caffe = normalize_image(image)
    np.testing.assert_allclose(caffe.flatten().numpy(), [10 - 103.53, 20 - 116.28, 30 - 123.675])


def _batch(labels: list[int]) -> TrainBatch:
    rng = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 96, 128), generator=rng).float() for _ in range(2)]

    def stack() -> ImageBatch:
        return batch_images(images)

    boxes = torch.tensor([[10.0, 10.0, 50.0, 80.0], [60.0, 20.0, 120.0, 60.0]])
    ids = torch.tensor([1, 2])
    lab = torch.tensor(labels)
    origin = PairOrigin("s", "v", 1, 2, Path("a.jpg"), Path("b.jpg"))
    return TrainBatch(
        key_images=stack(),
        ref_images=stack(),
        key_boxes_xyxy=[boxes, boxes],
        key_labels=[lab, lab],
        key_instance_ids=[ids, ids],
        ref_boxes_xyxy=[boxes, boxes],
        ref_labels=[lab, lab],
        ref_instance_ids=[ids, ids],
        gt_match_indices=[torch.tensor([0, 1])] * 2,
        origins=[origin, origin],
    )


def test_labels_reach_the_detector_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mmdetection 3 bug zeroes every key label before the losses; ours must not."""
    model = build_qdtrack(ModelConfig(**SMALL, num_classes=3)).train()
    seen: list[torch.Tensor] = []
    original = model.detector.forward_train

    def spy(batch, targets, generator=None):  # type: ignore[no-untyped-def]
        seen.extend(t["labels"] for t in targets)
        return original(batch, targets, generator)

    monkeypatch.setattr(model.detector, "forward_train", spy)
    losses = model.forward_train(_batch([2, 1]))
    assert [t.tolist() for t in seen] == [[2, 1], [2, 1]]
    assert torch.isfinite(losses["loss_cls"])
    # The classification loss depends on the labels: other labels, another loss.
    torch.manual_seed(0)
    again = build_qdtrack(ModelConfig(**SMALL, num_classes=3)).train()
    again.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(1)
    a = model.forward_train(_batch([2, 1]), gen)["loss_cls"]
    gen = torch.Generator().manual_seed(1)
    b = again.forward_train(_batch([0, 0]), gen)["loss_cls"]
    assert not torch.isclose(a, b)


def test_frozen_detector_trains_the_track_head_only() -> None:
    model = build_qdtrack(ModelConfig(**SMALL, num_classes=3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.freeze_detector()
    model.train()
    assert not model.detector.training and model.track_head.training
    assert not any(p.requires_grad for p in model.detector.parameters())
    losses = model.forward_train(_batch([2, 1]))
    assert set(losses) == {"loss_track", "loss_track_aux"}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1)
    sum(losses.values()).backward()  # type: ignore[union-attr]
    optimizer.step()
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("track_head.") for k in changed)
