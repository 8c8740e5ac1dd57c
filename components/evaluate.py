"""Evaluation: ``qdtrack evaluate`` (container) and the scalars the pipeline branches on.

KFP conditions can only read parameters, not artifact metadata (kubeflow/pipelines#7250),
so ``log_metrics`` turns the summary JSON into scalar outputs (``hota``, ``mota``,
``idf1``; ``track_ap``, ``box_ap`` for TAO) and also logs them as ``Metrics`` for the
run's UI.
"""

from typing import NamedTuple

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import IMAGE
from components._shell import command

# The val split (full / half-val) is whatever `data convert` wrote into val.json.
_EVALUATE = """
converted=$1; tracks=$2; benchmark=$3; metrics=$4; summary=$5
split=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["split"])' \\
  "$converted/val.json")
mkdir -p "$metrics"
qdtrack evaluate --gt "$converted/val_gt" --results "$tracks/results" \\
  --benchmark "$benchmark" --split "$split" \\
  --out "$metrics/qdtrack.json" --summary "$summary" \\
  --per-sequence-csv "$metrics/per_sequence_qdtrack.csv"
qdtrack evaluate --gt "$converted/val_gt" --results "$tracks/iou_results" \\
  --benchmark "$benchmark" --split "$split" \\
  --out "$metrics/iou.json" --summary "$metrics/iou_same_detections.json" \\
  --per-sequence-csv "$metrics/per_sequence_iou.csv"
"""


@dsl.container_component
def evaluate(
    converted: Input[Dataset],
    tracks: Input[Artifact],
    metrics: Output[Artifact],
    summary: Output[Artifact],
    benchmark: str = "MOT17",
) -> dsl.ContainerSpec:
    """TrackEval on the candidate's results (and the IoU tracker on the same detections).

    Args:
        metrics: full metrics (``qdtrack.json``, ``iou.json``) and per-sequence CSVs.
        summary: the candidate's headline numbers (flat JSON: HOTA, MOTA, IDF1, ...).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_EVALUATE, "evaluate"),
        args=[converted.path, tracks.path, benchmark, metrics.path, summary.path],
    )


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
