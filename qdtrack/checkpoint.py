"""Project checkpoints: one format, written and read here only.

A checkpoint is a ``torch.save`` dict ``{"format", "model", "config", ...}``: the weights
(``state_dict``), the full configuration they were trained with (``QDTrackConfig.to_dict``)
and, from ``qdtrack train``, the optimizer state to resume; ``qdtrack convert-checkpoint``
adds where the weights came from (``source``). :func:`load_checkpoint` refuses anything
else with a message that says what the file is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qdtrack.config import ModelConfig, QDTrackConfig, config_from_dict
from qdtrack.io_utils import atomic_write
from qdtrack.model.qdtrack import QDTrack, build_qdtrack

#: Written into every checkpoint and checked on load.
CHECKPOINT_FORMAT = "qdtrack-ops/1"


def checkpoint_state(
    weights: nn.Module | Mapping[str, torch.Tensor],
    config: QDTrackConfig | Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The checkpoint dict of a model (or its ``state_dict``) and its configuration.

    Args:
        weights: the network, or its state dict.
        config: the configuration the weights belong to (or its ``to_dict()``).
        **extra: further entries (optimizer state, epoch, source ...).
    """
    model = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    plain = dict(config) if isinstance(config, Mapping) else config.to_dict()
    return {"format": CHECKPOINT_FORMAT, "model": model, "config": plain, **extra}


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """Write a checkpoint dict (from :func:`checkpoint_state`) atomically."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("build the checkpoint with checkpoint_state()")
    with atomic_write(Path(path), "wb") as handle:
        torch.save(dict(state), handle)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a project checkpoint (trained here or converted from mmtracking).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a checkpoint of this format (the message says what it is).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: checkpoint not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a foreign or broken file
        raise ValueError(f"{p}: not a readable checkpoint: {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        hint = ""
        if isinstance(state, dict) and ("state_dict" in state or "meta" in state):
            hint = "; an mmtracking/mmdet file: convert it with qdtrack convert-checkpoint"
        raise ValueError(f"{p}: not a qdtrack checkpoint (needs 'model' and 'config'){hint}")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{p}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT!r} "
            "(re-convert or re-train it with this version)"
        )
    return state


def checkpoint_config(state: Mapping[str, Any], path: str | Path) -> QDTrackConfig:
    """The configuration a checkpoint (from :func:`load_checkpoint`) was trained with."""
    return config_from_dict(state["config"], f"{path}: config")


def model_from_state(state: Mapping[str, Any], model_config: ModelConfig) -> QDTrack:
    """Build the network for ``model_config`` and load a checkpoint's weights strictly."""
    model = build_qdtrack(model_config)
    model.load_state_dict(state["model"], strict=True)
    return model


def model_from_checkpoint(path: str | Path) -> tuple[QDTrack, QDTrackConfig]:
    """Rebuild the network from a checkpoint's own config and load its weights strictly."""
    state = load_checkpoint(path)
    config = checkpoint_config(state, path)
    return model_from_state(state, config.model), config


def load_initial_weights(model: QDTrack, path: str | Path) -> None:
    """Start from a checkpoint's weights: all of them, or a detector-only checkpoint.

    A checkpoint without ``track_head.*`` keys (a detector trained elsewhere, e.g. the
    reference's COCO-person Faster R-CNN) initialises the detector and leaves the track
    head at its initialisation; any other mismatch is an error naming the keys.
    """
    state = load_checkpoint(path)
    result = model.load_state_dict(state["model"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("track_head.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: weights do not fit this model: missing {missing[:10]} "
            f"({len(missing)}), unexpected {result.unexpected_keys[:10]} "
            f"({len(result.unexpected_keys)})"
        )
