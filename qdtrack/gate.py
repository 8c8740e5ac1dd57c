"""The deployment gate: champion/challenger on tracking metrics.

A candidate model is deployable when its metrics pass the absolute criteria
(``gate.criteria``, e.g. ``HOTA>=40``; ``TrackAP>=10`` for TAO) and, when a model is
already deployed, do not fall behind that champion by more than the allowed drop per
metric (``gate.max_drop``, e.g. ``HOTA=0.5``).
The champion's metrics live in the model repository beside its versions
(``<repository>/<model>/champion.json``, written by ``qdtrack deploy``), so the gate always
compares with what is actually serving, not with a number fixed in a config file.

The decision is a small JSON document (``passed``, ``reasons``, both metric sets) that the
deploy step requires, so nothing is published without a passed decision.
"""

from __future__ import annotations

import argparse
import operator
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdtrack.config import GateConfig, stage_config
from qdtrack.evaluation.benchmarks import GATE_METRIC_NAMES
from qdtrack.evaluation.mot import LOWER_IS_BETTER
from qdtrack.io_utils import read_json, write_json

CHAMPION_FILE = "champion.json"

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"

_METRIC = r"[A-Za-z_][A-Za-z0-9_()]*"

_GATE_RE = re.compile(rf"^\s*({_METRIC})\s*(>=|<=|==|>|<)\s*({_NUMBER})\s*$")

_DROP_RE = re.compile(rf"^\s*({_METRIC})\s*=\s*({_NUMBER})\s*$")


def _parse_items(text: str, pattern: re.Pattern[str], what: str) -> list[tuple[str, ...]]:
    items = []
    for part in text.split(","):
        match = pattern.match(part)
        if match is None:
            raise ValueError(f"bad {what} criterion {part.strip()!r} in {text!r}")
        if match.group(1) not in GATE_METRIC_NAMES:
            raise ValueError(
                f"unknown metric {match.group(1)!r} in {what} {text!r}; "
                f"known: {', '.join(GATE_METRIC_NAMES)}"
            )
        items.append(match.groups())
    return items


def _metric_value(metrics: dict[str, Any], name: str, source: str) -> float:
    value = metrics.get(name)
    if not isinstance(value, int | float):
        raise ValueError(f"metric {name} missing or not a number in the {source} metrics")
    return float(value)


def check_gate(
    combined: dict[str, Any],
    *,
    gate: str | None = None,
    baseline: dict[str, Any] | None = None,
    max_drop: str | None = None,
) -> list[str]:
    """Check combined metrics against absolute bounds and against a baseline.

    Args:
        combined: the candidate's combined metrics (``evaluate_mot(...)["combined"]``).
        gate: comma-separated ``METRIC OP VALUE`` with OP in ``>= > <= < ==``,
            e.g. ``"HOTA>=55,IDSW<=100"``.
        baseline: the baseline's combined metrics (required with ``max_drop``).
        max_drop: comma-separated ``METRIC=DROP``: the candidate must reach
            ``baseline - DROP`` (for lower-is-better counts such as IDSW/FP/FN/Frag: stay
            within ``baseline + DROP``).

    Returns:
        One human-readable message per failed criterion; empty when everything passes.

    Raises:
        ValueError: bad syntax, an unknown metric, a negative drop, or ``baseline`` and
            ``max_drop`` not given together.
    """
    failures: list[str] = []
    if gate:
        for name, op, bound_text in _parse_items(gate, _GATE_RE, "gate"):
            value, bound = _metric_value(combined, name, "candidate"), float(bound_text)
            if not _OPERATORS[op](value, bound):
                failures.append(f"{name} = {value:g} fails {name} {op} {bound:g}")
    if (baseline is None) != (max_drop is None):
        raise ValueError("--baseline and --max-drop must be given together")
    if baseline is not None and max_drop:
        for name, drop_text in _parse_items(max_drop, _DROP_RE, "max-drop"):
            drop = float(drop_text)
            if drop < 0:
                raise ValueError(f"max-drop for {name} must be >= 0, got {drop_text}")
            value = _metric_value(combined, name, "candidate")
            base = _metric_value(baseline, name, "baseline")
            if name in LOWER_IS_BETTER:
                if value > base + drop:
                    failures.append(
                        f"{name} = {value:g} exceeds baseline {base:g} + {drop:g} = {base + drop:g}"
                    )
            elif value < base - drop:
                failures.append(
                    f"{name} = {value:g} below baseline {base:g} - {drop:g} = {base - drop:g}"
                )
    return failures


def check_gate_names(gate: GateConfig, names: tuple[str, ...], where: str) -> None:
    """Raise ``ValueError`` unless the gate's criteria parse and use only ``names``."""
    zeros = dict.fromkeys(names, 0.0)
    try:
        check_gate(zeros, gate=gate.criteria or None, baseline=zeros, max_drop=gate.max_drop or "")
    except ValueError as exc:
        raise ValueError(f"{where}: gate: {exc}") from exc


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate may be deployed, and why not when it may not."""

    passed: bool
    reasons: list[str]
    candidate: dict[str, float]
    champion: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "candidate": dict(self.candidate),
            "champion": None if self.champion is None else dict(self.champion),
        }

    @classmethod
    def from_dict(cls, doc: Any, source: str = "decision") -> GateDecision:
        """Parse a decision document; ``ValueError`` naming ``source`` when malformed."""
        if not isinstance(doc, dict) or not isinstance(doc.get("passed"), bool):
            raise ValueError(f"{source}: not a gate decision (no boolean 'passed')")
        reasons = doc.get("reasons", [])
        if not isinstance(reasons, list):
            raise ValueError(f"{source}: 'reasons' must be a list")
        champion = doc.get("champion")
        return cls(
            passed=doc["passed"],
            reasons=[str(r) for r in reasons],
            candidate=metrics_from_document(doc.get("candidate"), f"{source} candidate"),
            champion=None
            if champion is None
            else metrics_from_document(champion, f"{source} champion"),
        )


def metrics_from_document(doc: Any, source: str) -> dict[str, float]:
    """The numeric metrics of a summary (flat) or a full ``metrics.json`` (``combined``)."""
    if isinstance(doc, dict) and isinstance(doc.get("combined"), dict):
        doc = doc["combined"]
    if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict):
        doc = doc["metrics"]  # a champion record
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a JSON object of metrics")
    metrics = {
        str(k): float(v)
        for k, v in doc.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if not metrics:
        raise ValueError(f"{source}: no numeric metrics found")
    return metrics


def champion_path(model_repository: str | Path, model_name: str) -> Path:
    return Path(model_repository) / model_name / CHAMPION_FILE


def read_champion(model_repository: str | Path, model_name: str) -> dict[str, Any] | None:
    """The deployed model's record (``version``, ``metrics``, ...), or None if none is."""
    path = champion_path(model_repository, model_name)
    if not path.exists():
        return None
    record = read_json(path)
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise ValueError(f"{path}: not a champion record (no 'metrics' object)")
    return record


def decide(
    candidate: Mapping[str, float],
    *,
    champion: Mapping[str, float] | None,
    gate: str | None,
    max_drop: str | None,
) -> GateDecision:
    """Decide whether ``candidate`` may replace ``champion``.

    Args:
        candidate: the candidate's combined metrics.
        champion: the deployed model's metrics, or None when nothing is deployed yet (then
            only the absolute criteria apply).
        gate: absolute criteria, ``METRIC OP VALUE`` comma-separated (``HOTA>=40``).
        max_drop: allowed drop against the champion, ``METRIC=DROP`` comma-separated.

    Raises:
        ValueError: a malformed criterion or an unknown metric name.
    """
    cand = {k: float(v) for k, v in candidate.items()}
    champ = None if champion is None else {k: float(v) for k, v in champion.items()}
    reasons = check_gate(
        cand,
        gate=gate,
        baseline=champ if max_drop else None,
        max_drop=max_drop if champ is not None else None,
    )
    if champ is not None and max_drop:
        reasons = [r.replace("baseline", "champion") for r in reasons]
    elif max_drop:
        # Validate the syntax even when there is no champion to compare with.
        check_gate(cand, baseline=cand, max_drop=max_drop)
    return GateDecision(passed=not reasons, reasons=reasons, candidate=cand, champion=champ)


def main(args: argparse.Namespace) -> int:
    """``qdtrack gate``: 0 = deployable, 1 = blocked (reasons printed and written).

    With ``--passed-output`` the decision goes to that file (``true``/``false``) and both
    decisions exit 0: a pipeline branches on the file, and a non-zero exit then always
    means bad input.
    """
    config = stage_config(args.config, args.set)
    candidate = metrics_from_document(read_json(args.candidate), args.candidate)
    champion: dict[str, float] | None = None
    if args.champion is not None:
        champion = metrics_from_document(read_json(args.champion), args.champion)
    else:
        repository, name = config.deploy.model_repository, config.deploy.model_name
        record = read_champion(repository, name)
        if record is not None:
            champion = metrics_from_document(record, str(champion_path(repository, name)))
    decision = decide(
        candidate,
        champion=champion,
        gate=config.gate.criteria or None,
        max_drop=config.gate.max_drop or None,
    )
    if args.out:
        write_json(args.out, decision.to_dict())
    if args.passed_output:
        path = Path(args.passed_output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("true" if decision.passed else "false", encoding="utf-8")
    against = "no deployed model" if champion is None else "the deployed model"
    if decision.passed:
        print(f"gate: PASS (against {against})")
        return 0
    print(f"gate: FAIL (against {against}), nothing will be deployed:", file=sys.stderr)
    for reason in decision.reasons:
        print(f"  {reason}", file=sys.stderr)
    return 0 if args.passed_output else 1
