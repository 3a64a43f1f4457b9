"""Tracking's bus entrypoints: fold every event about an application into its read model, keep
the admin's catalogue changes (`category_saved`) for category names and reopen days, and record
the satisfaction scores citizens reply to the survey SMS with (`record_satisfaction_reply`, RPC
from intake, which finds the sender's applications).

Its parts (`bootstrap.TrackingParts`) run the outbox relay that publishes what citizens do here
(`reopen_requested`, `satisfaction_recorded`, stored with the read model in one write); a timer
here drops the collections of expired rate-limit counters, captchas and portal logins.
"""
from __future__ import annotations

import logging

from nameko.rpc import rpc
from nameko.timer import timer

from services.common.bootstrap import Composed
from services.common.codes import normalise_tracking_code
from services.common.events import utcnow
from services.common.handlers import event_handler
from services.tracking import domain
from services.tracking.bootstrap import TrackingParts, build
from services.tracking.schemas import SatisfactionReplySchema

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60
_SATISFACTION_REPLY = SatisfactionReplySchema()


class TrackingService:
    name = "tracking"

    # The process's store, catalogue and relay, shared with its Flask side (`web.create_app`).
    parts: TrackingParts = Composed(build)

    def _fold(self, event: dict) -> None:
        self.parts.store.apply(event["application_id"], event["event_id"],
                               lambda current: domain.fold_event(current, event))

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        self._fold(event)
        # After the fold, so a code never points at nothing; on a redelivery after a crash
        # between the writes the fold is a no-op and these still run (both are idempotent).
        data = event["data"]
        code = data["tracking_code"]
        store = self.parts.store
        store.register_code(normalise_tracking_code(code) or code, event["application_id"],
                            data["security_digest"])
        if data.get("caller_type") == "muhtar" and data.get("citizen_ref"):
            store.register_muhtar_application(data["citizen_ref"], event["application_id"])
        store.index_public(event["application_id"])  # Open311's listing

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """A step on the original's timeline; the duplicate itself points at the original."""
        original = event["data"]["original_application_id"]
        store = self.parts.store
        store.apply(original, event["event_id"],
                    lambda current: domain.fold_merged(current, event, original=True))
        store.apply(event["application_id"], event["event_id"],
                    lambda current: domain.fold_merged(current, event, original=False))

    @event_handler("routing", "category_saved")
    def handle_category_saved(self, event: dict) -> None:
        """An admin created, changed or removed a category: name it on the pages from now on."""
        self.parts.catalogue.apply(event["data"], event["occurred_at"], event["event_id"])

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        self._fold(event)

    @event_handler("sla", "deadline_planned")
    def handle_deadline_planned(self, event: dict) -> None:
        """The expected date the page shows, in working time, from sla."""
        self.parts.store.apply(event["application_id"], event["event_id"],
                               lambda current: domain.fold_deadline(current, event))

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self._fold(event)

    @event_handler("notify", "notification_sent")
    def handle_notification_sent(self, event: dict) -> None:
        """A message to the citizen is a step of their timeline; a staff alert is not."""
        if event["data"].get("audience", "citizen") == "citizen":
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

    @rpc
    def record_satisfaction_reply(self, application_ids: list[str], score: int,
                                  reply_id: str | None = None) -> dict | None:
        """Rate, with `score` (1–5, from an SMS reply to the survey), the most recently
        concluded of `application_ids` still awaiting a rating: the rating and its
        `satisfaction_recorded` (`source: sms`) in one write, published by the relay, as the
        pages do. `{application_id, tracking_code, score}` of what was rated, or None when none
        awaits a rating. The same `reply_id` again answers the same and records nothing more.

        Arguments that do not load (`SatisfactionReplySchema`) raise `ValidationError`.
        """
        valid = _SATISFACTION_REPLY.load({"application_ids": application_ids, "score": score,
                                          "reply_id": reply_id})
        return self.parts.tracker.rate_by_reply(valid["application_ids"], valid["score"],
                                                valid["reply_id"])

    @timer(interval=SWEEP_SECONDS)
    def sweep_expired(self) -> None:
        """Drop expired counters, captchas and logins (there are no TTL indexes)."""
        removed = self.parts.store.sweep(utcnow())
        if removed:
            log.info("expired entries swept", extra={"removed": removed})


SERVICE = TrackingService
