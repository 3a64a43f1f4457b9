"""SLA's use cases: plan a routed case's timers, show a case's deadlines, list the overdue.

Shared by the nameko side (the `application_routed` handler) and the Flask side (the staff
API) through the service's composition root; who may see which unit's cases is the HTTP
layer's concern, not decided here.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.common.events import utcnow
from services.sla import domain
from services.sla.store import SlaStore


class Deadlines:
    """The deadlines of routed cases, over sla's store."""

    def __init__(self, store: SlaStore, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.clock = clock

    def on_routed(self, event: dict) -> bool:
        """Open the case's timer set, or re-plan it on a re-routing (False if already applied)."""
        return self.store.apply_to_timers(
            event["application_id"], event["event_id"],
            lambda current: domain.on_routed(current, event),
        )

    def timer_set(self, application_id: str) -> dict | None:
        """A case's timer set as the API shows it (`application_id` named), or None."""
        found = self.store.get_timers(application_id)
        return None if found is None else dict(found, application_id=found["_id"])

    def overdue(self, unit: str | None = None, limit: int = 100) -> dict:
        """Open cases past a deadline now, the longest overdue first: `{as_of, count, items}`."""
        now = self.clock()
        items = [dict(doc, application_id=doc["_id"])
                 for doc in self.store.overdue(now, unit=unit, limit=limit)]
        return {"as_of": now, "count": len(items), "items": items}
