"""Intake's repository: citizens, applications (with their outbox), tracking-code claims."""
from __future__ import annotations

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import utcnow
from services.common.mongo import Index, ensure_indexes
from services.common.outbox import OUTBOX_AT, insert_with_events

INDEXES = {
    "applications": [
        Index([("citizen_id", 1), ("received_at", -1)]),
        Index([("tracking_code", 1)]),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
    "citizens": [],
    # _id is the tracking code: uniqueness without a secondary unique index
    "tracking_codes": [],
}


class IntakeStore:
    """Everything intake persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.applications = db["applications"]
        self.citizens = db["citizens"]
        self.tracking_codes = db["tracking_codes"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def reserve_tracking_code(self, code: str, application_id: str) -> bool:
        """Claim a tracking code; False if it is already taken."""
        try:
            self.tracking_codes.insert_one({"_id": code, "application_id": application_id})
        except DuplicateKeyError:
            return False
        return True

    def save_citizen(self, citizen: dict) -> None:
        """Register the citizen, or refresh the contact details of a known one."""
        now = utcnow()
        fields = {k: v for k, v in citizen.items() if k not in ("_id", "tckn")}
        self.citizens.update_one(
            {"_id": citizen["_id"]},
            {"$set": dict(fields, updated_at=now),
             "$setOnInsert": {"tckn": citizen["tckn"], "created_at": now}},
            upsert=True,
        )

    def save_application(self, application: dict, events: list[dict]) -> None:
        """Store the application and its events in one write."""
        insert_with_events(self.applications, application, events)

    def contact_for(self, application_id: str) -> dict | None:
        """Where to reach the citizen behind an application (for notify, at send time)."""
        application = self.applications.find_one({"_id": application_id}, {"citizen_id": 1})
        if not application or not application.get("citizen_id"):
            return None
        citizen = self.citizens.find_one({"_id": application["citizen_id"]},
                                         {"phone": 1, "email": 1, "preferred_channel": 1})
        if not citizen:
            return None
        return {"phone": citizen.get("phone"), "email": citizen.get("email"),
                "preferred_channel": citizen.get("preferred_channel", "sms")}
