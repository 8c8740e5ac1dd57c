"""Evaluation: ``qdtrack evaluate`` (container) and the scalars for the run's UI.

The benchmark (MOTChallenge HOTA/MOTA/IDF1, TAO Track AP, COCO box AP) and the split come
from the config (``evaluate.benchmark``, ``data.val_split``), so one compiled pipeline
evaluates any configuration. The pipeline runs ``evaluate`` twice: on the candidate's
tracks and on the IoU tracker's tracks of the same detections.

``log_metrics`` turns the summary JSON into ``Metrics`` for the run's UI and scalar
outputs (``hota``, ``mota``, ``idf1``; ``track_ap``, ``box_ap`` for TAO; -1 when the
benchmark does not report one): KFP conditions can only read parameters, not artifact
metadata (kubeflow/pipelines#7250). The gate itself is ``qdtrack gate``.
"""

from typing import NamedTuple

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from components import CLI, IMAGE


@dsl.container_component
def evaluate(
    converted: str,
    tracks: Input[Artifact],
    metrics: Output[Artifact],
    summary: Output[Artifact],
    per_sequence: Output[Artifact],
    results: str = "results",
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
) -> dsl.ContainerSpec:
    """TrackEval (or COCO box AP) on one results folder of ``tracks``.

    Args:
        converted: the converted folder on the workspace volume (``val_gt/``).
        metrics: the full metrics JSON.
        summary: the headline numbers (flat JSON: HOTA, MOTA, IDF1, ... or TrackAP, ...).
        per_sequence: per-sequence (TAO: per-class) metrics as CSV.
        results: ``results`` (the candidate) or ``iou_results`` (the IoU tracker).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "evaluate",
            "--config", config,
            "--set", overrides,
            "--gt", dsl.ConcatPlaceholder([converted, "/val_gt"]),
            "--results", dsl.ConcatPlaceholder([tracks.path, "/", results]),
            "--out", metrics.path,
            "--summary", summary.path,
            "--per-sequence-csv", per_sequence.path,
        ],
    )  # fmt: skip


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def log_metrics(summary: Input[Artifact], ui_metrics: Output[Metrics]) -> NamedTuple(  # type: ignore[valid-type]
    "HeadlineMetrics",
    [("hota", float), ("mota", float), ("idf1", float), ("track_ap", float), ("box_ap", float)],
):
    """Read the summary JSON; return the headline numbers and log every number for the UI.

    MOTChallenge benchmarks report HOTA/MOTA/IDF1, TAO reports TrackAP/BoxAP; a number
    the benchmark does not report is returned as -1.
    """
    import json
    from collections import namedtuple

    with open(summary.path, encoding="utf-8") as handle:
        values = json.load(handle)
    for name, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            ui_metrics.log_metric(name, float(value))

    def number(key: str) -> float:
        value = values.get(key)
        return float(value) if isinstance(value, int | float) else -1.0

    HeadlineMetrics = namedtuple("HeadlineMetrics", ["hota", "mota", "idf1", "track_ap", "box_ap"])
    return HeadlineMetrics(*(number(k) for k in ("HOTA", "MOTA", "IDF1", "TrackAP", "BoxAP")))
