"""KVKK retention in intake: what of a concluded application's personal data is anonymised once
the period has passed (`services.common.retention` finds which, and when).

- the application: the description (free text a citizen wrote) becomes a marker, the street
  address and coordinates go (the province, district and neighbourhood stay: the figures are
  by region), the desk's record of who took the call loses the staff member's name, the
  attachments (photos may show faces, plates, homes) are deleted with their thumbnails and only
  their number stays;
- its duplicates merged into it, the same way;
- the inbound message it came from (the sender's address, the text, the subject);
- the citizen's profile — name, TCKN, phones, e-mail, address — once none of their
  applications is still inside the period (a registry entry a muhtar holds by office stays);
  their number leaves the phone index.

The category, channel, kind, dates, status and the tracking code stay: the figures and the
tracking page's timeline are unchanged. Each document changes through `outbox.modify` and its
change function writes nothing when the document is already anonymised, so a second run, or a
second process, changes nothing.

`python -m services.intake.retention --once` runs the job once.
"""
from __future__ import annotations

import sys
from datetime import datetime

from services.common.events import utcnow
from services.common.outbox import BOOKKEEPING, modify
from services.common.retention import ANONYMISED, Retention, main
from services.intake.domain import MERGED, PROFILE_FIELDS
from services.intake.store import IntakeStore

# The registry's people, who are on it by office and stay reachable through the portal.
KEPT_CALLER_TYPES = ("muhtar",)
_LOCATION_KEPT = ("province", "district", "neighbourhood")
_PROFILE_GONE = ("tckn", *(f for f in PROFILE_FIELDS
                          if f not in ("preferred_channel", "consent", "language")), "handles")


class IntakeAnonymiser:
    """Anonymises one application's personal data in intake's store."""

    def __init__(self, store: IntakeStore, retention: Retention):
        self.store = store
        self.retention = retention

    def __call__(self, application_id: str, cutoff: datetime) -> bool:
        application = self.store.get_application(application_id)
        if application is None:
            return False
        changed = self._application(application_id)
        for duplicate in self.store.duplicates_of(application_id):
            changed = self._application(duplicate["_id"]) or changed
        if application.get("citizen_id"):
            changed = self._citizen(application["citizen_id"], application_id, cutoff) \
                or changed
        return changed

    def _application(self, application_id: str) -> bool:
        files: list[str] = []

        def scrub(current: dict | None) -> dict | None:
            if current is None or current.get("anonymised_at"):
                return None
            new = dict(current, description=ANONYMISED, anonymised_at=utcnow())
            location = current.get("location") or {}
            new["location"] = {k: location.get(k) for k in _LOCATION_KEPT}
            if isinstance(current.get("desk"), dict):
                new["desk"] = {k: v for k, v in current["desk"].items() if k != "staff_name"}
            attachments = current.get("attachments") or []
            files[:] = [f for a in attachments for f in (a.get("id"), a.get("thumbnail_id"))
                        if f]
            if attachments:
                new["attachments"] = []
                new["attachments_removed"] = len(attachments)
            return new

        stored = modify(self.store.applications, application_id, scrub)
        if stored is None:
            return False
        # after the application stopped naming them: a crash in between leaves bytes nobody
        # points at (what `ChunkedAttachments` already tolerates), never a dangling reference
        for file_id in files:
            self.store.attachments.delete(file_id)
        if stored.get("inbound_id"):
            self._inbound(stored["inbound_id"])
        return True

    def _inbound(self, inbound_id: str) -> None:
        def scrub(current: dict | None) -> dict | None:
            if current is None or current.get("anonymised_at"):
                return None
            new = dict(current, address=None, text=ANONYMISED, anonymised_at=utcnow())
            new.pop("subject", None)
            return new

        modify(self.store.inbound, inbound_id, scrub)

    def _citizen(self, citizen_id: str, application_id: str, cutoff: datetime) -> bool:
        citizen = self.store.citizens.find_one({"_id": citizen_id})
        if citizen is None or citizen.get("anonymised_at") \
                or citizen.get("caller_type") in KEPT_CALLER_TYPES:
            return False
        others = [a for a in self.store.recent_application_ids(
            {k: v for k, v in citizen.items() if k not in BOOKKEEPING}) if a != application_id]
        if any(not self._past(other, cutoff) for other in others):
            return False  # an application still inside the period keeps the profile
        phone = citizen.get("phone")

        def scrub(current: dict | None) -> dict | None:
            if current is None or current.get("anonymised_at"):
                return None
            if (current.get("recent_applications") or []) != \
                    (citizen.get("recent_applications") or []):
                return None  # a new application came in meanwhile: it keeps the profile
            new = {k: v for k, v in current.items() if k not in _PROFILE_GONE}
            return dict(new, anonymised_at=utcnow())

        if modify(self.store.citizens, citizen_id, scrub) is None:
            return False
        if isinstance(phone, str) and phone:
            self.store.unindex_phone(phone, citizen_id)
        return True

    def _past(self, application_id: str, cutoff: datetime) -> bool:
        """Whether an application of the citizen no longer needs their profile: anonymised or
        due, or merged into an original that is."""
        if self.retention.is_past(application_id, cutoff):
            return True
        application = self.store.get_application(application_id) or {}
        if application.get("anonymised_at"):
            return True
        original = (application.get("merged_into") or {}).get("application_id")
        return application.get("status") == MERGED and bool(original) \
            and self.retention.is_past(original, cutoff)


def _build(config: dict):
    from services.intake.bootstrap import build

    return build(config)


if __name__ == "__main__":
    sys.exit(main("intake", _build))
