"""KVKK retention's batch path on the real store: a batch of conclusions and reopenings leaves
the records and the day lists that the same events recorded one at a time leave, redeliveries
and records stored before included."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.events import load_event, make_event
from services.common.outbox import BOOKKEEPING
from services.common.retention import Retention
from tests.support import database

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def event(event_type: str, app: str, at: datetime) -> dict:
    state = "closed" if event_type == "case_closed" else "assigned"
    return load_event(make_event(event_type, app, {"state": state}, occurred_at=at))


def outcome(retention: Retention, apps: list[str], days: list) -> tuple[dict, dict]:
    records = {app: {k: v for k, v in (retention.state(app) or {}).items()
                     if k not in BOOKKEEPING} for app in apps}
    return records, {day: sorted(retention.filed(day)) for day in days}


def test_a_batch_records_what_the_events_one_at_a_time_record(config):
    earlier = event("case_closed", "app-d", T0 - timedelta(days=3))
    closed_a = event("case_closed", "app-a", T0)
    closed_c = event("case_closed", "app-c", T0 + timedelta(days=1))
    batch = [
        closed_a,
        event("case_closed", "app-b", T0 + timedelta(hours=2)),
        closed_c,
        closed_c,  # redelivered within the batch
        event("case_reopened", "app-a", T0 + timedelta(hours=5)),  # stored in this batch
        event("case_reopened", "app-d", T0),  # on a record stored before the batch
        event("case_closed", "app-e", T0 - timedelta(days=1)),
        event("case_reopened", "app-e", T0 - timedelta(days=2)),  # older: overtaken
    ]
    one_by_one = Retention(database(config, "retention-single"))
    batched = Retention(database(config, "retention-batch"))
    for retention in (one_by_one, batched):
        retention.record(earlier)
    for each in batch:
        one_by_one.record(each)
    batched.record_many(batch)
    batched.record_many([closed_a])  # the whole batch redelivered in part: nothing moves

    apps = ["app-a", "app-b", "app-c", "app-d", "app-e"]
    days = [(T0 + timedelta(days=n)).date() for n in range(-3, 2)]
    records, filed = outcome(batched, apps, days)
    assert (records, filed) == outcome(one_by_one, apps, days)
    assert records["app-a"]["concluded_at"] is None  # reopened after its conclusion
    assert records["app-e"]["concluded_at"] == T0 - timedelta(days=1)
    assert filed[T0.date()] == ["app-a", "app-b"]
