"""The benchmarks ``qdtrack evaluate`` scores, in one place: names, metrics, scorer.

MOTChallenge variants (HOTA, CLEAR, Identity; ``mot``), TAO (Track AP; ``tao``) and COCO
(box AP; ``coco``). :func:`evaluate_results` dispatches to the benchmark's scorer.
"""

from __future__ import annotations

import os
from typing import Any

from qdtrack.evaluation.coco import BOX_METRIC_NAMES, COCO_BENCHMARK, evaluate_box_ap
from qdtrack.evaluation.mot import BENCHMARKS, METRIC_NAMES, evaluate_mot
from qdtrack.evaluation.tao import TAO_BENCHMARK, TRACK_METRIC_NAMES, evaluate_tao

CLI_BENCHMARKS = (*BENCHMARKS, TAO_BENCHMARK, COCO_BENCHMARK)

GATE_METRIC_NAMES: tuple[str, ...] = METRIC_NAMES + TRACK_METRIC_NAMES + BOX_METRIC_NAMES
"""Names a gate or max-drop may use: MOTChallenge, TAO Track AP and box AP metrics."""


def benchmark_metric_names(benchmark: str) -> tuple[str, ...]:
    """Metrics ``benchmark`` can report (TAO: box AP too, when detections are saved)."""
    if benchmark == COCO_BENCHMARK:
        return BOX_METRIC_NAMES
    if benchmark == TAO_BENCHMARK:
        return TRACK_METRIC_NAMES + BOX_METRIC_NAMES
    return METRIC_NAMES


def evaluate_results(
    gt: str | os.PathLike[str],
    results: str | os.PathLike[str],
    *,
    benchmark: str,
    split: str,
) -> dict[str, Any]:
    """Score ``results`` against ``gt`` with ``benchmark`` (``split``: MOTChallenge only)."""
    if benchmark in (TAO_BENCHMARK, COCO_BENCHMARK):
        if split != "full":
            raise ValueError(
                f"data.val_split {split} applies to MOTChallenge benchmarks only; "
                f"{benchmark} is scored on the whole gt file"
            )
        if benchmark == TAO_BENCHMARK:
            return evaluate_tao(gt, results)
        return evaluate_box_ap(gt, results)
    return evaluate_mot(gt, results, benchmark=benchmark, split=split)
