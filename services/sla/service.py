"""SLA's bus entrypoints: a timer set for every routed case.

There is no claim loop yet: nothing here fires timers, warns or escalates. When it comes it will
claim due sets by `next_due_at` with `find_one_and_update` and publish through an outbox relay.
"""
from __future__ import annotations

from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.sla import domain
from services.sla.store import SlaStore


class SlaService:
    name = "sla"

    store: SlaStore = Mongo(SlaStore)

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Open the case's timer set, or re-plan it when the case is routed again."""
        self.store.apply_to_timers(
            event["application_id"], event["event_id"],
            lambda current: domain.on_routed(current, event),
        )


SERVICE = SlaService
