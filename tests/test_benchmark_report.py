"""The benchmark tables in the docs are generated from the committed results and current."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("report", REPO / "benchmarks" / "report.py")
assert spec is not None and spec.loader is not None
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def test_the_docs_page_is_what_the_results_give() -> None:
    page = (REPO / "docs" / "benchmark-results.md").read_text(encoding="utf-8")
    assert page == report.render(), "regenerate with: .venv/bin/python benchmarks/report.py"


def test_a_changed_figure_changes_the_page(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"machine": "m", "rows": [{"fps": 1.5}]}))
    before = report.render(tmp_path)
    assert "| 1.5 |" in before and "machine | m" in before
    (tmp_path / "x.json").write_text(json.dumps({"machine": "m", "rows": [{"fps": 2.5}]}))
    assert report.render(tmp_path) != before
