"""Reporting's bus entrypoints: record a fact per event and fold it into the summary."""
from __future__ import annotations

from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.reporting import domain
from services.reporting.store import ReportingStore


class ReportingService:
    name = "reporting"

    store: ReportingStore = Mongo(ReportingStore)

    def _record(self, event: dict) -> None:
        # Two idempotent writes, each keyed by the event: a redelivery after a crash between
        # them completes the missing one and repeats nothing.
        self.store.apply(event["application_id"], event["event_id"],
                         lambda current: domain.fold_summary(current, event))
        self.store.record_fact(domain.fact_from_event(event))

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        self._record(event)

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        self._record(event)

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self._record(event)

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """A duplicate linked to an earlier application: a fact (how many duplicates came in),
        never a summary, so the application is not counted twice."""
        self.store.record_fact(domain.fact_from_event(event))


SERVICE = ReportingService
