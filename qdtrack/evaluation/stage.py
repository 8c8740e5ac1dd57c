"""``qdtrack evaluate``: score the validation results with the config's benchmark."""

from __future__ import annotations

import argparse

from qdtrack.config import stage_config
from qdtrack.evaluation.benchmarks import benchmark_metric_names, evaluate_results
from qdtrack.evaluation.report import format_table, summary_metrics, write_per_sequence_csv
from qdtrack.gate import check_gate_names
from qdtrack.io_utils import write_json


def main(args: argparse.Namespace) -> int:
    """``qdtrack evaluate``: score the results; 0 = evaluated."""
    config = stage_config(args.config, args.set)
    benchmark, split = config.evaluate.benchmark, config.data.val_split
    # A gate that names metrics this benchmark does not report would only fail after the
    # evaluation (or in the next stage): check it first.
    names = benchmark_metric_names(benchmark)
    check_gate_names(config.gate, names, str(args.config or "config"))
    metrics = evaluate_results(args.gt, args.results, benchmark=benchmark, split=split)
    print(format_table(metrics))
    if args.out:
        write_json(args.out, metrics)
        print(f"wrote {args.out}")
    if getattr(args, "summary", None):
        write_json(args.summary, summary_metrics(metrics))
        print(f"wrote {args.summary}")
    if getattr(args, "per_sequence_csv", None):
        write_per_sequence_csv(args.per_sequence_csv, metrics)
        print(f"wrote {args.per_sequence_csv}")
    return 0
