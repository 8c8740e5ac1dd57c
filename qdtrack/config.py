"""``params.yaml`` (and the files in ``configs/``) as one frozen, typed configuration.

Every block of a params file is a frozen dataclass here; the tracker block is the
settings dataclass written beside each tracker (``qdtrack.trackers``), chosen by
``tracker.type``. Config is an adapter at the edge: each block's fields are the settings
of the object it configures (``build_qdtrack(cfg.model)``, ``build_tracker(cfg.tracker)``),
so nothing else in the package reads YAML.

Every stage of the CLI takes ``--config FILE`` and repeated ``--set key.path=value``
(values are YAML, as ``dvc exp run -S`` writes them). An unknown key or a value of the
wrong type stops the stage before it starts, with the file and the key named::

    params.yaml: train.epochs: expected an integer, got 'abc'
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from qdtrack.model.config import ModelConfig
from qdtrack.schema import SchemaError, check_choices, from_mapping, to_plain
from qdtrack.trackers import (
    AnyTrackerSettings,
    QuasiDenseTrackerSettings,
    tracker_block,
    tracker_settings,
)

#: The blocks of a params file, in file order.
BLOCKS = ("data", "model", "tracker", "train", "evaluate", "gate", "export", "deploy")

DataSource = Literal["synth", "path"]
ValSplit = Literal["full", "half-val"]
#: Benchmarks ``qdtrack evaluate`` scores: MOTChallenge variants (HOTA, CLEAR, Identity),
#: TAO (Track AP, plus box AP when detections are saved) and COCO (box AP only).
Benchmark = Literal["MOT17", "MOT16", "MOT15", "MOT20", "TAO", "COCO"]


@dataclass(frozen=True)
class DataConfig:
    """Where the dataset comes from and how it is split (``qdtrack data prepare|convert``).

    Attributes:
        source: ``synth`` (the embedded deterministic default) or ``path`` (a dataset on
            disk, see ``datasets/README.md``).
        path: ``source: path``: root with ``train/<seq>/`` (MOTChallenge) and
            ``crowdhuman/``.
        val_split: ``full`` (the ``val/`` sequences) or ``half-val`` (second half of each
            ``train/`` sequence, mmtracking's MOT17 protocol).
        seed, train_seqs, val_seqs, frames, crowdhuman_images: the synthetic generator.
        classes: synthetic object classes (1 = people only; 2–4 add cars, dogs, balls).
        format: validation format: ``mot`` (MOTChallenge sequences) or ``tao`` (a TAO
            annotation file).
        val_annotations: ``format: tao``: the validation annotations, relative to the
            dataset root.
        images: ``format: tao``: the folder the annotations' file names are relative to.
    """

    source: DataSource = "synth"
    path: str = "datasets/MOT17"
    val_split: ValSplit = "full"
    seed: int = 0
    train_seqs: int = 2
    val_seqs: int = 2
    frames: int = 120
    crowdhuman_images: int = 40
    classes: int = 1
    format: Literal["mot", "tao"] = "mot"
    val_annotations: str = "annotations/val.json"
    images: str = "."

    def __post_init__(self) -> None:
        check_choices(self, "data")
        if self.format == "tao" and self.val_split != "full":
            raise ValueError("data.format tao evaluates whole videos: use data.val_split full")
        if self.format == "tao" and self.source == "synth" and self.classes < 2:
            raise ValueError(
                "data.format tao with synthetic data needs data.classes >= 2 (the "
                "multi-class generator writes the TAO and LVIS annotation files)"
            )


#: Kinds of training source: MOTChallenge sequences, CrowdHuman stills, COCO / LVIS stills
#: and TAO videos (the last three need ``images``: the folder their ``file_name``s are in).
SourceKind = Literal["mot", "crowdhuman", "coco", "lvis", "tao"]
SOURCE_KINDS: tuple[str, ...] = ("mot", "crowdhuman", "coco", "lvis", "tao")


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

    kind: SourceKind
    path: str
    subset: Literal["full", "half-train", "half-val"] = "full"
    images: str | None = None
    category_map: str | None = None

    def __post_init__(self) -> None:
        check_choices(self, "source")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and data settings; defaults = the reference MOT17 schedule."""

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
    augment: Literal["mot", "lvis"] = "mot"  # lvis: multi-scale resize + flip
    # (long, short) resize limits drawn from with augment "lvis" (mmdet keep-ratio rule)
    lvis_scales: tuple[tuple[int, int], ...] = tuple((1333, s) for s in range(640, 801, 32))
    oversample_thr: float | None = None  # class-balanced repeat factors (LVIS: 1e-3)
    freeze_detector: bool = False  # train the track head only (TAO fine-tuning)
    load_from: str | None = None  # initial weights (``qdtrack train --init`` overrides)

    def __post_init__(self) -> None:
        check_choices(self, "train")
        if not self.lvis_scales or any(min(s) <= 0 for s in self.lvis_scales):
            raise ValueError("train.lvis_scales must be a list of positive [long, short] sizes")


@dataclass(frozen=True)
class EvaluateConfig:
    """How ``qdtrack evaluate`` scores the validation results.

    Attributes:
        benchmark: ``MOT17`` (and the other MOTChallenge variants): HOTA, MOTA, IDF1 with
            the benchmark's preprocessing; ``TAO``: Track AP (and box AP); ``COCO``: box AP.
            The validation split is ``data.val_split``.
    """

    benchmark: Benchmark = "MOT17"

    def __post_init__(self) -> None:
        check_choices(self, "evaluate")


@dataclass(frozen=True)
class GateConfig:
    """Champion/challenger rule of ``qdtrack gate`` (metric names of ``evaluate.benchmark``).

    Attributes:
        criteria: absolute floor, comma-separated ``METRIC OP VALUE``
            (``HOTA>=40,IDF1>=40``; TAO: ``TrackAP>=10``); empty = none.
        max_drop: allowed drop against the deployed model, comma-separated
            ``METRIC=DROP`` (``HOTA=0.5``); empty = none.
    """

    criteria: str = ""
    max_drop: str = ""


@dataclass(frozen=True)
class ExportConfig:
    """Serving form of ``qdtrack export`` (batching across streams, INT8 on CPU).

    Attributes:
        batching: export the batched graph (a leading batch axis of equally sized frames)
            with Triton's dynamic batcher; off = one frame per request (``max_batch_size``
            0).
        max_batch_size: the largest batch Triton forms (``batching`` only).
        preferred_batch_sizes: batch sizes the dynamic batcher waits for, each at most
            ``max_batch_size``; empty = Triton's default (as large as possible).
        max_queue_delay_us: how long (microseconds) a request may wait for others to
            join its batch.
        int8: quantise the ONNX graph to INT8 (static, ONNX Runtime; CPU serving),
            calibrated on frames of ``train.sources``, kept only if it passes the quality
            gate below.
        calibration_frames: training frames the INT8 ranges are measured on (spread
            evenly over the sources).
        max_hota_drop: the INT8 model's HOTA may be at most this many points below the
            float model's on the validation sequences (same run), or the export fails. 0
            allows no loss; a negative value demands that INT8 score higher by that much.
        max_idf1_drop: the same for IDF1.
    """

    batching: bool = False
    max_batch_size: int = 32
    preferred_batch_sizes: tuple[int, ...] = (8, 16, 32)
    max_queue_delay_us: int = 2000
    int8: bool = False
    calibration_frames: int = 32
    max_hota_drop: float = 0.5
    max_idf1_drop: float = 0.5

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        bad = [s for s in self.preferred_batch_sizes if not 1 <= s <= self.max_batch_size]
        if bad:
            raise ValueError(
                f"preferred_batch_sizes {bad} outside 1..max_batch_size ({self.max_batch_size})"
            )
        if self.max_queue_delay_us < 0:
            raise ValueError(f"max_queue_delay_us must be >= 0, got {self.max_queue_delay_us}")
        if self.calibration_frames < 1:
            raise ValueError(
                f"calibration_frames must be at least 1, got {self.calibration_frames}"
            )


@dataclass(frozen=True)
class DeployConfig:
    """Where ``qdtrack deploy`` publishes the gated export.

    Attributes:
        model_repository: the Triton model repository (a local folder, or the volume
            mounted in the pipeline's deploy step).
        model_name: the model's name in Triton and its folder in the repository.
    """

    model_repository: str = "model_repository"
    model_name: str = "qdtrack"


@dataclass(frozen=True)
class QDTrackConfig:
    """The whole configuration: every block of a params file.

    A checkpoint carries it, so evaluation and export rebuild the model (and know how it
    was meant to be tracked) from the checkpoint alone.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: AnyTrackerSettings = field(default_factory=QuasiDenseTrackerSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict in file order (tuples become lists)."""
        plain = {name: to_plain(getattr(self, name)) for name in BLOCKS}
        plain["tracker"] = tracker_block(self.tracker)
        return plain


_BLOCK_TYPES: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "gate": GateConfig,
    "export": ExportConfig,
    "deploy": DeployConfig,
}


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> QDTrackConfig:
    """Build a :class:`QDTrackConfig` from a mapping of blocks (missing blocks: defaults).

    Raises:
        ValueError: an unknown block or key, or a value of the wrong type, with ``where``
            and the dotted key in the message.
    """
    if not isinstance(data, Mapping):
        raise SchemaError(f"{where}: expected a mapping of blocks, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in BLOCKS)
    if unknown:
        raise SchemaError(
            f"{where}: unknown block {', '.join(unknown)}; valid blocks: {', '.join(BLOCKS)}"
        )
    blocks: dict[str, Any] = {
        name: from_mapping(cls, data.get(name), f"{where}: {name}")
        for name, cls in _BLOCK_TYPES.items()
    }
    blocks["tracker"] = tracker_settings(data.get("tracker"), f"{where}: tracker")
    return QDTrackConfig(**blocks)


def resolve_classes(model: ModelConfig) -> ModelConfig:
    """``model`` with ``classes`` read from ``classes_file`` (when only the file is given).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: its names are duplicated or their count is not ``num_classes``.
    """
    if model.classes or model.classes_file is None:
        return model
    from qdtrack.data.coco import read_class_names

    names = tuple(read_class_names(model.classes_file))
    try:
        return dataclasses.replace(model, classes=names, classes_file=None)
    except ValueError as exc:
        raise ValueError(f"model.classes_file {model.classes_file}: {exc}") from exc


# ----------------------------------------------------------------- files and overrides


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> ``(["train", "lr"], 0.01)`` (the value is read as YAML)."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ValueError(f"--set {item!r}: expected KEY=VALUE with a dotted key (train.lr=0.01)")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"--set {item!r}: the value is not valid YAML: {exc}") from exc
    return parts, value


def expand_overrides(items: Sequence[str] | None) -> list[str]:
    """Flatten ``--set`` values: each is ``KEY=VALUE`` or a JSON list of them.

    The list form is for callers that hold all overrides in one argument (a Kubeflow run
    parameter): ``--set '["train.epochs=4", "data.source=path"]'``. A single override
    never starts with ``[`` (keys are names), so the two forms cannot be confused.
    """
    out: list[str] = []
    for item in items or ():
        text = item.strip()
        if not text.startswith("["):
            out.append(item)
            continue
        try:
            listed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--set {item!r}: not KEY=VALUE nor a JSON list: {exc}") from exc
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise ValueError(f"--set {item!r}: a JSON list of KEY=VALUE strings was expected")
        out.extend(v for v in listed if v.strip())
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the nested mapping ``data`` with ``section.key=value`` overrides applied.

    ``tracker.type=<another tracker>`` starts that tracker from its own defaults (the
    settings of the previous one would not apply); later ``tracker.*`` overrides refine it.
    """
    out: dict[str, Any] = to_plain(dict(data))
    for item in expand_overrides(overrides):
        parts, value = parse_override(item)
        tracker = out.get("tracker")
        switches = isinstance(tracker, dict) and tracker.get("type", "qdtrack") != value
        if parts == ["tracker", "type"] and switches:
            out["tracker"] = {}
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                path = ".".join(parts[: depth + 1])
                raise ValueError(f"--set {item!r}: {path} is a value, not a block of settings")
            node = child
        node[parts[-1]] = value
    return out


def read_params(path: str | Path) -> dict[str, Any]:
    """The params file as a plain mapping (YAML), with file errors as clear messages."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping of blocks at the top level")
    return data


def load_params(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The params file as a plain mapping with ``overrides`` applied (not yet checked)."""
    return apply_overrides(read_params(path), overrides)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> QDTrackConfig:
    """Read and check a params file (``params.yaml`` or ``configs/*.yaml``) with overrides."""
    return config_from_dict(load_params(path, overrides), _describe(path, overrides))


def _describe(path: str | Path, overrides: Sequence[str]) -> str:
    return f"{path} with --set" if expand_overrides(overrides) else str(path)


def stage_config(
    path: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    checkpoint: QDTrackConfig | None = None,
) -> QDTrackConfig:
    """The configuration a CLI stage runs with.

    Args:
        path: the ``--config`` file; ``None`` = the checkpoint's configuration (or the
            defaults without a checkpoint).
        overrides: the ``--set`` values.
        checkpoint: the configuration stored in the checkpoint the stage loads. Its
            ``model`` block always wins over the file's, because the weights were trained
            for it; ``--set model.…`` still applies (test-time settings such as
            ``score_thr``).
    """
    if path is None:
        base = checkpoint.to_dict() if checkpoint is not None else {}
        where = "checkpoint config" if checkpoint is not None else "default config"
    else:
        base, where = read_params(path), str(path)
        if checkpoint is not None:
            base["model"] = to_plain(checkpoint.model)
    if expand_overrides(overrides):
        where += " with --set"
    return config_from_dict(apply_overrides(base, overrides), where)
