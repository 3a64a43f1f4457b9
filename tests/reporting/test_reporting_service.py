"""Reporting as a running service: real envelopes over the real broker into facts and counts."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfoNotFoundError

import pytest
from nameko.rpc import rpc

from services.common.bootstrap import parts_of
from services.common.config import DEFAULTS
from services.common.events import utcnow
from services.common.topology import SUBSCRIPTIONS
from services.reporting.bootstrap import build
from services.reporting.service import ReportingService
from services.reporting.store import ReportingStore
from services.reporting.web import create_app
from services.routing.directory import load_directory
from tests import support

SUMMARY = "/api/v1/reports/summary"


@pytest.fixture
def container(container_factory, config):
    container = container_factory(ReportingService, config)
    container.start()
    return container


@pytest.fixture
def store(config) -> ReportingStore:
    """The test's own view of reporting's database, to inspect what the handlers stored."""
    return ReportingStore(support.database(config, "reporting"))


@pytest.fixture
def summary(container, staff_headers):
    """The summary as the running service's own HTTP side answers it (the container's parts)."""
    client = create_app(parts_of(container)).test_client()
    today = utcnow().date()
    # The events below are stamped now: a period around today in any timezone covers them.
    period = {"from": (today - timedelta(days=1)).isoformat(),
              "to": (today + timedelta(days=1)).isoformat()}

    def _summary() -> dict:
        response = client.get(SUMMARY, query_string=period, headers=staff_headers())
        assert response.status_code == 200
        return response.get_json()

    return _summary


@pytest.fixture
def deliver(config, container):
    """Publish an envelope, wait until its handler has stored it, then fold what waits (as the
    service's timer does within a second)."""
    def _deliver(envelope: dict) -> dict:
        handled = support.deliver(config, container, envelope)
        parts_of(container).reports.projector.run(wait=True)
        return handled

    return _deliver


def test_the_service_consumes_exactly_the_queues_the_topology_declares(
    container_factory, config
):
    container = container_factory(ReportingService, config)
    container.start()
    handled = {e.queue.name for e in container.entrypoints
               if hasattr(e, "event_type")}  # the report generator is a timer
    declared = {s.queue_name for s in SUBSCRIPTIONS if s.service == "reporting"}
    assert handled == declared
    # the queues the per-event handlers had: what waits in them when a release moves to the
    # batched method is taken, not stranded
    assert ("evt-routing-application_referred--reporting.handle_application_referred"
            in handled)


def test_a_redelivered_receipt_is_one_fact_and_counts_once(deliver, events, store, summary):
    receipt = events.received(category="noise")
    deliver(receipt)
    deliver(receipt)  # same event_id, as after a lost ack
    assert [fact["application_id"] for fact in store.all_facts()] == [
        receipt["application_id"]]
    body = summary()
    assert body["total"] == 1
    assert body["by_category"] == [{"key": "noise", "count": 1}]


def test_routing_and_referral_reach_the_counts_by_unit_and_status(
    deliver, events, store, summary
):
    routed_receipt = deliver(events.received(channel="whatsapp"))
    deliver(events.routed(routed_receipt))
    referred_receipt = deliver(events.received(category="natural_gas"))
    deliver(events.referred(referred_receipt))
    body = summary()
    assert body["total"] == 2
    assert body["by_status"] == [{"key": "assigned", "count": 1}, {"key": "referred", "count": 1}]
    assert body["by_unit"] == [{"key": "mersin_bb.roads", "name": "Yol Yapım Dairesi Başkanlığı",
                                "count": 1}]
    assert body["by_channel"] == [{"key": "web", "count": 1}, {"key": "whatsapp", "count": 1}]
    facts = {fact["type"] for fact in store.all_facts()
             if fact["application_id"] == referred_receipt["application_id"]}
    assert facts == {"application_received", "application_referred"}
    assert store.get_summary(routed_receipt["application_id"])["routed_at"] is not None


def test_a_wrong_report_timezone_stops_the_composition(config):
    """Resolved once when the parts are built, so the service fails at start, not per report."""
    with pytest.raises(ZoneInfoNotFoundError):
        build(dict(config, REPORT_TIMEZONE="Mars/Olympus_Mons"))


def test_the_configured_timezone_reads_the_report_days(parts, config):
    assert parts.reports.timezone_name == "Europe/Istanbul"
    other = build(dict(config, REPORT_TIMEZONE="UTC"))
    try:
        assert other.reports.timezone_name == "UTC"
        assert other.reports.summary()["timezone"] == "UTC"
    finally:
        other.close()


def test_the_case_s_life_sla_outcomes_escalations_and_the_rating_reach_the_counts(
        deliver, summary, store, events):
    receipt = events.received()
    for envelope in (
        receipt,
        events.routed(receipt),
        events.case(receipt, "case_acknowledged", "acknowledged"),
        events.sla(receipt, "case_escalated", from_level=0, to_level=1, to_role="supervisor"),
        events.case(receipt, "case_resolved", "resolved", result="Asfalt yenilendi"),
        events.case(receipt, "case_closed", "closed"),
        events.sla(receipt, "sla_outcome_recorded", deadline="read", outcome="breached",
                   completed_at=utcnow(), hours=4, used_hours=6, overrun_hours=2),
        events.sla(receipt, "sla_outcome_recorded", deadline="resolve", outcome="met",
                   completed_at=utcnow(), hours=72, used_hours=10, overrun_hours=0),
        events.rated(receipt, 5),
    ):
        deliver(envelope)
    stored = store.get_summary(receipt["application_id"])
    assert (stored["status"], stored["level"], stored["satisfaction"]) == ("closed", 1, 5)
    assert stored["concluded_at"] is not None and stored["resolution_hours"] is not None
    answer = summary()
    assert answer["by_status"] == [{"key": "closed", "count": 1}]
    assert answer["by_level"] == [{"key": "1", "count": 1}]
    assert answer["by_read_sla"] == [{"key": "breached", "count": 1}]
    assert answer["by_resolve_sla"] == [{"key": "met", "count": 1}]
    assert answer["by_satisfaction"] == [{"key": "5", "count": 1}]
    assert answer["by_neighbourhood"] == [{"key": "Limonluk", "count": 1}]
    assert answer["by_reopen_count"] == [{"key": "0", "count": 1}]
    assert answer["by_caller_type"] == [{"key": "citizen", "count": 1}]
    assert answer["by_tier"] == [{"key": "metropolitan", "count": 1}]


class FamilyOnly:
    """Routing's `institution_family` RPC over the sample organisation, and nothing else."""

    name = "routing"
    directory = load_directory(DEFAULTS["ORGANISATION_PATH"])

    @rpc
    def institution_family(self, institution: str) -> list[str]:
        return sorted(self.directory.family(institution))


def test_an_institution_s_figures_are_scoped_through_routing_s_directory(
        container_factory, config, container, deliver, events):
    """A mayor sees what their institution holds: which institutions that covers is asked from
    routing's directory over RPC (a stand-in serving the sample organisation's real directory:
    the whole routing service would also route the receipts below and move them elsewhere)."""
    container_factory(FamilyOnly, config).start()
    ours = events.received()
    deliver(ours)
    deliver(events.routed(ours))  # to mersin_bb.roads
    theirs = events.received()
    deliver(theirs)
    deliver(events.referred(theirs))  # to an outside institution
    client = create_app(parts_of(container)).test_client()
    today = utcnow().date()
    period = {"from": (today - timedelta(days=1)).isoformat(),
              "to": (today + timedelta(days=1)).isoformat()}
    mayor = support.bearer(config, role="mayor", institution="mersin_bb")
    answer = client.get(SUMMARY, query_string=period, headers=mayor)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["total"] == 1
    centre = client.get(SUMMARY, query_string=period, headers=support.bearer(config))
    assert centre.get_json()["total"] == 2
