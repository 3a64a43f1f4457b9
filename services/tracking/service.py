"""Tracking's bus entrypoints: fold every event about an application into its read model, and
keep the admin's catalogue changes (`category_saved`) for category names and reopen days.

Also runs the outbox relay that publishes what citizens do here (`reopen_requested`,
`satisfaction_recorded`, stored with the read model in one write) and a periodic sweep that drops
the collections of expired rate-limit counters, captchas and portal logins.
"""
from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.common.catalogue_cache import CatalogueCache, catalogue_for
from services.common.codes import normalise_tracking_code
from services.common.events import utcnow
from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.common.relay import OutboxRelay
from services.tracking import domain
from services.tracking.store import TrackingStore

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60


class Catalogue(DependencyProvider):
    """The category catalogue: the file plus the admin changes stored here, shared with the
    Flask side of the process (category names, reopen days, Open311 services)."""

    def setup(self) -> None:
        self.cache = catalogue_for(self.container.config, self.container.service_name)

    def get_dependency(self, worker_ctx) -> CatalogueCache:
        return self.cache


class TrackingService:
    name = "tracking"

    store: TrackingStore = Mongo(TrackingStore)
    relay = OutboxRelay("applications")
    catalogue: CatalogueCache = Catalogue()

    def _fold(self, event: dict) -> None:
        self.store.apply(event["application_id"], event["event_id"],
                         lambda current: domain.fold_event(current, event))

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        self._fold(event)
        # After the fold, so a code never points at nothing; on a redelivery after a crash
        # between the writes the fold is a no-op and these still run (both are idempotent).
        data = event["data"]
        code = data["tracking_code"]
        self.store.register_code(normalise_tracking_code(code) or code, event["application_id"],
                                 data["security_digest"])
        if data.get("caller_type") == "muhtar" and data.get("citizen_ref"):
            self.store.register_muhtar_application(data["citizen_ref"], event["application_id"])
        self.store.index_public(event["application_id"])  # Open311's listing

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """A step on the original's timeline; the duplicate itself points at the original."""
        original = event["data"]["original_application_id"]
        self.store.apply(original, event["event_id"],
                         lambda current: domain.fold_merged(current, event, original=True))
        self.store.apply(event["application_id"], event["event_id"],
                         lambda current: domain.fold_merged(current, event, original=False))

    @event_handler("routing", "category_saved")
    def handle_category_saved(self, event: dict) -> None:
        """An admin created, changed or removed a category: name it on the pages from now on."""
        self.catalogue.apply(event["data"], event["occurred_at"], event["event_id"])

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self._fold(event)

    @event_handler("notify", "notification_sent")
    def handle_notification_sent(self, event: dict) -> None:
        self._fold(event)

    # Case work (routing): every transition is a status and a timeline step.
    @event_handler("routing", "case_acknowledged")
    def handle_case_acknowledged(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_started")
    def handle_case_started(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_transferred")
    def handle_case_transferred(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_returned")
    def handle_case_returned(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_waiting")
    def handle_case_waiting(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_resumed")
    def handle_case_resumed(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_resolved")
    def handle_case_resolved(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_approved")
    def handle_case_approved(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_rejected")
    def handle_case_rejected(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_closed")
    def handle_case_closed(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_reopen_refused")
    def handle_case_reopen_refused(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "case_reopened")
    def handle_case_reopened(self, event: dict) -> None:
        self._fold(event)

    @timer(interval=SWEEP_SECONDS)
    def sweep_expired(self) -> None:
        """Drop expired counters, captchas and logins (there are no TTL indexes)."""
        removed = self.store.sweep(utcnow())
        if removed:
            log.info("expired entries swept", extra={"removed": removed})


SERVICE = TrackingService
