"""Every PromQL expression of every dashboard panel, run against a real Prometheus that
scrapes a real tracking sidecar pair and a real Triton (PyTriton) after real traffic.

Each query must return data with a finite value. Queries on metrics that this stack cannot
emit are skipped with the reason: Triton's GPU metrics (no GPU here). Queries on the model
quality gauges the sidecar does not export yet are expected failures until it does.
The dashboards' variable queries, the autoscaler's adapter queries and the alert rules are
checked on the same data, and the tracking dashboard is drawn to a PNG from its own queries.
"""

from __future__ import annotations

import importlib.util
import math
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from monitoring_stack import NAMESPACE, api
from promql_helpers import (
    K8S,
    adapter_rules,
    dashboard_paths,
    label_values_query,
    load_dashboard,
    metric_names,
    panel_queries,
    render_adapter_query,
    sidecar_sample_names,
    substitute,
    variables,
)

pytestmark = pytest.mark.integration

VALUES = {"namespace": NAMESPACE, "pod": ".*", "model": "qdtrack"}
RATE_INTERVAL = "30s"  # covers the whole traffic burst at 0.5 s scrapes
QUERIES = list(panel_queries())


def _exported(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }


@pytest.fixture(scope="module")
def emitted(live_stack: dict[str, Any]) -> set[str]:
    """Sample names the running sidecars and Triton expose right now."""
    names = _exported(f"http://127.0.0.1:{live_stack['triton'].ports['metrics']}/metrics")
    for sidecar in live_stack["sidecars"]:
        names |= _exported(f"http://127.0.0.1:{sidecar.ports['http']}/metrics")
    return names


def test_traffic_exercised_every_path(live_stack: dict[str, Any]) -> None:
    assert live_stack["traffic"].statuses == {
        "replay": 200,
        "empty_body": 400,
        "bad_image": 400,
        "unknown_stream": 404,
        "out_of_order": 409,
        "moved_to_b": 200,
        "back_to_a": 200,
        "closed": 204,
    }


def test_a_moved_stream_continues_from_redis(live_stack: dict[str, Any]) -> None:
    """What the hash ring cannot prevent, the restore covers: B continues A's stream."""
    on_a, on_b = live_stack["traffic"].moved
    assert on_a["last_frame_index"] is not None and on_a["next_track_id"] > 0
    assert on_b == on_a


@pytest.mark.parametrize(
    "series",
    [
        "qdtrack_sidecar_frames_total",
        "qdtrack_sidecar_frames_replayed_total",
        "qdtrack_sidecar_new_tracks_total",
        "qdtrack_sidecar_streams_opened_total",
        "qdtrack_sidecar_streams_closed_total",
        "qdtrack_sidecar_streams_expired_total",
        "qdtrack_sidecar_state_restores_total",
        'qdtrack_sidecar_frames_rejected_total{reason=~"empty_body|bad_image|unknown_stream|out_of_order"}',
        'nv_inference_request_success{model="qdtrack"}',
    ],
)
def test_the_traffic_moved_the_counters(live_stack: dict[str, Any], series: str) -> None:
    """Not just zeros: each of these counted something (so the panels show real events)."""
    query = f"count({series} > 0)" if "reason" in series else f"sum({series})"
    result = api(
        live_stack["prometheus"], "query", query=query, time=str(live_stack["traffic"].end)
    )
    value = float(result["result"][0]["value"][1]) if result["result"] else 0.0
    assert value >= (4 if "reason" in series else 1), f"{query} = {value}"


def test_the_sidecars_emit_every_metric_they_define(emitted: set[str]) -> None:
    assert sidecar_sample_names() <= emitted


@pytest.mark.parametrize(
    ("uid", "panel", "target"),
    QUERIES,
    ids=[f"{u}:{p['title']}:{t['refId']}" for u, p, t in QUERIES],
)
def test_panel_query_returns_data(
    live_stack: dict[str, Any], emitted: set[str], uid: str, panel: dict, target: dict
) -> None:
    expr = substitute(target["expr"], VALUES, RATE_INTERVAL)
    names = metric_names(expr)
    missing = {n for n in names if n not in emitted}
    if missing and all(n.startswith("nv_gpu_") for n in missing):
        pytest.skip(f"Triton emits {sorted(missing)} only with a GPU")
    assert not missing, f"{sorted(missing)} are not exported by the running stack"
    result = api(live_stack["prometheus"], "query", query=expr, time=str(live_stack["traffic"].end))
    assert result["result"], f"{uid}/{panel['title']}: no data for {expr}"
    values = [float(s["value"][1]) for s in result["result"]]
    assert any(math.isfinite(v) for v in values), f"{uid}/{panel['title']}: {values}"


def test_per_pod_panels_see_both_sidecars(live_stack: dict[str, Any]) -> None:
    restores_total = f'qdtrack_sidecar_state_restores_total{{namespace="{NAMESPACE}"}}'
    query = f"sum by (pod) (increase({restores_total}[1m]))"
    result = api(
        live_stack["prometheus"], "query", query=query, time=str(live_stack["traffic"].end)
    )
    restores = {s["metric"]["pod"]: float(s["value"][1]) for s in result["result"]}
    assert restores["serving-a"] > 0 and restores["serving-b"] > 0, restores


@pytest.mark.parametrize("path", dashboard_paths(), ids=lambda p: p.stem)
def test_variable_queries_find_values(live_stack: dict[str, Any], path: Path) -> None:
    for name, variable in variables(load_dashboard(path)).items():
        if variable["type"] != "query":
            continue
        selector, label = label_values_query(variable["definition"])
        found = api(
            live_stack["prometheus"],
            f"label/{label}/values",
            **{"match[]": substitute(selector, VALUES)},
        )
        assert found, f"${name}: no values for {variable['definition']}"


def test_autoscaler_metrics_from_the_adapter_queries(live_stack: dict[str, Any]) -> None:
    per_metric = {}
    for rule in adapter_rules():
        query = render_adapter_query(
            rule, f'namespace="{NAMESPACE}",pod=~"serving-a|serving-b"', "pod"
        )
        query = query.replace("[1m]", f"[{RATE_INTERVAL}]")
        result = api(
            live_stack["prometheus"], "query", query=query, time=str(live_stack["traffic"].end)
        )
        per_metric[rule["name"]["as"]] = {
            s["metric"]["pod"]: float(s["value"][1]) for s in result["result"]
        }
    assert per_metric["qdtrack_frames_in_flight"]["serving-a"] > 0
    assert per_metric["triton_queue_time_us_per_request"]["serving-a"] >= 0


def test_alert_rules_evaluate_without_errors(live_stack: dict[str, Any]) -> None:
    groups = api(live_stack["prometheus"], "rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 10
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))


def test_tracking_dashboard_draws_from_its_own_queries(
    live_stack: dict[str, Any], tmp_path: Path
) -> None:
    spec = importlib.util.spec_from_file_location(
        "plot_dashboard", K8S / "monitoring" / "plot_dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    out = tmp_path / "tracking.png"
    traffic = live_stack["traffic"]
    drawn = plot.plot_dashboard(
        f"http://127.0.0.1:{live_stack['prometheus'].ports['http']}",
        load_dashboard(K8S / "monitoring" / "dashboards" / "qdtrack-tracking.json"),
        out,
        start=traffic.start - 2,
        end=traffic.end,
        values=VALUES,
        rate_interval="3s",
        titles=[
            "Frame latency p50 by stage",
            "Frame latency p99 by stage",
            "Rejected frames by reason",
            "State restores and resets",
            "Active streams per pod",
            "New tracks, replays, store errors",
        ],
    )
    assert len(drawn) == 6
    assert out.stat().st_size > 20_000
