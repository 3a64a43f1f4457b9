"""Tracking's pure rules: the read model is the same whatever order its events arrive in."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from services.common.codes import security_digest
from services.common.config import DEV_SECRET
from services.tracking import domain
from tests.tracking.folding import fold_all

T0 = datetime(2025, 3, 3, 9, 15, 0, 250_400, tzinfo=UTC)



def three_events(envelopes, new_application, gap=timedelta(minutes=5)):
    application_id, code = new_application()
    received = envelopes.loaded(envelopes.received(application_id, code, at=T0))
    routed = envelopes.loaded(envelopes.routed(application_id, code, at=T0 + gap))
    notified = envelopes.loaded(envelopes.notification_sent(application_id, at=T0 + 2 * gap))
    return received, routed, notified


def test_every_arrival_order_folds_into_the_same_read_model(envelopes, new_application):
    events = three_events(envelopes, new_application)
    docs = [fold_all(list(order)) for order in itertools.permutations(events)]
    assert all(doc == docs[0] for doc in docs)
    assert docs[0]["status"] == "assigned"
    assert docs[0]["tracking_code"] == events[0]["data"]["tracking_code"]
    assert docs[0]["unit"] == {"code": "mersin_bb.roads", "name": "Yol Yapım Dairesi Başkanlığı"}


def test_routing_handled_before_receipt_still_ends_assigned_with_receipt_fields(
    envelopes, new_application
):
    received, routed, _ = three_events(envelopes, new_application)
    doc = fold_all([routed])
    assert doc["status"] == "assigned"
    assert doc["security_digest"] is None  # not answerable until the receipt arrives
    doc = fold_all([routed, received])
    assert doc["status"] == "assigned"
    assert doc["security_digest"] == received["data"]["security_digest"]
    assert doc["kind"] == "complaint"
    assert [entry["status"] for entry in doc["timeline"]] == ["received", "assigned"]


def test_routing_stamped_in_the_same_millisecond_sorts_after_the_receipt(
    envelopes, new_application
):
    # Routing can decide within the millisecond of receipt; event ids (ULIDs) are random
    # within a millisecond, so only the lifecycle step can put them in order.
    received, routed, _ = three_events(envelopes, new_application, gap=timedelta(0))
    routed = dict(routed, event_id="0" * 26)  # the id that sorts first: only the step can help
    for order in ([received, routed], [routed, received]):
        doc = fold_all(order)
        assert doc["status"] == "assigned"
        assert [e["type"] for e in doc["timeline"]] == ["application_received",
                                                         "application_routed"]


def test_microseconds_the_store_drops_cannot_change_the_outcome(envelopes, new_application):
    application_id, code = new_application()
    # Both in the same millisecond once stored; before cutting, the later one would win only
    # when it happened to be folded second.
    first = envelopes.loaded(envelopes.routed(application_id, code, at=T0.replace(
        microsecond=1_100), unit="a", unit_name="A"))
    second = envelopes.loaded(envelopes.routed(application_id, code, at=T0.replace(
        microsecond=1_900), unit="b", unit_name="B"))
    assert fold_all([first, second]) == fold_all([second, first])
    assert all(entry["at"].microsecond % 1000 == 0
               for entry in fold_all([first, second])["timeline"])


def test_timeline_is_sorted_by_time_whatever_the_fold_order(envelopes, new_application):
    received, routed, notified = three_events(envelopes, new_application)
    doc = fold_all([notified, routed, received])
    times = [entry["at"] for entry in doc["timeline"]]
    assert times == sorted(times)
    assert len(times) == 3
    assert doc["timeline"][0]["text_tr"] == "Başvurunuz alındı ve kayda geçti"


def test_a_notification_adds_a_step_without_changing_status_or_naming_a_destination(
    envelopes, new_application
):
    received, routed, notified = three_events(envelopes, new_application)
    before = fold_all([received, routed])
    after, _ = domain.fold_event(before, notified)
    assert after["status"] == before["status"] == "assigned"
    step = after["timeline"][-1]
    assert step["status"] is None
    assert step["text_tr"] == "Bilgilendirme mesajı gönderildi"
    assert step["text_en"] == "Notification sent"
    assert "sms" not in str(step)


def test_a_later_notification_never_hides_an_earlier_status(envelopes, new_application):
    received, _, notified = three_events(envelopes, new_application)
    assert fold_all([received, notified])["status"] == "received"


def test_the_same_event_folded_twice_changes_nothing(envelopes, new_application):
    received, _, _ = three_events(envelopes, new_application)
    doc = fold_all([received])
    assert domain.fold_event(doc, received) == (None, [])


def test_a_receipt_replayed_under_a_new_event_id_adds_no_second_receipt(
    envelopes, new_application
):
    application_id, code = new_application()
    doc = fold_all([envelopes.loaded(envelopes.received(application_id, code, at=T0))])
    replay = envelopes.loaded(envelopes.received(application_id, code, at=T0))
    assert domain.fold_event(doc, replay) == (None, [])


def test_a_referral_shows_the_outside_institution_and_how_to_reach_it(
    envelopes, new_application
):
    application_id, code = new_application()
    doc = fold_all([
        envelopes.loaded(envelopes.referred(application_id, code, at=T0 + timedelta(1))),
        envelopes.loaded(envelopes.received(application_id, code, at=T0)),
    ])
    assert doc["status"] == "referred"
    assert doc["unit"] is None
    assert doc["institution"] == {"code": "gas_distributor", "name": "Toroslar Doğalgaz"}
    assert doc["referral"]["contact"] == {"phone": "187"}
    assert "Toroslar Doğalgaz" in doc["timeline"][-1]["text_tr"]


def test_the_latest_routing_outcome_decides_who_acts_in_either_order(
    envelopes, new_application
):
    application_id, code = new_application()
    routed = envelopes.loaded(envelopes.routed(application_id, code, at=T0))
    referred = envelopes.loaded(envelopes.referred(application_id, code, at=T0 + timedelta(1)))
    for order in ([routed, referred], [referred, routed]):
        doc = fold_all(order)
        assert doc["status"] == "referred"
        assert doc["unit"] is None
        assert doc["institution"]["code"] == "gas_distributor"


def test_status_texts_are_turkish_first_for_every_folded_status():
    assert domain.status_text("received") == ("Başvurunuz alındı", "Application received")
    assert domain.status_text("assigned") == ("İlgili birime iletildi",
                                              "Assigned to the responsible unit")
    assert domain.status_text("referred")[1] == "Referred to the responsible institution"
    for status in domain.STATUS_OF_EVENT.values():
        tr, en = domain.status_text(status)
        assert tr != en and tr and en


def test_public_view_shows_display_code_status_texts_and_steps(envelopes, new_application):
    received, routed, _ = three_events(envelopes, new_application)
    view = domain.public_view(fold_all([received, routed]),
                              {"road_damage": ("Yol bozukluğu", "Road damage")})
    code = received["data"]["tracking_code"]
    assert view["tracking_code"] == f"{code[:3]}-{code[3:6]}-{code[6:]}"
    assert view["status_text_tr"] == "İlgili birime iletildi"
    assert view["category_name_tr"] == "Yol bozukluğu"
    assert [step["status"] for step in view["timeline"]] == ["received", "assigned"]
    assert "security_digest" not in view and "application_id" not in view


def test_only_the_right_security_code_may_see_an_application(envelopes, new_application):
    received, _, _ = three_events(envelopes, new_application)
    doc = fold_all([received])
    dummy = security_digest(DEV_SECRET, "NOBODYHASIT")
    assert domain.may_answer(doc, security_digest(DEV_SECRET, "secretcode1"), dummy)
    assert not domain.may_answer(doc, security_digest(DEV_SECRET, "SECRETCODE2"), dummy)
    assert not domain.may_answer(None, dummy, dummy)  # even the dummy's own digest
    routed_only = fold_all([envelopes.loaded(envelopes.routed(*new_application()))])
    assert not domain.may_answer(routed_only, dummy, dummy)
