"""Draw a dashboard's time-series panels from Prometheus, without Grafana.

Runs each panel's own PromQL (Grafana variables filled in) as a range query and plots the
series with matplotlib, one subplot per panel: a stand-in for a screenshot, made from the
same queries. Used by tests/monitoring/test_live_queries.py; by hand, e.g. against
`make serve`'s Prometheus:

    python k8s/monitoring/plot_dashboard.py --prometheus http://127.0.0.1:9090 \
        --dashboard k8s/monitoring/dashboards/qdtrack-tracking.json --minutes 15 --out tracking.png
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Series = tuple[dict[str, str], list[float], list[float]]
DEFAULT_VALUES = {"namespace": ".*", "pod": ".*", "model": "qdtrack"}


def substitute(expr: str, values: Mapping[str, str], rate_interval: str) -> str:
    """Grafana's interpolation of ``$name`` / ``${name}`` and ``$__rate_interval``."""
    expr = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], expr)


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """A Grafana legend format (``{{label}}``) applied to one series."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt) or str(labels)


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[Series]:
    """``/api/v1/query_range`` -> (labels, times, values) per series."""
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query_range?{params}", timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr!r}: {body}")
    return [
        (s["metric"], [float(t) for t, _ in s["values"]], [float(v) for _, v in s["values"]])
        for s in body["data"]["result"]
    ]


def timeseries_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        nested = panel.get("panels", []) if panel.get("type") == "row" else [panel]
        found += [p for p in nested if p.get("type") == "timeseries"]
    return found


def plot_dashboard(
    prometheus_url: str,
    dashboard: Mapping[str, Any],
    out: Path,
    *,
    start: float,
    end: float,
    values: Mapping[str, str] | None = None,
    rate_interval: str = "1m",
    titles: Sequence[str] | None = None,
    columns: int = 2,
) -> list[str]:
    """Plot the dashboard's time-series panels (or those named in ``titles``) into ``out``.

    Series that are zero throughout are left out (Grafana would draw them as flat lines).
    Returns the titles of the panels drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = {**DEFAULT_VALUES, **(values or {})}
    chosen = [p for p in timeseries_panels(dashboard) if titles is None or p["title"] in titles]
    if not chosen:
        raise ValueError("no time-series panel to plot")
    step = max((end - start) / 200, 0.5)
    rows = math.ceil(len(chosen) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 3.0 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, chosen, strict=False):
        for target in panel["targets"]:
            expr = substitute(target["expr"], values, rate_interval)
            for labels, times, points in query_range(prometheus_url, expr, start, end, step):
                if not any(points):  # an all-zero series only crowds the legend
                    continue
                ax.plot(
                    [t - start for t in times], points, label=legend(target["legendFormat"], labels)
                )
        unit = panel["fieldConfig"]["defaults"].get("unit", "")
        ax.set_title(f"{panel['title']} [{unit}]", fontsize=10)
        ax.set_xlabel("seconds", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    figure.suptitle(dashboard["title"], fontsize=12)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return [p["title"] for p in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prometheus", required=True, help="Prometheus base URL")
    p.add_argument("--dashboard", required=True, type=Path, help="dashboard JSON file")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p.add_argument("--minutes", type=float, default=15.0, help="time range ending now")
    p.add_argument("--rate-interval", default="1m", help="value of $__rate_interval")
    p.add_argument("--var", action="append", default=[], help="NAME=VALUE of a dashboard variable")
    p.add_argument("--panel", action="append", default=None, help="panel title (repeatable)")
    args = p.parse_args(argv)
    end = time.time()
    drawn = plot_dashboard(
        args.prometheus,
        json.loads(args.dashboard.read_text(encoding="utf-8")),
        args.out,
        start=end - 60 * args.minutes,
        end=end,
        values=dict(v.split("=", 1) for v in args.var),
        rate_interval=args.rate_interval,
        titles=args.panel,
    )
    sys.stdout.write(f"{args.out}: {len(drawn)} panels\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
