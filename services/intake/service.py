"""Intake's bus entrypoints: the outbox relay for `application_received` and contact lookups."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.mongo import Mongo
from services.common.relay import OutboxRelay
from services.intake.store import IntakeStore


class IntakeService:
    name = "intake"

    store: IntakeStore = Mongo(IntakeStore)
    relay = OutboxRelay("applications")

    @rpc
    def get_contact(self, application_id: str) -> dict | None:
        """The citizen's phone / e-mail for an application; only notify calls this."""
        return self.store.contact_for(application_id)


SERVICE = IntakeService
