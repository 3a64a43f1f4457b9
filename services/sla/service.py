"""SLA's bus entrypoints: every routing event a case's clock follows, and the sweep.

Each handler folds its event into the case's clock exactly once (`Deadlines.on_event`). The
sweep, a nameko timer, wakes the cases whose minute has passed and fires what fell due
(warnings, breaches, escalations, the 48-hour notice); the relay in the parts publishes them.
"""
from __future__ import annotations

import logging

from nameko.rpc import rpc
from nameko.timer import timer

from services.common.bootstrap import Composed
from services.common.handlers import event_handler
from services.common.metrics import SLA_FIRED, SLA_SWEEP_LAG, SLA_SWEEP_SECONDS
from services.sla.bootstrap import SlaParts, build

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5  # a minute's deadlines fire within this after the minute ends


class SlaService:
    name = "sla"

    parts: SlaParts = Composed(build)

    def _follow(self, event: dict) -> None:
        self.parts.deadlines.on_event(event)

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Open the case's clock, or move it to the unit it was routed to again."""
        self._follow(event)

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_acknowledged")
    def handle_case_acknowledged(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_started")
    def handle_case_started(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_waiting")
    def handle_case_waiting(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_resumed")
    def handle_case_resumed(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_transferred")
    def handle_case_transferred(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_returned")
    def handle_case_returned(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_resolved")
    def handle_case_resolved(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_rejected")
    def handle_case_rejected(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_closed")
    def handle_case_closed(self, event: dict) -> None:
        self._follow(event)

    @event_handler("routing", "case_reopened")
    def handle_case_reopened(self, event: dict) -> None:
        self._follow(event)

    @timer(interval=SWEEP_SECONDS)
    def sweep(self) -> None:
        """Fire what fell due in the minutes that have ended since the last sweep."""
        report = self.parts.deadlines.sweep()
        SLA_SWEEP_SECONDS.observe(report.seconds)
        SLA_SWEEP_LAG.set(0 if report.caught_up else report.lag_seconds)
        SLA_FIRED.inc(report.fired)
        if report.woken or report.failed:
            log.info("sla sweep", extra={"minutes": report.minutes, "woken": report.woken,
                                         "fired": report.fired, "failed": len(report.failed),
                                         "seconds": round(report.seconds, 3)})

    @rpc
    def top_of_ladder(self, institution: str) -> list[dict]:
        """The open cases of `institution` that reached its head (level 4), longest waiting
        first, with how long each has waited there: notify's morning digest for the mayor's
        office. Public codes only."""
        return self.parts.deadlines.top_of_ladder(institution)


SERVICE = SlaService
