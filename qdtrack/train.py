"""``qdtrack train``: the training loop (reference a.8), single process or DDP via ``torchrun``.

Shaped like torchvision's detection reference: :func:`train_one_epoch` and :func:`main`.
Checkpoints carry the model, optimizer, scaler, epoch and the whole config, so tracking,
export and resume rebuild everything from the file alone. Losses are appended to
``losses.csv`` (one row per iteration) for ``dvc plots``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from qdtrack.checkpoint import (
    checkpoint_state,
    load_checkpoint,
    load_initial_weights,
    save_checkpoint,
)
from qdtrack.config import (
    QDTrackConfig,
    TrainConfig,
    resolve_classes,
    stage_config,
)
from qdtrack.data.pairs import PairDataset, collate_pairs
from qdtrack.data.sources import load_source
from qdtrack.model.preprocess import NORMALIZATIONS, Normalization
from qdtrack.model.qdtrack import build_qdtrack

LOSSES_CSV = "losses.csv"


class NonFiniteLossError(RuntimeError):
    """Raised when a loss becomes NaN or infinite."""


# ----------------------------------------------------------------------------- schedule


def cpu_bf16_supported() -> bool:
    """True when this CPU runs bfloat16 convolutions natively (oneDNN's check)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(device_type: str, cfg: TrainConfig, bf16_supported: bool) -> torch.dtype | None:
    """The autocast dtype of a training step, or ``None`` for plain float32.

    ``amp`` on CUDA: float16 (with loss scaling). ``cpu_bf16`` on a CPU that supports
    bfloat16 natively: bfloat16 (no scaling; its range is float32's). Anything else: float32.
    """
    if device_type == "cuda" and cfg.amp:
        return torch.float16
    if device_type == "cpu" and cfg.cpu_bf16 and bf16_supported:
        return torch.bfloat16
    return None


def lr_factor(iteration: int, epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr``: linear warm-up over the first iterations, then steps.

    The reference MOT17 config has no warm-up (``warmup_iters = 0``) and multiplies the
    rate by ``lr_gamma`` at each epoch in ``lr_steps`` (reference a.8).
    """
    factor = cfg.lr_gamma ** sum(1 for step in cfg.lr_steps if epoch >= step)
    if cfg.warmup_iters > 0 and iteration < cfg.warmup_iters:
        ratio = cfg.warmup_ratio + (1.0 - cfg.warmup_ratio) * iteration / cfg.warmup_iters
        factor *= ratio
    return factor


# ----------------------------------------------------------------------------- data


def build_dataset(
    cfg: TrainConfig, img_scale: int, class_names: Sequence[str] = ("pedestrian",)
) -> PairDataset:
    """Concatenate the configured sources into one pair dataset."""
    if not cfg.sources:
        raise ValueError("train.sources is empty: name at least one training source")
    sources = [load_source(src, class_names) for src in cfg.sources]
    return PairDataset(
        sources,
        img_scale=img_scale,
        frame_range=cfg.frame_range,
        seed=cfg.seed,
        augment=cfg.augment,
        lvis_scales=cfg.lvis_scales,
        oversample_thr=cfg.oversample_thr,
    )


# ----------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistInfo:
    """Process-group facts (a single process has rank 0 of world size 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group ``torchrun`` describes through its environment variables."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world_size, local_rank)


def reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar logs over the processes (for logging only)."""
    if info.world_size == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


# ----------------------------------------------------------------------------- checkpoints


def save_training_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    iteration: int,
    config: QDTrackConfig,
) -> None:
    """Write a resumable checkpoint atomically (``epoch`` = epochs completed)."""
    state = checkpoint_state(
        _unwrap(model),
        config,
        optimizer=optimizer.state_dict(),
        scaler=scaler.state_dict(),
        epoch=epoch,
        iteration=iteration,
    )
    save_checkpoint(path, state)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------- loop


class LossLog:
    """Appends one CSV row per iteration: ``step, epoch, lr, loss, <named losses>``."""

    def __init__(self, path: Path, loss_names: Iterable[str], *, append: bool) -> None:
        self.path = path
        self.columns = ["step", "epoch", "lr", "loss", *sorted(loss_names)]
        fresh = not append or not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("w" if fresh else "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        if fresh:
            self._writer.writerow(self.columns)

    def write(self, step: int, epoch: int, lr: float, losses: dict[str, float]) -> None:
        row = [step, epoch, f"{lr:.6g}", f"{sum(losses.values()):.6f}"]
        row += [f"{losses.get(k, float('nan')):.6f}" for k in self.columns[4:]]
        self._writer.writerow(row)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    *,
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler,
    start_iteration: int,
    log: LossLog | None,
    info: DistInfo,
) -> tuple[dict[str, float], int]:
    """One pass over ``loader``; returns the mean losses and the global iteration count.

    Raises:
        NonFiniteLossError: a loss became NaN or infinite (nothing is stepped then).
    """
    model.train()
    dtype = autocast_dtype(device.type, cfg, device.type == "cpu" and cpu_bf16_supported())
    iteration = start_iteration
    totals: dict[str, float] = {}
    count = 0
    limit = cfg.max_iters_per_epoch or len(loader)
    bar = tqdm(
        total=min(limit, len(loader)),
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not info.is_main,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for batch_index, batch in enumerate(loader):
        if batch_index >= limit:
            break
        factor = lr_factor(iteration, epoch, cfg)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * factor
        generator = torch.Generator().manual_seed(
            hash((cfg.seed, epoch, batch_index, info.rank)) % 2**63
        )
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            losses = model(batch.to(device), generator)
        loss = sum(losses.values())
        values = {k: float(v.detach()) for k, v in losses.items()}
        if not all(math.isfinite(v) for v in values.values()):
            bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
            raise NonFiniteLossError(
                f"non-finite loss at epoch {epoch + 1}, iteration {iteration}: {bad}"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(_unwrap(model).parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        values = reduce_mean(values, info)
        if log is not None:
            log.write(iteration, epoch, cfg.lr * factor, values)
        for k, v in values.items():
            totals[k] = totals.get(k, 0.0) + v
        count += 1
        iteration += 1
        bar.set_postfix(loss=f"{sum(values.values()):.3f}", lr=f"{cfg.lr * factor:.2g}")
        bar.update()
    bar.close()
    return {k: v / max(count, 1) for k, v in totals.items()}, iteration


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _make_loader(
    dataset: PairDataset,
    cfg: TrainConfig,
    info: DistInfo,
    epoch: int,
    normalization: Normalization = NORMALIZATIONS["caffe"],
) -> DataLoader:
    per_process = max(1, cfg.batch_size // info.world_size)
    sampler: DistributedSampler | RandomSampler
    if info.world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed
        )
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed + epoch))
    return DataLoader(
        dataset,
        batch_size=per_process,
        sampler=sampler,
        num_workers=cfg.num_workers,
        collate_fn=functools.partial(collate_pairs, normalization=normalization),
        drop_last=len(dataset) >= per_process,
    )


def run_training(
    config: QDTrackConfig,
    out_dir: Path,
    *,
    device: str | None = None,
    resume: bool = False,
    init_weights: str | None = None,
) -> Path:
    """Train with ``config``; checkpoints and ``losses.csv`` go to ``out_dir``.

    Returns:
        The path of the final checkpoint (``out_dir/last.pt``).
    """
    config = dataclasses.replace(config, model=resolve_classes(config.model))
    cfg = config.train
    torch.set_flush_denormal(True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info = init_distributed(dev.type)
    if dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    _seed_everything(cfg.seed)

    dataset = build_dataset(cfg, int(max(config.model.img_scale)), config.model.class_names())
    model = build_qdtrack(config.model).to(dev)
    init_weights = init_weights or cfg.load_from
    if init_weights:
        load_initial_weights(model, init_weights)
    if cfg.freeze_detector:
        model.freeze_detector()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp and dev.type == "cuda")
    if dev.type == "cpu" and cfg.cpu_bf16 and info.is_main:
        sys.stderr.write(
            "train: bfloat16 autocast on this CPU\n"
            if cpu_bf16_supported()
            else "train: cpu_bf16 is set but this CPU has no native bfloat16; training in "
            "float32 (slower)\n"
        )
    start_epoch, iteration = 0, 0
    last = out_dir / "last.pt"
    if resume and last.exists():
        state = load_checkpoint(last)
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
    train_model: nn.Module = model
    if info.world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=True,
        )

    # The same columns with a frozen detector (its losses are then empty cells: NaN).
    loss_names = [
        "loss_rpn_cls",
        "loss_rpn_bbox",
        "loss_cls",
        "loss_bbox",
        "loss_track",
        "loss_track_aux",
    ]
    log = LossLog(out_dir / LOSSES_CSV, loss_names, append=resume) if info.is_main else None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            dataset.set_epoch(epoch)
            loader = _make_loader(dataset, cfg, info, epoch, model.detector.normalization)
            start = time.perf_counter()
            try:
                means, iteration = train_one_epoch(
                    train_model,
                    optimizer,
                    loader,
                    dev,
                    epoch,
                    cfg=cfg,
                    scaler=scaler,
                    start_iteration=iteration,
                    log=log,
                    info=info,
                )
            except NonFiniteLossError as exc:
                kept = f"; the last good checkpoint is {last}" if last.exists() else ""
                raise NonFiniteLossError(f"{exc}{kept}. Lower train.lr or add warm-up.") from None
            if info.is_main:
                save_training_checkpoint(
                    last,
                    model=model,
                    optimizer=optimizer,
                    scaler=scaler,
                    epoch=epoch + 1,
                    iteration=iteration,
                    config=config,
                )
                summary = " ".join(f"{k}={v:.4f}" for k, v in sorted(means.items()))
                sys.stderr.write(
                    f"epoch {epoch + 1}/{cfg.epochs} done in "
                    f"{time.perf_counter() - start:.0f}s: {summary}\n"
                )
    finally:
        if log is not None:
            log.close()
        if info.world_size > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    return last


def main(args: argparse.Namespace) -> int:
    """``qdtrack train``."""
    config = stage_config(args.config, args.set)
    try:
        path = run_training(
            config,
            Path(args.out),
            device=args.device,
            resume=args.resume,
            init_weights=args.init,
        )
    except NonFiniteLossError as exc:
        sys.stderr.write(f"qdtrack train: stopped: {exc}\n")
        return 1
    sys.stdout.write(f"train: wrote {path}\n")
    if args.model_output:
        target = Path(args.model_output)
        target.mkdir(parents=True, exist_ok=True)
        for name in (path.name, LOSSES_CSV):
            if (path.parent / name).is_file():
                shutil.copy2(path.parent / name, target / name)
        sys.stdout.write(f"train: copied {path.name} to {target}\n")
    return 0
