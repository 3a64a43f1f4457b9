"""Reporting's composition root: what one reporting process holds, built once.

`ReportingParts` opens reporting's database, makes its store (indexes created) and the reports
use case over it, in the timezone `REPORT_TIMEZONE` names. Reporting publishes nothing, so it
has no outbox relay. The nameko service receives the parts through `Composed(build)`, the Flask
app through `create_app(parts)`: both work on the same objects.
"""
from __future__ import annotations

from services.common.bootstrap import Parts
from services.reporting.reports import Reports
from services.reporting.store import ReportingStore


class ReportingParts(Parts):
    """Reporting's store and its reports use case."""

    store: ReportingStore
    reports: Reports

    def __init__(self, config: dict):
        super().__init__(config, "reporting")

    def compose(self, config: dict) -> None:
        self.store = ReportingStore(self.db)
        self.store.ensure_indexes()
        self.reports = Reports(self.store, config.get("REPORT_TIMEZONE"))


def build(config: dict) -> ReportingParts:
    """Reporting's parts for this process."""
    return ReportingParts(config)
