"""Reporting's bus entrypoints: record a fact per event and fold it into the summary."""
from __future__ import annotations

from services.common.bootstrap import Composed
from services.common.handlers import event_handler
from services.reporting.bootstrap import ReportingParts, build


class ReportingService:
    name = "reporting"

    parts: ReportingParts = Composed(build)

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """A duplicate linked to an earlier application: a fact (how many duplicates came in),
        never a summary, so the application is not counted twice."""
        self.parts.reports.record_fact(event)


SERVICE = ReportingService
