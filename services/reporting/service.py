"""Reporting's bus entrypoints: every event it follows, folded in batches into the application
summaries and the report buckets (one batched method over all its queues), and the timers that
fold what other processes stored, generate the report files and apply KVKK retention."""
from __future__ import annotations

import logging

from nameko.timer import timer

from services.common.batched import batched_event_handler
from services.common.bootstrap import Composed
from services.common.retention import RUN_SECONDS as RETENTION_SECONDS
from services.common.topology import service_subscriptions
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
        """Fold the events stored by processes that did not hold the projector's lease (and
        renew it: the process holding it folds its own batches as they come)."""
        self.parts.reports.projector.run(wait=False)

    @timer(interval=GENERATE_SECONDS)
    def generate_reports(self) -> None:
        """The weekly and monthly report files, once their period has ended (seed 004);
        each stored once, whatever the number of reporting processes."""
        made = self.parts.reports.generate_due()
        if made:
            log.info("reports generated", extra={"count": len(made)})

    @batched_event_handler(*service_subscriptions("reporting"))
    def record_events(self, events: list[dict]) -> None:
        """Every event reporting follows, a batch at a time: the routing outcome, the case's
        whole life, SLA outcomes, escalations, the citizen's rating, and duplicates merged (a
        fact, never a summary, so an application is not counted twice)."""
        # KVKK: where the call-back notes' period starts (and stops, on a reopening)
        self.parts.retention.record_many(events, self.parts.reports.spawn_map)
        self.parts.reports.record_batch(events)


SERVICE = ReportingService
