"""Tracking's bus entrypoints: fold every event about an application into its read model."""
from __future__ import annotations

from services.common.codes import normalise_tracking_code
from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.tracking import domain
from services.tracking.store import TrackingStore


class TrackingService:
    name = "tracking"

    store: TrackingStore = Mongo(TrackingStore)

    def _fold(self, event: dict) -> None:
        self.store.apply(event["application_id"], event["event_id"],
                         lambda current: domain.fold_event(current, event))

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        self._fold(event)
        # After the fold, so a code never points at nothing; on a redelivery after a crash
        # between the two writes the fold is a no-op and this still runs.
        code = event["data"]["tracking_code"]
        self.store.register_code(normalise_tracking_code(code) or code, event["application_id"])

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        self._fold(event)

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self._fold(event)

    @event_handler("notify", "notification_sent")
    def handle_notification_sent(self, event: dict) -> None:
        self._fold(event)


SERVICE = TrackingService
