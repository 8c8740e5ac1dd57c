"""Dashboards as code, checked without Grafana.

Structure (uid, schemaVersion, no ``__inputs``, datasource through ``$datasource``, unique ids,
valid grid positions, units), every PromQL expression parses, every metric is one the stack
emits, and every sidecar metric is on some dashboard. The same expressions run against a real
Prometheus in ``test_live_queries.py``.
"""

from __future__ import annotations

import json

import promql_parser
import pytest
from promql_helpers import (
    TRITON_METRICS,
    adapter_rules,
    dashboard_paths,
    family,
    label_values_query,
    load_dashboard,
    metric_names,
    panel_queries,
    panels,
    render_adapter_query,
    sidecar_sample_names,
    substitute,
    variables,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {"qdtrack-tracking", "qdtrack-triton", "qdtrack-model-quality"}
# what Grafana would put in for each variable ("All" = the allValue ".*")
VALUES = {"namespace": ".*", "pod": ".*", "model": "qdtrack", "datasource": "prometheus"}


def test_the_three_dashboards_exist() -> None:
    assert {load_dashboard(p)["uid"] for p in dashboard_paths()} == EXPECTED


@pytest.mark.parametrize("path", dashboard_paths(), ids=lambda p: p.stem)
def test_dashboard_structure(path) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_text(encoding="utf-8")
    dashboard = json.loads(raw)
    # the "export for sharing" form is not resolved by the Grafana sidecar
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "DS_PROMETHEUS" not in raw
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
        assert key in dashboard, key
    assert dashboard["uid"] == path.stem
    assert len(dashboard["uid"]) <= 40  # Grafana's limit
    datasource = variables(dashboard)["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for name, variable in variables(dashboard).items():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, name
            selector, _label = label_values_query(variable["definition"])
            promql_parser.parse(substitute(selector, VALUES))
            assert variable["includeAll"] is False or variable["allValue"] == ".*"

    top_level = dashboard["panels"]
    ids = [p["id"] for p in top_level] + [p["id"] for p in panels(dashboard) if p not in top_level]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in top_level:
        grid = panel["gridPos"]
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not cells & occupied, f"{panel['title']!r} overlaps another panel"
        occupied |= cells

    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']!r} has no unit"
        assert panel.get("description"), f"{panel['title']!r} has no description"
        assert panel["targets"], f"{panel['title']!r} has no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE


@pytest.mark.parametrize(
    ("uid", "panel", "target"),
    list(panel_queries()),
    ids=[f"{u}:{p['title']}:{t['refId']}" for u, p, t in panel_queries()],
)
def test_every_panel_query_parses(uid: str, panel: dict, target: dict) -> None:
    expr = substitute(target["expr"], VALUES)
    promql_parser.parse(expr)  # raises ValueError on a syntax error
    names = metric_names(expr)
    assert names, f"{uid}/{panel['title']}: no metric in {expr!r}"
    unknown = {n for n in names if n not in sidecar_sample_names()} - TRITON_METRICS
    assert not unknown, f"{uid}/{panel['title']}: metrics nobody exports: {sorted(unknown)}"


def test_a_bad_expression_is_refused() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(qdtrack_sidecar_frames_total[5m])")


def test_every_sidecar_metric_is_on_a_dashboard() -> None:
    used = {
        family(n)
        for _, _, t in panel_queries()
        for n in metric_names(substitute(t["expr"], VALUES))
    }
    missing = {family(n) for n in sidecar_sample_names()} - used
    assert not missing, f"sidecar metrics no panel shows: {sorted(missing)}"


def test_tracking_dashboard_shows_what_the_issue_asks_for() -> None:
    dashboard = load_dashboard(next(p for p in dashboard_paths() if p.stem == "qdtrack-tracking"))
    exprs = " ".join(t["expr"] for p in panels(dashboard) for t in p["targets"])
    for needle in (
        "qdtrack_sidecar_active_streams",
        "qdtrack_sidecar_active_tracks",
        "histogram_quantile(0.5, sum by (le, stage)",
        "histogram_quantile(0.99, sum by (le, stage)",
        "sum by (reason) (rate(qdtrack_sidecar_frames_rejected_total",
        "qdtrack_sidecar_state_restores_total",
        "qdtrack_sidecar_state_resets_total",
    ):
        assert needle in exprs, needle


def test_adapter_queries_parse_and_feed_the_hpa() -> None:
    import yaml
    from promql_helpers import K8S

    hpa = yaml.safe_load((K8S / "base" / "hpa.yaml").read_text(encoding="utf-8"))
    wanted = {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]}
    provided = set()
    for rule in adapter_rules():
        provided.add(rule["name"]["as"])
        query = render_adapter_query(rule, 'namespace="qdtrack",pod=~"a|b"', "pod")
        promql_parser.parse(query)
        promql_parser.parse(rule["seriesQuery"])
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert wanted <= provided, f"HPA metrics without an adapter rule: {wanted - provided}"
