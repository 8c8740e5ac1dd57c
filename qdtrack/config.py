"""``params.yaml`` (and the files in ``configs/``) as frozen, typed configuration objects.

Config is an adapter at the edge: each section's fields are exactly the keyword arguments
of the object it configures (``build_qdtrack(**asdict(cfg.model))``,
``QuasiDenseTracker(**asdict(cfg.tracker))``), so nothing else in the package reads YAML.
Overrides use dotted keys (``train.lr=0.01``), as ``dvc exp run -S`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Network settings (``qdtrack.model.build_qdtrack`` keyword arguments)."""

    depth: int = 50
    num_classes: int = 1
    style: str = "caffe"
    img_scale: tuple[int, int] = (1088, 1088)
    backbone_weights_path: str | None = None
    # The reference freezes BatchNorm and the stem + layer1 of a pretrained backbone; a
    # backbone trained from scratch (the CPU config) needs trainable BatchNorm.
    norm_eval: bool = True
    frozen_stages: int = 1
    fpn_channels: int = 256
    representation_size: int = 1024
    # RoIAlign samples per bin: 0 = adaptive (reference); 2 is much cheaper on a CPU.
    roi_sampling_ratio: int = 0
    embed_conv_channels: int = 256
    embed_num_convs: int = 4
    embed_fc_channels: int = 1024
    embed_channels: int = 256


@dataclass(frozen=True)
class TrackerConfig:
    """``QuasiDenseTracker`` settings; defaults = the mmtracking MOT17 config."""

    init_score_thr: float = 0.9
    obj_score_thr: float = 0.5
    match_score_thr: float = 0.5
    memo_tracklet_frames: int = 30
    memo_backdrop_frames: int = 1
    memo_momentum: float = 0.8
    nms_conf_thr: float = 0.5
    nms_backdrop_iou_thr: float = 0.3
    nms_class_iou_thr: float = 0.7
    with_cats: bool = True
    match_metric: str = "bisoftmax"


@dataclass(frozen=True)
class DatasetSource:
    """One training source: a folder of MOT sequences or a CrowdHuman folder."""

    kind: str  # "mot" | "crowdhuman"
    path: str
    subset: str = "full"  # MOT only: "full" | "half-train" | "half-val"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and data settings; defaults = the reference (spec a.8, a.9)."""

    epochs: int = 4
    batch_size: int = 16
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 35.0
    lr_steps: tuple[int, ...] = (3,)
    lr_gamma: float = 0.1
    warmup_iters: int = 0
    warmup_ratio: float = 1e-3
    frame_range: int = 10
    seed: int = 6
    amp: bool = True
    num_workers: int = 2
    log_interval: int = 10
    max_iters_per_epoch: int | None = None
    sources: tuple[DatasetSource, ...] = ()


@dataclass(frozen=True)
class QDTrackConfig:
    """The whole configuration: what a checkpoint carries so it can rebuild everything."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    """Instantiate dataclass ``cls`` from ``data``, converting lists and nested sources."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; valid: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name == "sources":
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise ValueError(f"{where}.sources: expected a list")
            value = tuple(
                _build(DatasetSource, v, f"{where}.sources[{i}]") for i, v in enumerate(value)
            )
            for i, src in enumerate(value):
                if src.kind not in ("mot", "crowdhuman"):
                    raise ValueError(f"{where}.sources[{i}].kind must be 'mot' or 'crowdhuman'")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = _coerce(value, str(fields[name].type), f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """Check scalar types; accept numbers written as strings (YAML reads ``1e-3`` as one)."""
    kinds = {"float": float, "int": int, "bool": bool}
    kind = kinds.get(annotation.replace(" | None", ""))
    if kind is None or (value is None and "None" in annotation):
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(number)
    return number


_SECTIONS: dict[str, type] = {"model": ModelConfig, "tracker": TrackerConfig, "train": TrainConfig}


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> QDTrackConfig:
    """Build a :class:`QDTrackConfig` from a mapping; other top-level keys are ignored."""
    parts: dict[str, Any] = {
        name: _build(cls, data.get(name) or {}, f"{where}: {name}")
        for name, cls in _SECTIONS.items()
    }
    return QDTrackConfig(**parts)


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a nested dict."""
    out = _plain(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = _parse_scalar(text)
    return out


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> QDTrackConfig:
    """Read a params file (``params.yaml`` or ``configs/*.yaml``) with optional overrides."""
    return config_from_dict(load_params(path, overrides), str(path))


def load_params(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The params file as a plain mapping (every block, not only the typed ones)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at the top level")
    return apply_overrides(data, overrides)
