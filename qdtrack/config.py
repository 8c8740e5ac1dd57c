"""``params.yaml`` (and the files in ``configs/``) as frozen, typed configuration objects.

Config is an adapter at the edge: each section's fields are the settings of the object it
configures (``build_qdtrack(cfg.model)``; ``build_tracker(*tracker_spec(cfg.tracker))``,
where ``tracker.type`` picks the MOT17 or the TAO tracker), so nothing else in the package
reads YAML.
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
    # Test-time detector settings (spec a.5; the TAO config of spec d.3 uses 1e-4, 300,
    # 0.5, clipping on) and the track head's assigner negative threshold (TAO: 0.3).
    score_thr: float = 0.05
    max_per_img: int = 100
    nms_iou_thr: float = 0.5
    clip_border: bool = False
    track_neg_iou_thr: float = 0.5
    # Input normalisation: "caffe" (reference: BGR, caffe mean, std 1) or "pytorch"
    # (torchvision ImageNet weights, as mmtracking's LVIS/TAO R-101 configs).
    normalization: str = "caffe"
    # Class names in label order (label i = classes[i]); empty = one unnamed class per
    # label ("pedestrian" for the single-class MOT model). ``classes_file`` instead names a
    # text file with one name per line (mmdet's ``classes=`` convention); training reads
    # it (:func:`resolve_classes`), so a checkpoint carries the names themselves.
    classes: tuple[str, ...] = ()
    classes_file: str | None = None

    def class_names(self) -> tuple[str, ...]:
        """The name of each label (``classes``, or ``pedestrian`` for a 1-class model)."""
        if self.classes:
            return self.classes
        if self.num_classes == 1:
            return ("pedestrian",)
        return tuple(f"class_{i}" for i in range(self.num_classes))


@dataclass(frozen=True)
class TrackerConfig:
    """``QuasiDenseTracker`` settings; defaults = the mmtracking MOT17 config."""

    type: str = "qdtrack"
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
class TaoTrackerConfig:
    """``QuasiDenseTAOTracker`` settings (``tracker.type: tao``); defaults = spec d.3."""

    type: str = "tao"
    init_score_thr: float = 1e-4
    obj_score_thr: float = 1e-4
    match_score_thr: float = 0.5
    memo_frames: int = 10
    memo_momentum: float = 0.8
    momentum_obj_score: float = 0.5
    obj_score_diff_thr: float = 1.0
    distractor_nms_thr: float = 0.3
    distractor_score_thr: float = 0.5
    match_metric: str = "bisoftmax"
    match_with_cosine: bool = True


AnyTrackerConfig = TrackerConfig | TaoTrackerConfig
#: ``tracker.type`` -> settings class (the names of :func:`qdtrack.trackers.build_tracker`).
TRACKER_CONFIGS: dict[str, type[TrackerConfig] | type[TaoTrackerConfig]] = {
    "qdtrack": TrackerConfig,
    "tao": TaoTrackerConfig,
}


def tracker_spec(config: AnyTrackerConfig) -> tuple[str, dict[str, Any]]:
    """``(tracker name, keyword settings)`` for :func:`qdtrack.trackers.build_tracker`."""
    settings = dataclasses.asdict(config)
    return str(settings.pop("type")), settings


#: Kinds of training source: MOTChallenge sequences, CrowdHuman stills, COCO / LVIS stills
#: and TAO videos (the last three need ``images``: the folder their ``file_name``s are in).
SOURCE_KINDS = ("mot", "crowdhuman", "coco", "lvis", "tao")


@dataclass(frozen=True)
class DatasetSource:
    """One training source.

    Attributes:
        kind: one of :data:`SOURCE_KINDS`.
        path: MOT: a folder of sequences; CrowdHuman: its folder or ``.odgt``; COCO, LVIS,
            TAO: the annotation ``.json``.
        subset: MOT only: ``"full"``, ``"half-train"`` or ``"half-val"``.
        images: COCO, LVIS, TAO: the folder the annotation ``file_name``s are relative to
            (default: the annotation file's folder).
        category_map: COCO, LVIS, TAO: optional JSON file ``{source name: class name}``
            renaming categories before they are matched to ``model.classes``.
    """

    kind: str
    path: str
    subset: str = "full"
    images: str | None = None
    category_map: str | None = None


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
    amp: bool = True  # float16 autocast + loss scaling on CUDA
    # bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX): training steps about
    # 1.5x faster there (bench_model_speed.py); elsewhere it stays float32 (with a notice).
    cpu_bf16: bool = False
    num_workers: int = 2
    log_interval: int = 10
    max_iters_per_epoch: int | None = None
    sources: tuple[DatasetSource, ...] = ()
    # Multi-class (LVIS / TAO) settings of mmtracking's TAO configs; the defaults are the
    # MOT17 behaviour.
    augment: str = "mot"  # "mot" (spec a.7) | "lvis" (multi-scale resize + flip)
    # (long, short) resize limits drawn from with augment "lvis" (mmdet keep-ratio rule)
    lvis_scales: tuple[tuple[int, int], ...] = tuple((1333, s) for s in range(640, 801, 32))
    oversample_thr: float | None = None  # class-balanced repeat factors (LVIS: 1e-3)
    freeze_detector: bool = False  # train the track head only (TAO fine-tuning)
    load_from: str | None = None  # initial weights (``qdtrack train --init`` overrides)


@dataclass(frozen=True)
class QDTrackConfig:
    """The whole configuration: what a checkpoint carries so it can rebuild everything."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: AnyTrackerConfig = field(default_factory=TrackerConfig)
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


def _tuples(value: Any) -> Any:
    """Lists (at any depth) as tuples: config values are immutable."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


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
                if src.kind not in SOURCE_KINDS:
                    raise ValueError(
                        f"{where}.sources[{i}].kind must be one of {SOURCE_KINDS}, got {src.kind!r}"
                    )
        elif isinstance(value, list):
            value = _tuples(value)
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


def _model_config(data: Mapping[str, Any], where: str) -> ModelConfig:
    model = _build(ModelConfig, data, where)
    _check_classes(model, where)
    return model


def _check_classes(model: ModelConfig, where: str) -> None:
    if not all(isinstance(name, str) and name for name in model.classes):
        raise ValueError(f"{where}.classes: expected class names (non-empty strings)")
    if model.classes and len(model.classes) != model.num_classes:
        raise ValueError(
            f"{where}: num_classes = {model.num_classes} but classes lists "
            f"{len(model.classes)} names"
        )
    if len(set(model.classes)) != len(model.classes):
        raise ValueError(f"{where}.classes: duplicate class names")


def resolve_classes(model: ModelConfig) -> ModelConfig:
    """``model`` with ``classes`` read from ``classes_file`` (when only the file is given).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: its names are duplicated or their count is not ``num_classes``.
    """
    if model.classes or model.classes_file is None:
        return model
    from qdtrack.data.coco import read_class_names

    resolved = dataclasses.replace(
        model, classes=tuple(read_class_names(model.classes_file)), classes_file=None
    )
    _check_classes(resolved, f"model.classes_file {model.classes_file}")
    return resolved


def _tracker_config(data: Mapping[str, Any], where: str) -> AnyTrackerConfig:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    kind = data.get("type", "qdtrack")
    if kind not in TRACKER_CONFIGS:
        raise ValueError(f"{where}.type must be one of {sorted(TRACKER_CONFIGS)}, got {kind!r}")
    return _build(TRACKER_CONFIGS[kind], data, where)


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> QDTrackConfig:
    """Build a :class:`QDTrackConfig` from a mapping; other top-level keys are ignored."""
    train = _build(TrainConfig, data.get("train") or {}, f"{where}: train")
    if train.augment not in ("mot", "lvis"):
        raise ValueError(f"{where}: train.augment must be 'mot' or 'lvis', got {train.augment!r}")
    if not train.lvis_scales or not all(
        isinstance(s, tuple) and len(s) == 2 and all(isinstance(v, int) and v > 0 for v in s)
        for s in train.lvis_scales
    ):
        raise ValueError(f"{where}: train.lvis_scales must be a list of [long, short] sizes")
    return QDTrackConfig(
        model=_model_config(data.get("model") or {}, f"{where}: model"),
        tracker=_tracker_config(data.get("tracker") or {}, f"{where}: tracker"),
        train=train,
    )


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
