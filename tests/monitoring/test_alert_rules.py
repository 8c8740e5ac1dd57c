"""The alert rules: promtool checks them and runs their unit tests (alerts_test.yaml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml
from promql_helpers import (
    EXTERNAL_METRICS,
    PROMETHEUS_RULE,
    TRITON_METRICS,
    alert_rules,
    metric_names,
    sidecar_sample_names,
)

HERE = Path(__file__).resolve().parent
RULES_FILE = "qdtrack-alerts.rules.yaml"  # the name alerts_test.yaml loads


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool not found: install Debian's `prometheus` package (make setup-serving)"
        )
    return promtool


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The PrometheusRule's spec as a plain rule file, beside a copy of the unit tests."""
    document = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    (tmp_path / RULES_FILE).write_text(yaml.safe_dump(document["spec"], sort_keys=False))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    return tmp_path


def test_promtool_checks_the_rules(rules_dir: Path) -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", RULES_FILE],
        cwd=rules_dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass(rules_dir: Path) -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", "alerts_test.yaml"],
        cwd=rules_dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text(encoding="utf-8"))
    tested = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])}
    firing = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    alerts = {rule["alert"] for rule in alert_rules() if "alert" in rule}
    assert alerts == tested == firing, (alerts ^ tested) | (alerts ^ firing)


def test_alerts_use_known_metrics_and_carry_severity() -> None:
    known = sidecar_sample_names() | TRITON_METRICS | EXTERNAL_METRICS
    for rule in alert_rules():
        expr = rule["expr"]
        promql_parser.parse(expr)
        unknown = metric_names(expr) - known
        assert not unknown, f"{rule.get('alert')}: unknown metrics {unknown}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
