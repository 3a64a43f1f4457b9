"""Write deploy/k8s/components/monitoring/prometheusrule.yaml from deploy/prometheus/rules.yaml.

The alert rules have one source, deploy/prometheus/rules.yaml (checked and unit-tested by
promtool). Clusters run by the Prometheus Operator load rules from a PrometheusRule resource
instead of a file, so this wraps the same groups in one; tests/deploy/test_k8s.py fails when the
two differ. Run after changing the rules:

    .venv/bin/python scripts/sync_prometheusrule.py
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
TARGET = ROOT / "deploy" / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"
HEADER = """\
# GENERATED from deploy/prometheus/rules.yaml by scripts/sync_prometheusrule.py: edit the rules
# there, then run the script (tests/deploy/test_k8s.py fails while the two differ). Comments and
# the reasons for each threshold are in rules.yaml.
"""


def prometheus_rule() -> dict:
    """The PrometheusRule resource carrying rules.yaml's groups."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "acikkapi", "labels": {"app.kubernetes.io/part-of": "acikkapi"}},
        "spec": {"groups": groups},
    }


def main() -> None:
    """Write the file."""
    TARGET.write_text(HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100,
                                              allow_unicode=True), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
