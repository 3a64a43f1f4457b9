"""Reporting's bus entrypoints: record a fact per event and fold it into the summary: the
routing outcome, the case's whole life (every case event), SLA outcomes, escalations and the
citizen's rating."""
from __future__ import annotations

import logging

from nameko.timer import timer

from services.common.bootstrap import Composed
from services.common.handlers import event_handler
from services.common.retention import RUN_SECONDS as RETENTION_SECONDS
from services.reporting.bootstrap import ReportingParts, build

log = logging.getLogger(__name__)
GENERATE_SECONDS = 60
PROJECT_SECONDS = 1


class ReportingService:
    name = "reporting"

    parts: ReportingParts = Composed(build)

    @timer(interval=RETENTION_SECONDS)
    def anonymise_expired(self) -> None:
        """KVKK: anonymise the call-back notes of applications concluded long ago."""
        self.parts.retention_job.run()

    @timer(interval=PROJECT_SECONDS)
    def project_pending(self) -> None:
        """Fold what the handlers stored and no run has taken yet (another process's, or one
        that arrived while this one was busy)."""
        self.parts.reports.projector.run(wait=False)

    @timer(interval=GENERATE_SECONDS)
    def generate_reports(self) -> None:
        """The weekly and monthly report files, once their period has ended (seed 004);
        each stored once, whatever the number of reporting processes."""
        made = self.parts.reports.generate_due()
        if made:
            log.info("reports generated", extra={"count": len(made)})

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_acknowledged")
    def handle_case_acknowledged(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_started")
    def handle_case_started(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_transferred")
    def handle_case_transferred(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_returned")
    def handle_case_returned(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_waiting")
    def handle_case_waiting(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_resumed")
    def handle_case_resumed(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_resolved")
    def handle_case_resolved(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_approved")
    def handle_case_approved(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_rejected")
    def handle_case_rejected(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("routing", "case_closed")
    def handle_case_closed(self, event: dict) -> None:
        self.parts.retention.record(event)  # KVKK: the call-back notes' period starts
        self.parts.reports.record(event)

    @event_handler("routing", "case_reopened")
    def handle_case_reopened(self, event: dict) -> None:
        self.parts.retention.record(event)
        self.parts.reports.record(event)

    @event_handler("routing", "case_reopen_refused")
    def handle_case_reopen_refused(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("sla", "sla_outcome_recorded")
    def handle_sla_outcome_recorded(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("sla", "case_escalated")
    def handle_case_escalated(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("tracking", "satisfaction_recorded")
    def handle_satisfaction_recorded(self, event: dict) -> None:
        self.parts.reports.record(event)

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """A duplicate linked to an earlier application: a fact (how many duplicates came in),
        never a summary, so the application is not counted twice."""
        self.parts.reports.record(event)


SERVICE = ReportingService
