"""deploy/grafana/acikkapi.json: a dashboard Grafana loads, on metrics the services really export.

Every `acikkapi_*` metric named in a panel's query or in an alert rule must be declared in
services/common/metrics.py (histograms and counters with their series suffixes), so renaming a
metric there breaks this test instead of leaving an empty panel or a silent alert; and every
declared metric is shown somewhere. The queries are parsed by promtool (as recording rules)
where it is installed.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "acikkapi.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
METRICS = ROOT / "services" / "common" / "metrics.py"
PREFIX = "acikkapi_"
# the series a histogram or counter family exposes besides its own name
SUFFIXES = ("", "_bucket", "_sum", "_count", "_created")
METRIC = re.compile(rf"\b{PREFIX}[a-z0-9_]+\b")


def _declared() -> set[str]:
    """The metric names metrics.py declares (Counter, Gauge, Histogram and the collector's
    families), read from its source so that nothing needs importing."""
    return set(re.findall(rf'"({PREFIX}[a-z0-9_]+)"', METRICS.read_text(encoding="utf-8")))


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in _panels(_dashboard())
            for target in panel.get("targets", [])]


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_the_prefix_is_the_one_metrics_py_uses():
    declared = _declared()
    assert len(declared) >= 10, declared
    assert all(name.startswith(PREFIX) for name in declared)


def test_the_dashboard_is_json_with_panels_that_query_prometheus():
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in _panels(dashboard) if p["type"] != "row"]
    assert len(panels) >= 12
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        assert panel["title"] and panel["gridPos"]["w"] > 0 and panel["gridPos"]["h"] > 0
        assert panel["targets"], f"panel {panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["type"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"


@pytest.mark.parametrize("source", ["dashboard", "alert rules"])
def test_every_acikkapi_metric_queried_is_declared_in_metrics_py(source):
    exprs = _dashboard_exprs() if source == "dashboard" else _rule_exprs()
    declared = _declared()
    known = {name + suffix for name in declared for suffix in SUFFIXES}
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, f"the {source} query no {PREFIX} metric"
    unknown = used - known
    assert not unknown, f"{source} query metrics metrics.py does not declare: {sorted(unknown)}"


def test_every_declared_metric_is_on_the_dashboard():
    used = {name for expr in _dashboard_exprs() for name in METRIC.findall(expr)}
    shown = {name for name in _declared() if any(name + s in used for s in SUFFIXES)}
    assert shown == _declared(), f"not on the dashboard: {sorted(_declared() - shown)}"


def test_the_business_and_technical_views_are_there():
    text = " ".join(_dashboard_exprs())
    for needle in ('event="application_received"', "acikkapi_open_backlog",
                   "acikkapi_overdue_cases", "acikkapi_sla_fired_total",
                   "by (channel, outcome)", "acikkapi_http_request_seconds_bucket",
                   'status=~"5.."', "acikkapi_event_handler_seconds_bucket",
                   "acikkapi_events_failed_total", "acikkapi.dead-letter",
                   "acikkapi_outbox_pending", "rabbitmq_queue_messages_ready"):
        assert needle in text, f"the dashboard lacks {needle}"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (scripts/ensure-promtool.sh)")
def test_every_dashboard_query_is_valid_promql(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, expr in enumerate(_dashboard_exprs())]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
