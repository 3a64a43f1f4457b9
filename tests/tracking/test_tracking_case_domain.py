"""Tracking's pure rules for case work, merges, reopen requests and ratings."""
from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.tracking import domain
from tests.tracking.folding import fold_all

T0 = datetime(2025, 3, 3, 9, 15, 0, tzinfo=UTC)
STAFF = "mbb-0009"



@pytest.fixture
def app(envelopes, new_application):
    """`step(type, state, minutes, **data)` builds loaded events for one application."""
    application_id, code = new_application()

    class App:
        id, tracking_code = application_id, code

        @staticmethod
        def received(minutes=0, **kwargs):
            return envelopes.loaded(envelopes.received(
                application_id, code, at=T0 + timedelta(minutes=minutes), **kwargs))

        @staticmethod
        def routed(minutes=1, **kwargs):
            return envelopes.loaded(envelopes.routed(
                application_id, code, at=T0 + timedelta(minutes=minutes), **kwargs))

        @staticmethod
        def step(event_type, state, minutes, **kwargs):
            return envelopes.loaded(envelopes.case(
                event_type, application_id, state, at=T0 + timedelta(minutes=minutes), **kwargs))

    return App


def lifecycle(app) -> list[dict]:
    """Design §4 end to end, as issue #4's acceptance walks it."""
    return [
        app.received(0), app.routed(1),
        app.step("case_acknowledged", "acknowledged", 2),
        app.step("case_started", "in_progress", 3),
        app.step("case_transferred", "assigned", 4, unit="mersin_bb.parks",
                 unit_name="Park ve Bahçeler Dairesi Başkanlığı", reason="bizim işimiz değil"),
        app.step("case_resolved", "resolved", 5, unit="mersin_bb.parks",
                 unit_name="Park ve Bahçeler Dairesi Başkanlığı", result="İlk sonuç"),
        app.step("case_rejected", "in_progress", 6, unit="mersin_bb.parks",
                 unit_name="Park ve Bahçeler Dairesi Başkanlığı", reason="eksik"),
        app.step("case_resolved", "resolved", 7, unit="mersin_bb.parks",
                 unit_name="Park ve Bahçeler Dairesi Başkanlığı",
                 result="Çukur asfaltla kapatıldı."),
        app.step("case_approved", "resolved", 8, unit="mersin_bb.parks",
                 unit_name="Park ve Bahçeler Dairesi Başkanlığı"),
        app.step("case_closed", "closed", 9, unit="mersin_bb.parks",
                 unit_name="Park ve Bahçeler Dairesi Başkanlığı"),
    ]


def test_a_full_lifecycle_moves_status_unit_and_timeline_step_by_step(app):
    events = lifecycle(app)
    doc = None
    seen = []
    for event in events:
        doc = fold_all([event], doc)
        seen.append(doc["status"])
    assert seen == ["received", "assigned", "acknowledged", "in_progress", "assigned",
                    "resolved", "in_progress", "resolved", "resolved", "closed"]
    assert [entry["type"] for entry in doc["timeline"]] == [e["type"] for e in events]
    assert doc["unit"] == {"code": "mersin_bb.parks",
                           "name": "Park ve Bahçeler Dairesi Başkanlığı"}
    assert doc["timeline"][2]["text_tr"] == (
        "Yol Yapım Dairesi Başkanlığı başvurunuzu incelemeye aldı")
    assert doc["timeline"][4]["text_tr"] == (
        "Başvurunuz Park ve Bahçeler Dairesi Başkanlığı birimine aktarıldı")
    assert domain.current_result(doc) == "Çukur asfaltla kapatıldı."


def test_citizens_never_see_who_acted_nor_internal_reasons(app):
    doc = fold_all(lifecycle(app))
    view = domain.public_view(doc, reopen_days=15, now=T0)
    shown = json.dumps(view, ensure_ascii=False)
    assert STAFF not in shown
    assert "bizim işimiz değil" not in shown and "eksik" not in shown
    assert "security_digest" not in shown and "citizen_ref" not in shown


def test_the_read_model_is_the_same_whatever_order_the_case_events_arrive_in(app):
    events = [app.received(0), app.routed(1), app.step("case_acknowledged", "acknowledged", 2),
              app.step("case_resolved", "resolved", 3, result="Tamam"),
              app.step("case_closed", "closed", 4)]
    docs = [fold_all(list(order)) for order in itertools.permutations(events)]
    assert all(doc == docs[0] for doc in docs)
    assert docs[0]["status"] == "closed"
    assert domain.current_result(docs[0]) == "Tamam"


def test_a_late_routing_event_never_takes_the_case_back_from_a_later_transfer(app):
    transfer = app.step("case_transferred", "assigned", 5, unit="x.parks", unit_name="Parklar")
    doc = fold_all([app.received(0), transfer, app.routed(1)])
    assert doc["unit"] == {"code": "x.parks", "name": "Parklar"}
    assert doc["institution"]["code"] == "mersin_bb"  # routing still named the institution


def test_waiting_for_the_citizen_says_what_is_needed(app):
    doc = fold_all([app.received(0), app.step(
        "case_waiting", "waiting_citizen", 2, reason="Lütfen kapı numarasını bildirin")])
    assert doc["status"] == "waiting_citizen"
    assert doc["timeline"][-1]["text_tr"].endswith(": Lütfen kapı numarasını bildirin")


def test_an_information_request_answered_at_first_contact_reads_answered(app):
    doc = fold_all([app.received(0), app.step("case_closed", "answered", 1,
                                              result="Vergi borcunuz yoktur.")])
    assert doc["status"] == "answered"
    assert doc["timeline"][-1]["text_tr"] == "Bilgi talebiniz cevaplandı"
    view = domain.public_view(doc, now=T0)
    assert view["result"] == "Vergi borcunuz yoktur."
    assert view["status_text_tr"] == "Cevaplandı"


def test_the_expected_date_is_routing_time_plus_the_categorys_resolve_hours(app):
    doc = fold_all([app.received(0), app.routed(1)])
    assert doc["expected_at"] == T0 + timedelta(minutes=1, hours=72)
    view = domain.public_view(doc, now=T0)
    assert view["expected_at"] == (T0 + timedelta(minutes=1, hours=72)).isoformat()
    closed = fold_all([app.step("case_closed", "closed", 9)], doc)
    assert domain.public_view(closed, now=T0)["expected_at"] is None


def test_a_reopen_hides_the_old_result_until_a_new_one(app):
    doc = fold_all([*lifecycle(app), app.step("case_reopened", "assigned", 20)])
    assert doc["status"] == "assigned"
    assert domain.current_result(doc) is None


def test_a_merge_is_a_step_on_the_original_and_makes_the_duplicate_follow_it(
    envelopes, new_application
):
    original_id, original_code = new_application()
    duplicate_id, duplicate_code = new_application()
    merged = envelopes.loaded(envelopes.merged(duplicate_id, original_id, original_code,
                                               at=T0 + timedelta(minutes=3)))
    original = fold_all([envelopes.loaded(envelopes.received(original_id, original_code,
                                                             at=T0))])
    original, _ = domain.fold_merged(original, merged, original=True)
    assert original["status"] == "received"  # a step, not a new status
    assert original["timeline"][-1]["text_tr"] == (
        "Aynı konuda başka bir kanaldan yapılan başvuru bu başvuruyla birleştirildi")
    assert domain.fold_merged(original, merged, original=True) == (None, [])
    duplicate, _ = domain.fold_merged(None, merged, original=False)
    duplicate = fold_all([envelopes.loaded(envelopes.received(duplicate_id, duplicate_code,
                                                              at=T0))], duplicate)
    assert duplicate["status"] == "merged"
    view = domain.public_view(duplicate, now=T0)
    assert view["merged_into"] == f"{original_code[:3]}-{original_code[3:6]}-{original_code[6:]}"


# -- reopen and ratings -------------------------------------------------------------------------

def concluded(app) -> dict:
    return fold_all(lifecycle(app))


def test_reopen_is_offered_only_after_conclusion_and_within_the_categorys_days(app):
    doc = fold_all([app.received(0), app.routed(1)])
    with pytest.raises(domain.NotAllowed) as refused:
        domain.check_reopen(doc, 15, T0)
    assert refused.value.code == "not_concluded"
    doc = concluded(app)
    closed_at = T0 + timedelta(minutes=9)
    domain.check_reopen(doc, 15, closed_at + timedelta(days=15))  # the last moment
    with pytest.raises(domain.NotAllowed) as refused:
        domain.check_reopen(doc, 15, closed_at + timedelta(days=15, seconds=1))
    assert refused.value.code == "period_over"
    with pytest.raises(domain.NotAllowed) as refused:
        domain.check_reopen(doc, 0, closed_at)  # natural gas, electricity: never
    assert refused.value.code == "not_reopenable"
    view = domain.public_view(doc, reopen_days=15, now=closed_at)
    assert view["reopen"] == {"allowed": True,
                              "until": (closed_at + timedelta(days=15)).isoformat(),
                              "requested": False}
    assert domain.public_view(doc, reopen_days=15, now=closed_at + timedelta(days=16))[
        "reopen"]["allowed"] is False


def test_a_reopen_request_shows_at_once_and_its_event_leaves_with_it(app):
    doc = concluded(app)
    now = T0 + timedelta(hours=1)
    event = domain.reopen_event(doc, "Çukur yine açıldı, arayın: 0555 111 22 33", now)
    new, published = domain.request_reopen(doc, event, 15, now)
    assert published == [event]
    assert event["type"] == "reopen_requested"
    assert "0555" not in event["data"]["reason"] and "[phone]" in event["data"]["reason"]
    assert new["status"] == "closed"  # routing decides; the timeline shows it is asked
    assert domain.pending_reopen(new)["event_id"] == event["event_id"]
    view = domain.public_view(new, reopen_days=15, now=now)
    assert view["reopen"]["requested"] is True and view["reopen"]["allowed"] is False
    assert view["timeline"][-1]["text"] == "Yeniden açma talebiniz alındı; değerlendiriliyor"
    with pytest.raises(domain.NotAllowed) as refused:
        domain.request_reopen(new, domain.reopen_event(new, "again", now), 15, now)
    assert refused.value.code == "already_requested"
    assert domain.request_reopen(new, event, 15, now) == (None, [])  # the same write, again
    reopened = fold_all([app.step("case_reopened", "assigned", 90)], new)
    assert domain.pending_reopen(reopened) is None
    assert reopened["status"] == "assigned"


def test_a_refused_reopen_ends_the_wait_and_says_so(app):
    doc = concluded(app)
    now = T0 + timedelta(hours=1)
    asked, _ = domain.request_reopen(doc, domain.reopen_event(doc, "Hâlâ bozuk.", now), 15, now)
    refused = fold_all([app.step("case_reopen_refused", "closed", 90)], asked)
    assert domain.pending_reopen(refused) is None
    assert refused["status"] == "closed"
    view = domain.public_view(refused, reopen_days=15, now=now)
    assert view["reopen"]["requested"] is False
    assert view["timeline"][-1]["text"].startswith("Yeniden açma talebiniz kabul edilmedi")


def test_a_result_is_rated_once_and_a_new_result_can_be_rated_again(app):
    doc = fold_all([app.received(0), app.routed(1)])
    with pytest.raises(domain.NotAllowed):
        domain.check_satisfaction(doc)
    doc = concluded(app)
    now = T0 + timedelta(hours=1)
    event = domain.satisfaction_event(doc, 4, "  Hızlıydı, teşekkürler  ", now)
    assert event["data"] == {"score": 4, "comment": "Hızlıydı, teşekkürler", "source": "web"}
    rated, published = domain.record_satisfaction(doc, event, now)
    assert published == [event] and rated["satisfaction"]["score"] == 4
    assert domain.public_view(rated, now=now)["satisfaction"] == {"allowed": False, "score": 4}
    with pytest.raises(domain.NotAllowed) as refused:
        domain.record_satisfaction(rated, domain.satisfaction_event(rated, 1, None, now), now)
    assert refused.value.code == "already_rated"
    again = fold_all([app.step("case_reopened", "assigned", 100),
                      app.step("case_resolved", "resolved", 120, result="İkinci sonuç")], rated)
    assert domain.satisfaction_due(again)


# -- the muhtar's lists -------------------------------------------------------------------------

def test_a_muhtars_receipt_keeps_the_pseudonymous_ref_and_a_citizens_does_not(app):
    muhtar = fold_all([app.received(0, caller_type="muhtar", citizen_ref="ref-1")])
    citizen = fold_all([app.received(0, citizen_ref="ref-2")])
    assert muhtar["citizen_ref"] == "ref-1" and muhtar["caller_type"] == "muhtar"
    assert "citizen_ref" not in citizen
    assert "ref-1" not in json.dumps(domain.public_view(muhtar, now=T0))


@pytest.mark.parametrize(("status", "listed"), [
    ("received", "pending"), ("assigned", "forwarded"), ("in_progress", "forwarded"),
    ("waiting_citizen", "forwarded"), ("resolved", "forwarded"), ("closed", "concluded"),
    ("referred", "concluded"), ("answered", "concluded"),
])
def test_seed_003s_lists_pending_forwarded_concluded(status, listed):
    assert domain.muhtar_list(status) == listed


def test_slas_working_time_deadline_replaces_the_estimate_whenever_it_arrives(app):
    from services.common.events import load_event, make_event

    def planned(minutes: int, due, clock: str = "running") -> dict:
        return load_event(make_event("deadline_planned", app.id, {
            "resolve_due_at": due, "read_due_at": None, "clock": clock,
            "tracking_code": app.tracking_code}, occurred_at=T0 + timedelta(minutes=minutes)))

    due = T0 + timedelta(days=4, hours=3)
    early, _ = domain.fold_deadline(None, planned(1, due))  # before the receipt is folded
    doc = fold_all([app.received(0), app.routed(1)], early)
    assert domain.public_view(doc, now=T0)["expected_at"] == due.isoformat()
    paused, _ = domain.fold_deadline(doc, planned(5, None, "paused"))
    assert domain.public_view(paused, now=T0)["expected_at"] is None  # waiting for the citizen
    stale = planned(3, due + timedelta(days=1))
    assert domain.fold_deadline(paused, stale) == (None, [])  # an older plan changes nothing
