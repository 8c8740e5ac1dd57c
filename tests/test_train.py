"""Training: loss falls, exact resume, non-finite stop, configs, DDP with two CPU processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qdtrack.cli import main as cli
from qdtrack.config import TrainConfig, load_config
from qdtrack.data.pairs import collate_pairs
from qdtrack.model.qdtrack import build_qdtrack
from qdtrack.train import (
    NonFiniteLossError,
    autocast_dtype,
    build_dataset,
    cpu_bf16_supported,
    lr_factor,
    run_training,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _flush_denormal() -> None:
    torch.set_flush_denormal(True)


def _losses(path: Path) -> list[float]:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    col = header.index("loss")
    return [float(line.split(",")[col]) for line in lines[1:]]


def test_every_config_file_loads() -> None:
    for name in ["params.yaml", *sorted(os.listdir(REPO / "configs"))]:
        path = REPO / name if name == "params.yaml" else REPO / "configs" / name
        cfg = load_config(path)
        assert cfg.train.sources, name
    ref = load_config(REPO / "configs" / "qdtrack_r50_mot17_half.yaml")
    assert (ref.model.depth, ref.model.img_scale, ref.train.epochs, ref.train.batch_size) == (
        50,
        (1088, 1088),
        4,
        16,
    )
    assert (ref.train.lr, ref.train.lr_steps, ref.train.warmup_iters) == (0.02, (3,), 0)


def test_config_errors_and_overrides(tmp_path: Path) -> None:
    cfg = load_config(REPO / "params.yaml", ["train.lr=0.5", "model.depth=34"])
    assert cfg.train.lr == 0.5 and cfg.model.depth == 34
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {learning_rate: 1}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: train\.learning_rate: unknown key"):
        load_config(bad)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_config(REPO / "params.yaml", ["train.lr"])
    with pytest.raises(ValueError, match=r"train\.lr is a value, not a block"):
        load_config(REPO / "params.yaml", ["train.lr.x=1"])
    # the list form of --set (one argument holding every override, as a pipeline passes)
    listed = load_config(REPO / "params.yaml", ['["train.lr=0.5", "model.depth=34"]'])
    assert listed == cfg


def test_lr_schedule_warmup_and_steps() -> None:
    cfg = load_config(REPO / "configs" / "qdtrack_r50_mot17_half.yaml").train
    assert lr_factor(0, 0, cfg) == 1.0  # the reference has no warm-up
    assert lr_factor(10_000, 3, cfg) == pytest.approx(0.1)
    warm = load_config(REPO / "params.yaml").train
    assert lr_factor(0, 0, warm) == pytest.approx(warm.warmup_ratio)
    assert lr_factor(warm.warmup_iters, 0, warm) == 1.0


def test_losses_fall_on_a_short_cpu_run(tiny_workspace: Path, tmp_path: Path) -> None:
    cfg = load_config(
        tiny_workspace / "params.yaml",
        ["train.epochs=6", "train.max_iters_per_epoch=5", "train.lr=0.02"],
    )
    run_training(cfg, tmp_path, device="cpu")
    losses = _losses(tmp_path / "losses.csv")
    assert len(losses) == 30
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_autocast_dtype_per_device_and_setting() -> None:
    amp, bf16 = TrainConfig(amp=True), TrainConfig(amp=False, cpu_bf16=True)
    assert autocast_dtype("cuda", amp, bf16_supported=False) is torch.float16
    assert autocast_dtype("cpu", amp, bf16_supported=True) is None  # amp is CUDA float16 only
    assert autocast_dtype("cpu", bf16, bf16_supported=True) is torch.bfloat16
    assert autocast_dtype("cpu", bf16, bf16_supported=False) is None  # no native bf16: float32
    assert autocast_dtype("cuda", bf16, bf16_supported=True) is None
    assert autocast_dtype("cpu", TrainConfig(amp=False), bf16_supported=True) is None


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bfloat16")
def test_bf16_autocast_run_has_float32_losses_and_weights(
    tiny_workspace: Path, tmp_path: Path, capfd
) -> None:
    cfg = load_config(
        tiny_workspace / "params.yaml",
        ["train.epochs=6", "train.max_iters_per_epoch=5", "train.lr=0.02", "train.cpu_bf16=true"],
    )
    last = run_training(cfg, tmp_path, device="cpu")
    assert "bfloat16 autocast on this CPU" in capfd.readouterr().err
    losses = _losses(tmp_path / "losses.csv")
    assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
    first, final = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert final < 0.8 * first, (first, final)
    weights = torch.load(last, weights_only=True)["model"]
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


def test_losses_are_float32_under_bf16_autocast(tiny_workspace: Path) -> None:
    cfg = load_config(tiny_workspace / "params.yaml")
    dataset = build_dataset(cfg.train, int(max(cfg.model.img_scale)), cfg.model.class_names())
    torch.manual_seed(0)
    model = build_qdtrack(cfg.model)
    batch = collate_pairs([dataset[0], dataset[1]], normalization=model.detector.normalization)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(batch, torch.Generator().manual_seed(0))
    assert set(losses) >= {"loss_rpn_cls", "loss_cls", "loss_bbox", "loss_track"}
    assert {k: v.dtype for k, v in losses.items()} == dict.fromkeys(losses, torch.float32)


def test_resume_continues_exactly(tiny_workspace: Path, tmp_path: Path) -> None:
    cfg = load_config(tiny_workspace / "params.yaml")
    straight = run_training(cfg, tmp_path / "a", device="cpu")
    one = load_config(tiny_workspace / "params.yaml", ["train.epochs=1"])
    run_training(one, tmp_path / "b", device="cpu")
    resumed = run_training(cfg, tmp_path / "b", device="cpu", resume=True)
    a = torch.load(straight, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["iteration"] == b["iteration"] == 6
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert _losses(tmp_path / "a" / "losses.csv") == _losses(tmp_path / "b" / "losses.csv")
    assert b["config"]["train"]["epochs"] == 2  # the checkpoint carries its config


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_workspace: Path, tmp_path: Path, capsys
) -> None:
    params = tiny_workspace / "params.yaml"
    assert (
        cli(["train", "--config", str(params), "--out", str(tmp_path), "--set", "train.epochs=1"])
        == 0
    )
    good = torch.load(tmp_path / "last.pt", weights_only=True)
    rc = cli(
        [
            "train",
            "--config",
            str(params),
            "--out",
            str(tmp_path),
            "--resume",
            "--set",
            "train.lr=1e12",
            "--set",
            "train.warmup_iters=0",
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "last good checkpoint" in err
    kept = torch.load(tmp_path / "last.pt", weights_only=True)
    assert kept["epoch"] == good["epoch"] == 1
    with pytest.raises(NonFiniteLossError):
        cfg = load_config(params, ["train.lr=1e12", "train.warmup_iters=0"])
        run_training(cfg, tmp_path / "fresh", device="cpu")
    assert not (tmp_path / "fresh" / "last.pt").exists()


def test_missing_training_data_is_a_clear_error(tmp_path: Path, capsys) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("train:\n  sources:\n    - {kind: mot, path: nowhere/train}\n")
    assert cli(["train", "--config", str(params), "--out", str(tmp_path / "o")]) == 2
    assert "training source not found" in capsys.readouterr().err


def test_ddp_two_cpu_processes_with_gloo(tiny_workspace: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "qdtrack.cli",
        "train",
        "--config",
        str(tiny_workspace / "params.yaml"),
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--set",
        "train.epochs=1",
        "--set",
        "train.max_iters_per_epoch=2",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["iteration"] == 2
    assert len(_losses(tmp_path / "losses.csv")) == 2  # rank 0 logs the averaged losses


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tracker.no_such_key=1", "params.yaml with --set: tracker.no_such_key: unknown key"),
        ("train.epochs=abc", "with --set: train.epochs: expected an integer, got 'abc'"),
        ("train.amp=maybe", "train.amp: expected true or false"),
        ("model.style=tf", "model.style: expected one of 'caffe', 'pytorch'"),
        ("evaluate.benchmark=KITTI", "evaluate.benchmark: expected one of"),
        ("nosuchblock.x=1", "unknown block nosuchblock"),
    ],
)
def test_every_stage_names_the_bad_key_and_exits_2(
    override: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each stage reads --config/--set the same way; a bad setting stops it before any work."""
    stages = [
        ["train", "--out", "unused"],
        ["data", "prepare", "--out", "unused"],
        ["gate", "--candidate", "unused.json"],
        ["evaluate", "--config", str(REPO / "params.yaml"), "--gt", "x", "--results", "y"],
    ]
    for stage in stages:
        argv = [*stage, "--set", override]
        if "--config" not in argv:
            argv += ["--config", str(REPO / "params.yaml")]
        assert cli(argv) == 2, stage
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (stage, err)
