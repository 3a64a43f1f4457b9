"""deploy/prometheus/rules.yaml: valid for Prometheus, and the alerts fire when they should.

`promtool check rules` parses the rules and their PromQL; `promtool test rules` runs
deploy/prometheus/rules.test.yaml, where each alert meets synthetic series that must make it fire
and others that must leave it silent. promtool comes from Debian's prometheus package
(scripts/ensure-promtool.sh, run by `make test`); without it these two tests skip and say why.
The static checks below need no promtool.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "rules.yaml"
RULE_TESTS = RULES_DIR / "rules.test.yaml"
RUNBOOK = ROOT / "docs" / "operations.md"

# What issue 14 asks to be alerted on, and the alert that covers it.
REQUIRED = {
    "queue depth": "AcikkapiQueueBacklog",
    "dead-letter queue not empty": "AcikkapiDeadLetterQueueNotEmpty",
    "SLA sweep lag": "AcikkapiSlaSweepLagging",
    "notification failures": "AcikkapiNotificationFailures",
    "5xx rate": "AcikkapiHttp5xxRate",
    "stuck outbox": "AcikkapiOutboxStuck",
    "replica-set member down": "MongoReplicaSetMemberDown",
}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (scripts/ensure-promtool.sh installs Debian's prometheus)",
)


def _alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


@needs_promtool
def test_promtool_accepts_the_rules():
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in done.stdout


@needs_promtool
def test_the_alerts_fire_on_synthetic_series_and_stay_silent_otherwise():
    done = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS.name], cwd=RULES_DIR,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_required_alert_exists_with_a_severity_and_a_runbook():
    alerts = _alerts()
    for concern, name in REQUIRED.items():
        assert name in alerts, f"no alert for {concern} ({name})"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook"].startswith("docs/operations.md#"), name


def test_every_runbook_link_names_a_section_of_the_runbook():
    headings = re.findall(r"(?m)^#+\s+(.+?)\s*$", RUNBOOK.read_text(encoding="utf-8"))
    # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens
    anchors = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
               for heading in headings}
    for name, rule in _alerts().items():
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert anchor in anchors, f"{name}: docs/operations.md has no section #{anchor}"


def test_the_unit_tests_show_the_key_alerts_both_firing_and_silent():
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    for name in ("AcikkapiDeadLetterQueueNotEmpty", "AcikkapiOutboxStuck",
                 "AcikkapiHttp5xxRate"):
        assert name in fired, f"{name} is never shown firing"
        assert name in silent, f"{name} is never shown silent"
    assert set(REQUIRED.values()) <= fired
