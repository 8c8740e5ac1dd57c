"""Reporting metrics: the printed table, the headline numbers and the per-row CSV."""

from __future__ import annotations

import csv
import os
from typing import Any

from qdtrack.evaluation.coco import BOX_METRIC_NAMES, BOX_SUMMARY_METRICS, COCO_BENCHMARK
from qdtrack.evaluation.tao import TAO_BENCHMARK, TAO_SUMMARY_METRICS, TRACK_METRIC_NAMES
from qdtrack.io_utils import atomic_write

TABLE_COLUMNS = (
    "HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
    "IDSW", "FP", "FN", "Frag", "MT", "ML",
)  # fmt: skip


def _table_rows(
    metrics: dict[str, Any],
) -> tuple[str, list[tuple[str, dict[str, Any]]], tuple[str, ...]]:
    """Row label, rows (sequences or TAO classes, then COMBINED) and columns of a metrics dict."""
    combined = metrics["combined"]
    benchmark = metrics.get("benchmark")
    if benchmark == TAO_BENCHMARK:
        box = BOX_SUMMARY_METRICS if "BoxAP" in combined else ()
        rows = [*metrics["classes"].items(), ("COMBINED", combined)]
        return "class", rows, TRACK_METRIC_NAMES + box
    if benchmark == COCO_BENCHMARK:
        return "", [("COMBINED", combined)], BOX_METRIC_NAMES
    return "sequence", [*metrics["sequences"].items(), ("COMBINED", combined)], TABLE_COLUMNS


def _cell(values: dict[str, Any], column: str, width: int) -> str:
    if column not in values:  # e.g. box AP on a TAO class row
        return f"{'-':>{width}}"
    value = values[column]
    if value is None:
        return f"{'nan':>{width}}"
    if isinstance(value, int):
        return f"{value:>{width}d}"
    return f"{value:>{width}.3f}"


def format_table(metrics: dict[str, Any]) -> str:
    """Per-sequence (TAO: per-class) rows plus COMBINED; MOTChallenge columns ``TABLE_COLUMNS``."""
    label, rows, columns = _table_rows(metrics)
    width = max(len(label), *(len(name) for name, _ in rows))
    widths = {column: max(9, len(column) + 1) for column in columns}
    lines = [f"{label:<{width}}" + "".join(f"{c:>{widths[c]}}" for c in columns)]
    for name, values in rows:
        cells = "".join(_cell(values, c, widths[c]) for c in columns)
        lines.append(f"{name:<{width}}" + cells)
    return "\n".join(lines)


SUMMARY_METRICS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


def summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of the combined row (what ``dvc metrics show`` displays).

    MOTChallenge: ``SUMMARY_METRICS``; TAO: TrackAP/50/75 (and BoxAP/50/75 when detections
    were scored); COCO: all ``Box*`` metrics.
    """
    combined = metrics["combined"]
    benchmark = metrics.get("benchmark")
    names: tuple[str, ...] = SUMMARY_METRICS
    if benchmark == TAO_BENCHMARK:
        names = TAO_SUMMARY_METRICS + (BOX_SUMMARY_METRICS if "BoxAP" in combined else ())
    elif benchmark == COCO_BENCHMARK:
        names = BOX_METRIC_NAMES
    return {name: combined[name] for name in names}


PER_SEQUENCE_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW")


def write_per_sequence_csv(path: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    """One row per sequence (and ``COMBINED``) of the headline metrics, for ``dvc plots``.

    TAO: one row per class (first column ``class``) with TrackAP/50/75; COCO: the
    ``COMBINED`` row of BoxAP/50/75.
    """
    benchmark = metrics.get("benchmark")
    label = "sequence"
    columns: tuple[str, ...] = PER_SEQUENCE_COLUMNS
    rows = [*metrics["sequences"].items(), ("COMBINED", metrics["combined"])]
    if benchmark == TAO_BENCHMARK:
        label, columns = "class", TAO_SUMMARY_METRICS
        rows = [*metrics["classes"].items(), ("COMBINED", metrics["combined"])]
    elif benchmark == COCO_BENCHMARK:
        columns = BOX_SUMMARY_METRICS
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow((label, *columns))
        for name, values in rows:
            cells = [name]
            for column in columns:
                value = values.get(column)
                cells.append("" if value is None else f"{value:.4f}".rstrip("0").rstrip("."))
            writer.writerow(cells)
