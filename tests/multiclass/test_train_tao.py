"""Multi-class training on CPU, the same code path as the R-101 LVIS and TAO configs:
TAO + LVIS sources with labels, the "lvis" augmentation, class-balanced oversampling,
then the TAO fine-tuning step (detector frozen, weights loaded from the first run)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from qdtrack.checkpoint import load_checkpoint, model_from_checkpoint
from qdtrack.config import load_config
from qdtrack.train import build_dataset, run_training

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "model.fpn_channels=32",
    "model.representation_size=64",
    "model.embed_conv_channels=32",
    "model.embed_num_convs=1",
    "model.embed_fc_channels=64",
    "model.embed_channels=32",
    "train.epochs=1",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.max_iters_per_epoch=2",
    "train.lvis_scales=[[192, 112], [224, 128]]",
]


def _config(data: Path, extra: list[str] | None = None):  # type: ignore[no-untyped-def]
    sources = (
        f"train.sources=[{{kind: tao, path: {data}/annotations/train.json, images: {data}}}, "
        f"{{kind: lvis, path: {data}/lvis/annotations.json, images: {data}/lvis/images}}]"
    )
    return load_config(REPO / "configs" / "cpu_tao_synth.yaml", [*TINY, sources, *(extra or [])])


def test_training_sees_every_class(synth_tao: Path) -> None:
    cfg = _config(synth_tao)
    dataset = build_dataset(cfg.train, 224, cfg.model.class_names())
    assert [s.name.split(":")[0] for s in dataset.sources] == ["tao", "lvis"]
    labels: set[int] = set()
    for index in range(0, len(dataset), max(1, len(dataset) // 12)):
        pair = dataset[index]
        labels |= set(pair.key_labels.tolist())
    assert labels == {0, 1, 2}


def test_pretrain_then_finetune_with_a_frozen_detector(synth_tao: Path, tmp_path: Path) -> None:
    first = run_training(_config(synth_tao), tmp_path / "pretrain", device="cpu")
    _, config = model_from_checkpoint(first)
    assert config.model.classes == ("person", "car", "dog")
    assert config.tracker.tracker_type == "tao"
    before = load_checkpoint(first)["model"]

    finetune = _config(synth_tao, ["train.freeze_detector=true", f"train.load_from={first}"])
    second = run_training(finetune, tmp_path / "finetune", device="cpu")
    after = load_checkpoint(second)["model"]
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed, "the track head must train"
    assert all(k.startswith("track_head.") for k in changed), sorted(changed)[:5]
    log = (tmp_path / "finetune" / "losses.csv").read_text().splitlines()
    header = log[0].split(",")
    row = dict(zip(header, log[1].split(","), strict=True))
    assert row["loss_cls"] == "nan" and float(row["loss_track"]) > 0
    assert dataclasses.asdict(model_from_checkpoint(second)[1].model) == dataclasses.asdict(
        config.model
    )
