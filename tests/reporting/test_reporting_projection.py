"""The projector on the real database server: a crash anywhere in a batch is replayed from the
journal without counting twice, one process projects at a time, and the rebuild command gives
the buckets the live projection built."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.events import utcnow
from services.reporting import rebuild
from services.reporting.projector import Projector
from services.reporting.reports import Reports


def _history(events, count: int = 6) -> list[dict]:
    at = utcnow() - timedelta(days=1)
    out = []
    for n in range(count):
        receipt = events.received(at=at + timedelta(minutes=n),
                                  category=("noise", "park")[n % 2])
        out += [receipt, events.routed(receipt, at=at + timedelta(minutes=n, seconds=5))]
        if n % 3 == 0:
            out.append(events.case(receipt, "case_closed", "closed",
                                   at=at + timedelta(hours=5, minutes=n)))
    return [events.loaded(event) for event in out]


def _totals(parts) -> dict:
    answer = parts.reports.summary(match={})
    return {"total": answer["total"], "status": answer["by_status"],
            "category": answer["by_category"], "concluded": answer["concluded"]}


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["write_summaries", "keep_facts", "write_buckets",
                                  "drop_waiting", "clear_journal"])
def test_a_crash_at_any_step_of_a_batch_is_replayed_once(parts, events, step):
    history = _history(events)
    for event in history:
        parts.store.enqueue(event)
    real = getattr(parts.store, step)
    calls = []

    def crash(*args, **kwargs):
        calls.append(step)
        raise Crash(step)

    setattr(parts.store, step, crash)
    with pytest.raises(Crash):
        parts.reports.projector.run(wait=True)
    setattr(parts.store, step, real)
    assert parts.store.journal() is not None  # the batch is written down before any of it
    # the next run (here: the same process; after a kill -9, any process once the lease lapses)
    parts.reports.projector.run(wait=True)
    assert parts.store.journal() is None and parts.store.waiting_count() == 0
    assert _totals(parts) == {
        "total": 6, "status": [{"key": "assigned", "count": 4}, {"key": "closed", "count": 2}],
        "category": [{"key": "noise", "count": 3}, {"key": "park", "count": 3}],
        "concluded": 2}
    for event in history[:3]:  # redelivered after the batch: nothing moves
        parts.store.enqueue(event)
    parts.reports.projector.run(wait=True)
    assert _totals(parts)["total"] == 6


def test_one_process_projects_at_a_time(parts, events):
    other = Projector(parts.store, parts.reports.tz)
    for event in _history(events, 2):
        parts.store.enqueue(event)
    assert parts.reports.projector.run(wait=True) == 5  # it takes the lease and keeps it
    for event in _history(events, 1):
        parts.store.enqueue(event)
    assert other.run(wait=True) == 0  # refused while the lease is held
    assert parts.store.waiting_count() == 3  # left for the holder, not lost


def test_the_rebuild_gives_the_buckets_the_live_projection_built(parts, events):
    for event in _history(events, 9):
        parts.store.enqueue(event)
    parts.reports.projector.run(wait=True)
    before = _totals(parts)
    parts.store.release_lease(parts.reports.projector.owner)  # as when reporting is stopped
    count, changed = rebuild.rebuild(parts.store, parts.config.get("REPORT_TIMEZONE"))
    assert (count, changed) == (9, [])
    assert _totals(parts) == before


@pytest.mark.parametrize("step", ["write_summaries", "keep_facts", "write_buckets",
                                  "clear_journal"])
def test_a_batch_folded_off_the_bus_and_cut_short_is_counted_once_on_redelivery(
    parts, events, step
):
    """The batched handler folds a batch without storing it first and acks it only after:
    killed at any step, the batch comes again from the broker (here: the same list)."""
    history = _history(events)
    real = getattr(parts.store, step)

    def crash(*args, **kwargs):
        raise Crash(step)

    setattr(parts.store, step, crash)
    with pytest.raises(Crash):
        parts.reports.record_batch(history)
    setattr(parts.store, step, real)
    parts.reports.record_batch(history)  # redelivered: the journal is replayed first
    assert parts.store.journal() is None and parts.store.waiting_count() == 0
    assert _totals(parts) == {
        "total": 6, "status": [{"key": "assigned", "count": 4}, {"key": "closed", "count": 2}],
        "category": [{"key": "noise", "count": 3}, {"key": "park", "count": 3}],
        "concluded": 2}
    assert parts.store.fact_count() == len(history)  # each kept once


def test_a_batch_taken_by_a_process_without_the_lease_waits_for_the_holder(parts, events):
    assert parts.reports.projector.run(wait=True) == 0  # this process holds the lease
    other = Reports(parts.store, parts.config.get("REPORT_TIMEZONE"))
    history = _history(events, 2)
    other.record_batch(history)
    assert parts.store.waiting_count() == len(history)  # stored for the holder, not lost
    assert _totals(parts)["total"] == 2  # the holder folds them before it answers
    assert parts.store.waiting_count() == 0


def test_a_batch_whose_journal_would_not_fit_a_document_is_folded_in_halves(
    parts, events, monkeypatch
):
    from services.reporting import store as store_module

    monkeypatch.setattr(store_module, "JOURNAL_LIMIT", 2500)  # bytes: a few events' worth
    journals = []
    real = parts.store.write_journal

    def counted(batch):
        real(batch)
        journals.append(len(batch["summaries"]))

    parts.store.write_journal = counted
    history = _history(events)
    parts.reports.record_batch(history)
    assert len(journals) >= 2  # halved (and again while a half does not fit)
    assert _totals(parts) == {
        "total": 6, "status": [{"key": "assigned", "count": 4}, {"key": "closed", "count": 2}],
        "category": [{"key": "noise", "count": 3}, {"key": "park", "count": 3}],
        "concluded": 2}


@pytest.mark.parametrize("collection", ["applications", "report_buckets"])
def test_a_crash_between_deleting_and_inserting_again_loses_nothing(
    parts, events, monkeypatch, collection
):
    """Stored summaries and buckets are rewritten by delete and insert (a fifth of the cost of a
    replace on FerretDB). Killed in between, the batch's summaries are still read from the
    journal, reports wait rather than read buckets missing, and the next lease holder
    finishes the rewrite before it reads a bucket to change it."""
    from services.reporting import store as store_module

    history = _history(events)
    parts.reports.record_batch([e for e in history if e["type"] != "case_closed"])
    closing = [e for e in history if e["type"] == "case_closed"]
    closed = closing[0]["application_id"]
    assert parts.store.get_summary(closed)["status"] == "assigned"
    real = store_module._reinsert

    def killed_after_deleting(into, docs, spawn_map=None):
        if into.name != collection:
            return real(into, docs, spawn_map)
        into.delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}})
        raise Crash(collection)

    monkeypatch.setattr(store_module, "_reinsert", killed_after_deleting)
    with pytest.raises(Crash):
        parts.reports.record_batch(closing)
    monkeypatch.setattr(store_module, "_reinsert", real)
    if collection == "applications":
        assert parts.store.applications.find_one({"_id": closed}) is None  # deleted…
        assert parts.store.get_summary(closed)["status"] == "closed"  # …read from the journal
    else:
        monkeypatch.setattr(store_module, "SETTLE_SECONDS", 0.2)
        with pytest.raises(store_module.RewriteUnderway):  # a 503, not a report missing some
            parts.store.read_buckets(["e|all|all"])
    parts.reports.record_batch(closing)  # redelivered
    assert parts.store.journal() is None
    assert _totals(parts) == {
        "total": 6, "status": [{"key": "assigned", "count": 4}, {"key": "closed", "count": 2}],
        "category": [{"key": "noise", "count": 3}, {"key": "park", "count": 3}],
        "concluded": 2}
    assert rebuild.figures(parts.store) == _rebuilt(parts)


def test_the_lease_holder_reads_back_what_it_wrote_from_memory_not_the_server(
    parts, events, monkeypatch
):
    from services.reporting import store as store_module

    history = _history(events, 4)
    receipts = [e for e in history if e["type"] == "application_received"]
    parts.reports.record_batch(receipts)
    written = {doc["_id"] for doc in parts.store.buckets.find({}, {"_id": 1})}
    written |= {e["application_id"] for e in receipts}
    asked = []
    real = store_module.find_by_ids

    def counted(collection, ids, *args, **kwargs):
        asked.extend(ids)
        return real(collection, ids, *args, **kwargs)

    monkeypatch.setattr(store_module, "find_by_ids", counted)
    parts.reports.record_batch([e for e in history if e not in receipts])
    # neither the 4 summaries nor their buckets were read again: only buckets new to the units
    assert asked and not set(asked) & written
    assert _totals(parts)["status"] == [{"key": "assigned", "count": 2},
                                        {"key": "closed", "count": 2}]


def test_a_process_that_lost_the_lease_reads_the_server_when_it_takes_it_back(parts, events):
    """What a process keeps of its writes holds only while nobody else can write: once another
    process took the lease (this one stalled past it) and folded, it is forgotten."""
    from services.reporting.store import ReportingStore

    now = utcnow()
    clock = {"at": now}
    mine = Projector(parts.store, parts.reports.tz, clock=lambda: clock["at"])
    other = Projector(ReportingStore(parts.store.db), parts.reports.tz,
                      clock=lambda: now + timedelta(seconds=31))
    history = _history(events)
    closing = [e for e in history if e["type"] == "case_closed"]
    assert mine.fold([e for e in history if e not in closing])
    assert other.fold(closing)  # this process's lease had lapsed
    clock["at"] = now + timedelta(seconds=62)  # and the other's has now
    closed = next(e for e in history if e["event_id"] == closing[0]["event_id"])
    receipt = next(e for e in history if e["application_id"] == closed["application_id"]
                   and e["type"] == "application_received")
    assert mine.fold([events.loaded(events.rated(receipt, 5, at=now))])
    summary = parts.store.get_summary(closed["application_id"])
    assert (summary["status"], summary["satisfaction"]) == ("closed", 5)
    assert _totals(parts)["concluded"] == 2
    parts.store.release_lease(mine.owner)
    assert rebuild.figures(parts.store) == _rebuilt(parts)


def _rebuilt(parts) -> dict:
    parts.store.release_lease(parts.reports.projector.owner)
    rebuild.rebuild(parts.store, parts.config.get("REPORT_TIMEZONE"))
    return rebuild.figures(parts.store)


def test_steps_run_side_by_side_raise_only_once_every_step_has_ended():
    """The summaries are written while the buckets are changed; when one fails, the batch is
    retried only after the other has stopped writing (never two writers of one batch)."""
    from eventlet import sleep
    from eventlet.greenpool import GreenPool

    from services.reporting.projector import _run_together

    order: list[str] = []

    def fails() -> None:
        order.append("fails starts")
        sleep(0)  # lets the other step begin: they run side by side
        raise ConnectionError("database away")

    def writes() -> None:
        order.append("writes starts")
        for _ in range(5):
            sleep(0)  # still writing after the other step has failed
        order.append("writes ends")

    with pytest.raises(ConnectionError):
        _run_together(GreenPool(4).imap, fails, writes)
    assert order == ["fails starts", "writes starts", "writes ends"]
