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


def test_a_fact_carries_the_dimensions_and_nothing_personal(events):
    receipt = events.loaded(events.received(at=T0, category="noise", channel="sms"))
    fact = domain.fact_from_event(receipt)
    assert fact["_id"] == receipt["event_id"]
    assert fact["type"] == "application_received"
    assert fact["application_id"] == receipt["application_id"]
    assert (fact["category"], fact["channel"], fact["kind"]) == ("noise", "sms", "complaint")
    assert (fact["province"], fact["district"], fact["neighbourhood"]) == (
        "Mersin", "Yenişehir", "Limonluk")
    assert fact["occurred_at"] == T0.replace(microsecond=250_000)
    for secret in ("security_digest", "tracking_code", "citizen_ref"):
        assert secret not in fact
    routed = domain.fact_from_event(events.loaded(events.routed(receipt, at=T0)))
    assert (routed["institution"], routed["unit"]) == ("mersin_bb", "mersin_bb.roads")


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
