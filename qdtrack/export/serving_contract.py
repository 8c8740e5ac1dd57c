"""The serving contract: everything a server needs to use an exported model correctly.

An exported network alone is not enough to track with it: the frame must be resized with
the rule and scale it was trained for, its labels named, and its embeddings associated by
the tracker (type and settings) it was evaluated with. ``qdtrack export`` writes this
contract into ``export.json`` and into the Triton model's ``config.pbtxt`` parameters, so
the tracking sidecar reads it from Triton itself, for the model version that answered each
request, and needs no settings of its own.

In ``config.pbtxt`` the contract of every version in the repository is kept under
``qdtrack_serving_contract_v<N>`` (``qdtrack deploy`` carries the entries of the versions
still present over when it publishes a new one), because Triton has one configuration per
model, not per version: a replica still serving version 1 while version 2 is published
answers with version 1, and its contract must still be found. ``qdtrack_serving_contract``
holds the newest one. This module imports nothing heavy (the sidecar uses it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from qdtrack.schema import SchemaError, from_mapping, to_plain
from qdtrack.trackers import AnyTrackerSettings, tracker_block, tracker_settings

CONTRACT_FORMAT = "qdtrack-serving/1"
#: ``config.pbtxt`` parameter: the newest version's contract (JSON).
CONTRACT_PARAMETER = "qdtrack_serving_contract"
#: ``config.pbtxt`` parameter prefix: ``qdtrack_serving_contract_v<N>`` = version N's.
VERSION_CONTRACT_PREFIX = f"{CONTRACT_PARAMETER}_v"
#: The export record in each version folder (``qdtrack.export.contract.METADATA_FILENAME``).
EXPORT_RECORD = "export.json"
#: The deploy record ``qdtrack deploy`` leaves in each version folder it publishes: the
#: evaluation metrics the gate passed the version with.
DEPLOY_RECORD = "deploy.json"
#: ``config.pbtxt`` parameter prefix: ``qdtrack_model_quality_v<N>`` = version N's metrics.
QUALITY_PREFIX = "qdtrack_model_quality_v"


@dataclass(frozen=True)
class ServingContract:
    """How to use one exported model.

    Attributes:
        model_version: the weights' identity (``<model>-<sha256 prefix of the checkpoint>``);
            tracker state is tagged with it, because embeddings of other weights differ.
        img_scale: ``(long, short)`` edge limits of the resize.
        resize: the resize rule: ``keep_ratio`` (:func:`qdtrack.resize.resize_frame`, the
            reference test-time resize: bilinear, aspect ratio kept).
        normalization: the input normalisation the graph applies to the uint8 BGR frame
            (``caffe`` or ``pytorch``); clients send raw pixels either way.
        class_names: the name of each label.
        tracker: the ``tracker`` block (``type`` and its settings) to track with.
        embedding_dim: width of the ``embeddings`` output.
        max_detections: rows of the padded outputs.
        format: the contract's own format version.
    """

    model_version: str
    img_scale: tuple[int, int]
    class_names: tuple[str, ...]
    tracker: dict[str, Any]
    embedding_dim: int
    max_detections: int
    resize: Literal["keep_ratio"] = "keep_ratio"
    normalization: Literal["caffe", "pytorch"] = "caffe"
    format: str = field(default=CONTRACT_FORMAT)

    def __post_init__(self) -> None:
        if self.format != CONTRACT_FORMAT:
            raise ValueError(f"format {self.format!r} is not {CONTRACT_FORMAT!r}")
        if min(self.img_scale) <= 0:
            raise ValueError(f"img_scale must be positive, got {list(self.img_scale)}")
        if not self.class_names:
            raise ValueError("class_names is empty")
        self.tracker_settings()  # a contract with an unusable tracker block is refused

    def tracker_settings(self) -> AnyTrackerSettings:
        """The tracker to build for a stream of this model."""
        return tracker_settings(self.tracker, "tracker")

    def to_json(self) -> str:
        """Compact JSON (the value of a ``config.pbtxt`` parameter)."""
        return json.dumps(to_plain(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Any, where: str = "serving contract") -> ServingContract:
        """A contract from parsed JSON; ``ValueError`` naming the bad key."""
        return from_mapping(cls, data, where)

    @classmethod
    def from_json(cls, text: str, where: str = "serving contract") -> ServingContract:
        """A contract from its JSON text; ``ValueError`` when it is not one."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{where}: not JSON: {exc}") from exc
        return cls.from_mapping(data, where)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ServingContract:
        """This contract with some fields replaced (``tracker`` keys merge into the block).

        For experiments: a server may track a model with other settings than it was
        exported with; the result is checked like any contract.
        """
        data = to_plain(self)
        for key, value in overrides.items():
            if key == "tracker" and isinstance(value, Mapping):
                merged = dict(data["tracker"])
                if "type" in value and value["type"] != merged.get("type"):
                    merged = {}  # another tracker: its own defaults
                merged.update(value)
                data["tracker"] = merged
            else:
                data[key] = value
        return self.from_mapping(data, "serving contract with overrides")


def contract_for(
    *,
    model_version: str,
    img_scale: tuple[int, int],
    class_names: tuple[str, ...],
    tracker: AnyTrackerSettings,
    embedding_dim: int,
    max_detections: int,
    normalization: str,
) -> ServingContract:
    """The contract of an export (``tracker`` as its settings object)."""
    return ServingContract(
        model_version=model_version,
        img_scale=(int(img_scale[0]), int(img_scale[1])),
        class_names=tuple(class_names),
        tracker=tracker_block(tracker),
        embedding_dim=int(embedding_dim),
        max_detections=int(max_detections),
        normalization=normalization,  # type: ignore[arg-type]
    )


def contract_parameters(contracts: Mapping[int, ServingContract]) -> dict[str, str]:
    """``config.pbtxt`` parameters for the contracts of these Triton versions."""
    if not contracts:
        return {}
    params = {f"{VERSION_CONTRACT_PREFIX}{v}": c.to_json() for v, c in sorted(contracts.items())}
    params[CONTRACT_PARAMETER] = contracts[max(contracts)].to_json()
    return params


def contracts_from_parameters(parameters: Mapping[str, str]) -> dict[int, ServingContract]:
    """The per-version contracts among a model config's parameters.

    Raises:
        ValueError: an entry is not a valid contract (its key is named).
    """
    contracts = {}
    for key, text in parameters.items():
        suffix = key.removeprefix(VERSION_CONTRACT_PREFIX)
        if key.startswith(VERSION_CONTRACT_PREFIX) and suffix.isdigit():
            contracts[int(suffix)] = ServingContract.from_json(text, f"parameter {key}")
    return contracts


def repository_contracts(model_dir: Path) -> dict[int, ServingContract]:
    """The contract of each version folder of a Triton model directory.

    Read from each folder's ``export.json`` (``serving_contract``); a folder without one
    (not written by ``qdtrack export``) is skipped.

    Raises:
        ValueError: an ``export.json`` holds an invalid contract (the file is named).
    """
    contracts = {}
    for folder in sorted(model_dir.iterdir()) if model_dir.is_dir() else ():
        record = folder / EXPORT_RECORD
        if not (folder.is_dir() and folder.name.isdigit() and record.is_file()):
            continue
        data = json.loads(record.read_text(encoding="utf-8"))
        if "serving_contract" in data:
            contracts[int(folder.name)] = ServingContract.from_mapping(
                data["serving_contract"], f"{record}: serving_contract"
            )
    return contracts


def repository_quality(model_dir: Path) -> dict[int, dict[str, float]]:
    """The deployed metrics of each version folder (from its ``deploy.json``), if any."""
    quality = {}
    for folder in sorted(model_dir.iterdir()) if model_dir.is_dir() else ():
        record = folder / DEPLOY_RECORD
        if folder.is_dir() and folder.name.isdigit() and record.is_file():
            metrics = json.loads(record.read_text(encoding="utf-8")).get("metrics", {})
            quality[int(folder.name)] = {
                str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)
            }
    return quality


def quality_parameters(quality: Mapping[int, Mapping[str, float]]) -> dict[str, str]:
    """``config.pbtxt`` parameters for the deployed metrics of these versions."""
    return {
        f"{QUALITY_PREFIX}{v}": json.dumps(dict(m), sort_keys=True)
        for v, m in sorted(quality.items())
    }


def quality_from_parameters(parameters: Mapping[str, str]) -> dict[int, dict[str, float]]:
    """The per-version metrics among a model config's parameters (bad entries skipped)."""
    quality = {}
    for key, text in parameters.items():
        suffix = key.removeprefix(QUALITY_PREFIX)
        if not (key.startswith(QUALITY_PREFIX) and suffix.isdigit()):
            continue
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(values, dict):
            quality[int(suffix)] = {
                str(k): float(v) for k, v in values.items() if isinstance(v, int | float)
            }
    return quality
