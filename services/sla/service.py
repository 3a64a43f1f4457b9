"""SLA's bus entrypoints: a timer set for every routed case.

There is no claim loop yet: nothing here fires timers, warns or escalates. When it comes it will
claim due sets by `next_due_at` with `find_one_and_update` and publish through an outbox relay.
"""
from __future__ import annotations

from services.common.bootstrap import Composed
from services.common.handlers import event_handler
from services.sla.bootstrap import SlaParts, build


class SlaService:
    name = "sla"

    parts: SlaParts = Composed(build)

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Open the case's timer set, or re-plan it when the case is routed again."""
        self.parts.deadlines.on_routed(event)


SERVICE = SlaService
