"""Reporting's pure rules: facts, order-independent summaries, report periods in local time."""
from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

from services.reporting import domain

T0 = datetime(2025, 3, 3, 9, 15, 0, 250_400, tzinfo=UTC)


def fold_all(envelopes: list[dict]) -> dict:
    doc = None
    for envelope in envelopes:
        new, published = domain.fold_summary(doc, envelope)
        assert published == []
        if new is not None:
            doc = new
    assert doc is not None
    return doc


def test_a_summary_is_the_same_whatever_order_its_events_arrive_in(events):
    receipt = events.received(at=T0, category="noise", channel="call_centre")
    routed = events.routed(receipt, at=T0 + timedelta(minutes=3))
    loaded = [events.loaded(receipt), events.loaded(routed)]
    docs = [fold_all(list(order)) for order in itertools.permutations(loaded)]
    assert docs[0] == docs[1]
    doc = docs[0]
    assert doc["status"] == "assigned"
    assert doc["category"] == "noise"
    assert doc["channel"] == "call_centre"
    assert doc["district"] == "Yenişehir"
    assert doc["unit"] == "mersin_bb.roads"
    assert doc["unit_name"] == "Yol Yapım Dairesi Başkanlığı"
    assert doc["received_at"] == T0.replace(microsecond=250_000)
    assert doc["routed_at"] == (T0 + timedelta(minutes=3)).replace(microsecond=250_000)


def test_routing_in_the_same_millisecond_as_receipt_still_ends_assigned(events):
    receipt = events.loaded(events.received(at=T0))
    routed = events.loaded(events.routed(receipt, at=T0 + timedelta(microseconds=300)))
    routed["event_id"] = "0" * 26  # the id that sorts first: only the lifecycle step can help
    assert fold_all([receipt, routed])["status"] == "assigned"
    assert fold_all([routed, receipt])["status"] == "assigned"


def test_a_referral_ends_referred_with_no_unit(events):
    receipt = events.loaded(events.received(at=T0))
    referral = events.loaded(events.referred(receipt, at=T0 + timedelta(hours=1)))
    for order in ([receipt, referral], [referral, receipt]):
        doc = fold_all(order)
        assert doc["status"] == "referred"
        assert doc["unit"] is None
        assert doc["institution"] == "gas_distributor"
        assert doc["referred_at"] == (T0 + timedelta(hours=1)).replace(microsecond=250_000)


def test_the_same_event_and_a_replayed_receipt_change_nothing(events):
    receipt = events.received(at=T0)
    doc = fold_all([events.loaded(receipt)])
    assert domain.fold_summary(doc, events.loaded(receipt)) == (None, [])
    replay = events.received(receipt["application_id"], at=T0 + timedelta(hours=2))
    assert domain.fold_summary(doc, events.loaded(replay)) == (None, [])


def test_a_fact_is_the_whole_event_less_the_digest_and_the_citizen_s_reference(events):
    receipt = events.loaded(events.received(at=T0, category="noise", channel="sms"))
    receipt["data"]["citizen_ref"] = "ref-123"
    fact = domain.fact_from_event(receipt)
    assert fact["_id"] == receipt["event_id"]
    assert (fact["type"], fact["application_id"]) == ("application_received",
                                                      receipt["application_id"])
    assert (fact["data"]["category"], fact["data"]["channel"]) == ("noise", "sms")
    assert "security_digest" not in fact["data"] and "citizen_ref" not in fact["data"]
    assert "security_digest" in receipt["data"]  # the event itself is left as it was
    # what the rebuild folds from the fact is what the event folded
    assert domain.fold_summary(None, fact)[0] == domain.fold_summary(None, receipt)[0]


def test_report_days_are_istanbul_days_not_utc_days():
    tz = domain.report_timezone("Europe/Istanbul")
    start, end = domain.period_bounds(date(2025, 3, 1), date(2025, 3, 31), tz)
    assert start == datetime(2025, 2, 28, 21, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 31, 21, 0, tzinfo=UTC)


def test_without_a_tz_database_the_default_zone_falls_back_to_utc_plus_3(monkeypatch):
    def missing(name):
        raise domain.ZoneInfoNotFoundError(name)

    monkeypatch.setattr(domain, "ZoneInfo", missing)
    assert domain.report_timezone(None) == timezone(timedelta(hours=3))


def test_a_period_left_open_is_filled_in_from_today():
    today = date(2025, 3, 31)
    assert domain.resolve_period(None, None, today) == (date(2025, 3, 2), today)
    assert domain.resolve_period(date(2025, 3, 10), None, today) == (date(2025, 3, 10), today)
    assert domain.resolve_period(None, date(2025, 1, 30), today) == (
        date(2025, 1, 1), date(2025, 1, 30))
    future = date(2025, 5, 1)
    assert domain.resolve_period(future, None, today) == (future, future)


def test_counts_are_ranked_largest_first_with_missing_keys_last():
    rows = [{"key": None, "count": 2}, {"key": "b", "count": 2}, {"key": "a", "count": 1},
            {"key": "c", "count": 5}]
    assert [row["key"] for row in domain.ranked(rows)] == ["c", "b", None, "a"]


def a_whole_life(events) -> tuple[dict, list[dict]]:
    """An application's events from receipt to a reopened, escalated, rated conclusion."""
    receipt = events.received(at=T0)
    minutes = iter(range(1, 100))

    def at() -> datetime:
        return T0 + timedelta(minutes=next(minutes))

    raw = [
        receipt,
        events.routed(receipt, at=at()),
        events.case(receipt, "case_acknowledged", "acknowledged", at=at()),
        events.case(receipt, "case_transferred", "assigned", at=at(), unit="mersin_bb.parks",
                    unit_name="Park ve Bahçeler", institution="mersin_bb",
                    institution_name="Mersin Büyükşehir Belediyesi"),
        events.sla(receipt, "case_escalated", at=at(), from_level=1, to_level=2,
                   to_role="director"),
        events.sla(receipt, "case_escalated", at=at(), from_level=0, to_level=1,
                   to_role="supervisor"),
        events.case(receipt, "case_started", "in_progress", at=at()),
        events.case(receipt, "case_resolved", "resolved", at=at(), result="Tamam"),
        events.case(receipt, "case_closed", "closed", at=T0 + timedelta(hours=30)),
        events.sla(receipt, "sla_outcome_recorded", at=T0 + timedelta(hours=30),
                   deadline="resolve", outcome="breached", completed_at=T0, hours=24,
                   used_hours=30, overrun_hours=6),
        events.case(receipt, "case_reopened", "assigned", at=T0 + timedelta(hours=40)),
        events.sla(receipt, "sla_outcome_recorded", at=T0 + timedelta(hours=50),
                   deadline="resolve", outcome="met", completed_at=T0, hours=24,
                   used_hours=4, overrun_hours=0, attempt=2),
        events.case(receipt, "case_closed", "closed", at=T0 + timedelta(hours=50)),
        events.rated(receipt, 4, at=T0 + timedelta(hours=51)),
    ]
    return receipt, [events.loaded(one) for one in raw]


def test_the_case_s_whole_life_is_folded_the_same_in_any_order(events):
    _, loaded = a_whole_life(events)
    first = fold_all(loaded)
    for seed in range(5):  # a few shuffles: events arrive on separate queues
        import random

        shuffled = list(loaded)
        random.Random(seed).shuffle(shuffled)
        assert fold_all(shuffled) == first
    assert first["status"] == "closed"
    assert (first["unit"], first["unit_name"]) == ("mersin_bb.parks", "Park ve Bahçeler")
    assert first["concluded_at"] == (T0 + timedelta(hours=30)).replace(microsecond=250_000)
    assert first["resolution_hours"] == 30.0  # to the first conclusion
    assert len(first["reopened"]) == first["reopen_count"] == 1
    assert first["level"] == 2  # the highest, whatever order the steps came in
    assert first["sla"]["resolve"]["outcome"] == "met"  # the latest attempt's
    assert first["satisfaction"] == 4


def test_a_redelivered_reopening_counts_once(events):
    _, loaded = a_whole_life(events)
    reopened = next(e for e in loaded if e["type"] == "case_reopened")
    assert len(fold_all([*loaded, reopened, reopened])["reopened"]) == 1


def test_an_event_reporting_does_not_fold_is_refused(events):
    receipt = events.loaded(events.received(at=T0))
    with_unknown = dict(receipt, type="notification_sent")
    try:
        domain.fold_summary(None, with_unknown)
    except ValueError as exc:
        assert "notification_sent" in str(exc)
    else:
        raise AssertionError("folded an event it does not know")


def test_a_report_scope_is_the_token_s_unit_or_institution_family_or_everything():
    family = {"mersin_valilik": ["mersin_valilik", "mersin_meb"]}.__getitem__
    assert domain.report_scope("expert", "u1", None, {"category": "noise"}, family) == {
        "category": "noise", "unit": "u1"}
    assert domain.report_scope("governor", None, "mersin_valilik", {}, family) == {
        "institution": {"$in": ["mersin_valilik", "mersin_meb"]}}
    assert domain.report_scope("coordinator", None, None, {"unit": "u2"}, family) == {
        "unit": "u2"}
    for role, unit, inst, asked in (("expert", "u1", None, {"unit": "u2"}),
                                    ("governor", None, "mersin_valilik",
                                     {"institution": "mersin_bb"})):
        try:
            domain.report_scope(role, unit, inst, asked, family)
        except domain.OutOfScope:
            continue
        raise AssertionError(f"{role} saw {asked}")


def test_periods_are_local_days_iso_weeks_and_months():
    tz = domain.report_timezone("Europe/Istanbul")
    late = datetime(2025, 12, 28, 21, 30, tzinfo=UTC)  # 00:30 on Monday 29 December in Istanbul
    assert domain.period_key(late, "day", tz) == "2025-12-29"
    assert domain.period_key(late, "week", tz) == "2026-W01"  # ISO week 1 of 2026
    assert domain.period_key(late, "month", tz) == "2025-12"
    assert domain.periods(date(2025, 12, 30), date(2026, 1, 2), "month") == ["2025-12",
                                                                            "2026-01"]
    assert len(domain.periods(date(2025, 3, 1), date(2025, 3, 31), "day")) == 31


def test_the_call_back_sample_is_the_same_for_the_same_week_and_differs_between_weeks():
    ids = [f"app-{n:03d}" for n in range(50)]
    first = domain.callback_sample(ids, "2026-W49")
    assert len(first) == domain.CALLBACK_SIZE == 4
    assert domain.callback_sample(list(reversed(ids)), "2026-W49") == first  # order-free
    assert domain.callback_sample(ids, "2026-W50") != first
    assert domain.callback_sample(ids[:2], "2026-W49") == ids[:2]  # fewer than four: all
    assert domain.week_bounds("2026-W01") == (date(2025, 12, 29), date(2026, 1, 4))


def test_the_reports_due_are_last_week_s_and_last_month_s():
    assert domain.previous_week(date(2026, 12, 2)) == ("2026-W48", date(2026, 11, 23),
                                                       date(2026, 11, 29))
    assert domain.previous_week(date(2026, 1, 5))[0] == "2026-W01"  # 29 Dec - 4 Jan
    assert domain.previous_month(date(2026, 1, 15)) == ("2025-12", date(2025, 12, 1),
                                                        date(2025, 12, 31))


def test_a_change_adds_what_adding_both_parts_whole_would(events):
    """`aggregates.add_change` adds only the counters that moved where a side's day and a
    level's key did not: spread over the buckets, it must give what adding the parts after and
    subtracting the parts before, whole, at every level gives, at every step of a whole life
    (routing and a transfer move the unit; a conclusion adds a side) and when a day moves."""
    from services.reporting import aggregates

    tz = domain.report_timezone(domain.DEFAULT_TIMEZONE)

    def whole(now, was) -> dict:
        total: dict = {}
        for sign, pieces in ((1, now), (-1, was)):
            for (side, day, keys), counters in pieces:
                for level, key in keys:
                    into = total.setdefault((side, day, level, key), {})
                    for name, count in counters.items():
                        into[name] = into.get(name, 0) + sign * count
        return aggregates.spread(total)

    _, loaded = a_whole_life(events)
    before, steps = None, []
    for event in loaded:
        after, _ = domain.fold_summary(before, event)
        steps.append((before, after))
        before = after
    moved = dict(before, received_at=before["received_at"] - timedelta(days=3))
    steps.append((before, moved))
    for was_summary, now_summary in steps:
        now, was = aggregates.parts(now_summary, tz), aggregates.parts(was_summary, tz)
        total: dict = {}
        aggregates.add_change(total, now, was)
        assert aggregates.spread(total) == whole(now, was)
    assert any(key != old_key for (before_, after_) in steps[1:3] for (_, key), (_, old_key)
               in zip(aggregates.parts(after_, tz)[0][0][2],
                      aggregates.parts(before_, tz)[0][0][2], strict=True))
