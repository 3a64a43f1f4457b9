"""KVKK retention in reporting: the mayor's office's call-back notes on an application concluded
more than the period ago lose their text (`services.common.retention` decides which
applications, and when).

A note is free text about a conversation with a citizen ("reached his wife, the leak is
fixed"): it goes. Whether the citizen was reached, who noted it and when stay, and so does every
figure: summaries, buckets and facts hold no personal data and are not touched. The citizen's
name and contact were never stored here (read from intake at each read, audited there). Notes
are found through `callback_note_index` by `_id`; a note written before the index was kept is
found by the week its call-back list names (the ISO week after the first conclusion). Each note
changes through `outbox.modify`, writing nothing when it is anonymised already.

`python -m services.reporting.retention --once` runs the job once.
"""
from __future__ import annotations

import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.events import utcnow
from services.common.outbox import modify
from services.common.retention import main
from services.reporting.store import ReportingStore


class ReportingAnonymiser:
    """Anonymises the call-back notes on one application."""

    def __init__(self, store: ReportingStore, timezone: str | None = None):
        self.store = store
        self.zone = ZoneInfo(timezone or "Europe/Istanbul")

    def __call__(self, application_id: str, cutoff: datetime) -> bool:
        note_ids = self.store.callback_note_ids(application_id)
        summary = self.store.get_summary(application_id) or {}
        if summary.get("concluded_at") is not None:
            # the call-back list of the week after the first conclusion names it
            day = summary["concluded_at"].astimezone(self.zone).date() + timedelta(days=7)
            year, week, _ = day.isocalendar()
            listed = f"{year}-W{week:02d}|{application_id}"
            if listed not in note_ids:
                note_ids.append(listed)
        changed = False
        for note_id in note_ids:
            changed = self._note(note_id) or changed
        return changed

    def _note(self, note_id: str) -> bool:
        def scrub(current: dict | None) -> dict | None:
            if current is None or current.get("anonymised_at"):
                return None
            return dict(current, note=None, anonymised_at=utcnow())

        return modify(self.store.callback_notes, note_id, scrub) is not None


def _build(config: dict):
    from services.reporting.bootstrap import build

    return build(config)


if __name__ == "__main__":
    sys.exit(main("reporting", _build))
