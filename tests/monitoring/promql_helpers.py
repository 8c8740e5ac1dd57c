"""Shared helpers of the monitoring tests: dashboards, their PromQL, the metric names.

The dashboards reference Grafana variables; ``substitute`` turns an expression into plain
PromQL the way Grafana would for one choice of the variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
DASHBOARD_DIR = K8S / "monitoring" / "dashboards"
PROMETHEUS_RULE = K8S / "monitoring" / "prometheusrule.yaml"
ADAPTER_VALUES = K8S / "monitoring" / "prometheus-adapter-values.yaml"

#: Triton's metric families the dashboards may use.
TRITON_METRICS = frozenset(
    {
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_pending_request_count",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
        "nv_gpu_memory_total_bytes",
        "nv_gpu_power_usage",
        "nv_gpu_power_limit",
        "nv_energy_consumption",
        "nv_cpu_utilization",
        "nv_cpu_memory_used_bytes",
        "nv_cpu_memory_total_bytes",
    }
)
#: Metrics of other exporters that only the alert rules use (kube-state-metrics, Prometheus).
EXTERNAL_METRICS = frozenset(
    {
        "up",
        "kube_pod_container_status_ready",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
    }
)


def dashboard_paths() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def substitute(expr: str, values: Mapping[str, str], rate_interval: str = "1m") -> str:
    """Grafana's variable interpolation for ``$name`` / ``${name}`` and ``$__rate_interval``."""
    expr = expr.replace("$__rate_interval", rate_interval).replace(
        "${__rate_interval}", rate_interval
    )

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def _children(node: Any) -> list[Any]:
    """The sub-expressions of a promql_parser node."""
    if isinstance(node, promql_parser.MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, promql_parser.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, promql_parser.AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, promql_parser.Call):
        return list(node.args)
    if isinstance(
        node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        return [node.expr]
    return []  # literals


def metric_names(expr: str) -> set[str]:
    """Metric names selected anywhere in a PromQL expression."""
    names: set[str] = set()
    stack: list[Any] = [promql_parser.parse(expr)]
    while stack:
        node = stack.pop()
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        stack += _children(node)
    return names


def family(sample_name: str) -> str:
    """The metric family of a sample name (``x_bucket`` / ``x_sum`` / ``x_count`` -> ``x``)."""
    return re.sub(r"_(bucket|sum|count|total|created)$", "", sample_name)


def sidecar_sample_names() -> set[str]:
    """Every sample name the sidecar's registry exposes (``_total``, ``_bucket``, ...)."""
    from serving.sidecar.metrics import SidecarMetrics

    metrics = SidecarMetrics()
    # the model gauges have samples once a model is served and a deploy record is read
    metrics.observe_model_version("qdtrack-000000000000", {"HOTA": 1.0, "MOTA": 1.0, "IDF1": 1.0})
    names = set()
    for metric in metrics.registry.collect():
        names.update(sample.name for sample in metric.samples)
    return {n for n in names if not n.endswith("_created")}


def panel_queries() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard uid, panel, target) for every query of every dashboard."""
    for path in dashboard_paths():
        dashboard = load_dashboard(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                yield dashboard["uid"], panel, target


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def adapter_rules() -> list[dict[str, Any]]:
    values = yaml.safe_load(ADAPTER_VALUES.read_text(encoding="utf-8"))
    rules: list[dict[str, Any]] = values["rules"]["custom"]
    return rules


def render_adapter_query(rule: Mapping[str, Any], label_matchers: str, group_by: str) -> str:
    """A prometheus-adapter ``metricsQuery`` with its Go-template fields filled in."""
    query: str = rule["metricsQuery"]
    return query.replace("<<.LabelMatchers>>", label_matchers).replace("<<.GroupBy>>", group_by)


def label_values_query(definition: str) -> tuple[str, str]:
    """``label_values(selector, label)`` -> (selector, label), as Grafana's Prometheus source."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition.strip())
    if match is None:
        raise ValueError(f"not a label_values(selector, label) query: {definition!r}")
    return match.group(1), match.group(2)
