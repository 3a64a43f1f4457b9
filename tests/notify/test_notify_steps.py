"""Notify's rules for whom, when and whether, with the real store: every step the citizen must
know of, staff alerts to each person by SMS and e-mail, the quiet hours, opt-outs, retries."""
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest.mock import MagicMock

import eventlet
import pytest
from nameko.testing.services import worker_factory

from services.common.events import load_event, make_event, utcnow
from services.common.outbox import OUTBOX
from services.common.retention import Retention
from services.notify import domain
from services.notify.bootstrap import build
from services.notify.providers import PermanentFailure, TransientFailure
from services.notify.sending import Deliveries
from services.notify.service import NotifyService
from tests.support import Clock

PHONE = "+905551112233"
DAY = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # 12:00 in Istanbul
NIGHT = datetime(2025, 3, 3, 20, 30, tzinfo=UTC)  # 23:30 in Istanbul
MORNING = datetime(2025, 3, 4, 5, 0, tzinfo=UTC)  # 08:00 in Istanbul
STAFF = {"mbb-0020": {"code": "mbb-0020", "phone": "+905320000020",
                      "email": "uzman@mersin.bel.tr"},
         "mbb-0021": {"code": "mbb-0021", "phone": "+905320000021", "email": None},
         "mbb-0001": {"code": "mbb-0001", "phone": "+905320000001",
                      "email": "baskan@mersin.bel.tr"}}
QUICK = domain.SendTiming(provider_timeout=0.5, record_seconds=0.5, margin=1.0,
                          poll_seconds=0.05, pause_seconds=0.01)


class Provider:
    """A fake SMS or e-mail provider: records what it was handed; fails as told, in turn."""

    def __init__(self, name: str, failures: list[Exception] | None = None):
        self.name = name
        self.failures = list(failures or [])
        self.sent: list[dict] = []
        self.references: list[str | None] = []

    def send(self, to: str, *args, reference: str | None = None, language: str = "tr") -> str:
        self.references.append(reference)
        if self.failures:
            raise self.failures.pop(0)
        text = args[-1]
        self.sent.append({"to": to, "text": text, "subject": args[0] if len(args) > 1 else None,
                          "reference": reference})
        return f"{self.name}-{len(self.sent)}"


@pytest.fixture
def store(config):
    parts = build(config)
    yield parts.store
    parts.close()


def make_service(store, contact: dict | None = None, clock: Clock | None = None,
                 sms: Provider | None = None, email: Provider | None = None):
    """A notify worker on the real store with fake providers, intake and routing."""
    intake = MagicMock()
    intake.get_contact.return_value = contact if contact is not None else citizen()
    routing = MagicMock()
    routing.ladder_staff.side_effect = lambda unit, level: (
        [{"code": "mbb-0020", "position": "primary"}, {"code": "mbb-0021", "position": "backup"}]
        if level == 0 else [{"code": "mbb-0001", "position": "head"}])
    routing.staff_contact.side_effect = STAFF.get
    deliveries = Deliveries(store, sms or Provider("sms"), email or Provider("mail"),
                            domain.Composer("https://acikkapi.example", link_secret="s" * 32),
                            QUICK, clock=clock or Clock(DAY))
    service = worker_factory(NotifyService, parts=SimpleNamespace(
        deliveries=deliveries, retention=Retention(deliveries.store.db)),
                             intake_rpc=intake, routing_rpc=routing)
    service.sms, service.email, service.deliveries = deliveries.sms, deliveries.email, deliveries
    return service


def citizen(**changes) -> dict:
    return {"phone": PHONE, "email": "ayse@example.com", "preferred_channel": "sms",
            "language": "tr", "citizen_ref": "c" * 64, "caller_type": "citizen", **changes}


def event(event_type: str, data: dict, application_id: str = "app-1",
          at: datetime = DAY) -> dict:
    return load_event(make_event(event_type, application_id, data, occurred_at=at))


def routed(**changes) -> dict:
    return event("application_routed", {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
        "unit": "mezitli_bld.works", "unit_name": "Fen İşleri Müdürlüğü", "rule": "test",
        "category_name": "Yol bozukluğu", "read_hours": 4, "resolve_hours": 24, **changes})


def case(event_type: str, **data) -> dict:
    return event(event_type, {"tracking_code": "K7M4QX2D9", **data})


def received(at: datetime = DAY) -> dict:
    return event("application_received", {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "road_damage", "channel": "web", "location": {"province": "Mersin"},
        "received_at": at}, at=at)


def texts(provider: Provider) -> list[str]:
    return [sent["text"] for sent in provider.sent]


def test_each_step_the_citizen_must_know_of_is_told_once_in_their_words(store):
    service = make_service(store)
    service.handle_application_received(received())
    steps = [
        (service.handle_application_routed, routed(), "Fen İşleri Müdürlüğü"),
        (service.handle_case_waiting,
         case("case_waiting", state="waiting_citizen", reason="Sokak adını yazar mısınız?"),
         "Sokak adını yazar mısınız?"),
        (service.handle_case_transferred,
         case("case_transferred", state="assigned", unit="mbb.parks",
              unit_name="Park ve Bahçeler Dairesi"), "Park ve Bahçeler Dairesi"),
        (service.handle_case_closed,
         case("case_closed", state="closed", result="Çukur asfaltla kapatıldı."),
         "Çukur asfaltla kapatıldı."),
        (service.handle_case_reopened, case("case_reopened", state="assigned"), "K7M-4QX-2D9"),
        (service.handle_case_reopen_refused,
         case("case_reopen_refused", state="closed", reason="Süre doldu"), "Süre doldu"),
    ]
    for handle, cause, expected in steps:
        before = len(service.sms.sent)
        for _ in range(3):  # redelivered: nothing more goes out
            handle(cause)
        citizen_texts = [t for t in texts(service.sms)[before:] if t.startswith("Açık Kapı")
                         and "K7M-4QX-2D9" in t]
        sent_to_citizen = [s for s in service.sms.sent[before:] if s["to"] == PHONE]
        assert len(sent_to_citizen) == 1, cause["type"]
        assert expected in sent_to_citizen[0]["text"], cause["type"]
        assert citizen_texts
    closed = next(s["text"] for s in service.sms.sent if "asfaltla" in s["text"])
    assert "https://acikkapi.example/t/" in closed  # the link to every step, reopen, rate
    assert "1" in closed and "5" in closed  # the survey


def test_a_referral_names_the_institution_and_how_to_reach_it(store):
    service = make_service(store)
    service.handle_application_received(received())
    service.sms.sent.clear()
    service.handle_application_referred(event("application_referred", {
        "tracking_code": "K7M4QX2D9", "category": "electricity", "institution": "toroslar_edas",
        "institution_name": "Toroslar EDAŞ", "contact": {"phone": "186"}, "rule": "r"}))
    [sent] = service.sms.sent
    assert "Toroslar EDAŞ" in sent["text"] and "186" in sent["text"]


def test_an_english_speaking_citizen_is_written_to_in_english(store):
    service = make_service(store, contact=citizen(language="en"))
    service.handle_application_received(received())
    service.sms.sent.clear()
    service.handle_application_routed(routed())
    [sent] = [s for s in service.sms.sent if s["to"] == PHONE]
    assert "Fen İşleri Müdürlüğü" in sent["text"]
    turkish = make_service(store).deliveries.composer.message(
        "application_routed", routed(), domain.applicant(routed(), citizen(),
                                                         "application_routed"))[1]
    assert sent["text"] != turkish
    assert "application" in sent["text"].lower()
    message = store.messages.find_one({"template": "application_routed"})
    assert message["language"] == "en"


def test_a_muhtars_request_is_answered_in_the_muhtars_words(store):
    service = make_service(store, contact=citizen(caller_type="muhtar"))
    service.handle_application_received(received())
    service.sms.sent.clear()
    cause = routed()
    service.handle_application_routed(cause)
    [sent] = [s for s in service.sms.sent if s["to"] == PHONE]
    assert "Muhtar" in sent["text"]
    key = domain.message_key(cause["event_id"], "application_routed")
    assert store.messages.find_one({"_id": key})["template"] == "muhtar_forwarded"


def test_a_new_case_reaches_the_primary_and_the_backup_expert_by_sms_and_email(store):
    service = make_service(store)
    service.handle_application_received(received())
    cause = routed()
    for _ in range(3):
        service.handle_application_routed(cause)
    staff_sms = [s for s in service.sms.sent if s["to"] != PHONE]
    assert sorted(s["to"] for s in staff_sms) == ["+905320000020", "+905320000021"]
    assert [s["to"] for s in service.email.sent] == ["uzman@mersin.bel.tr"]  # backup: no e-mail
    for sent in staff_sms:
        assert "K7M-4QX-2D9" in sent["text"] and "5551112233" not in sent["text"]
        assert "ayse" not in sent["text"].lower()
    backup = next(s for s in staff_sms if s["to"] == "+905320000021")
    primary = next(s for s in staff_sms if s["to"] == "+905320000020")
    assert backup["text"] != primary["text"]  # the backup is told they stand in
    keys = {m["_id"] for m in store.messages.find({"audience": "staff"})}
    assert keys == {f"{cause['event_id']}:case_assigned:mbb-0020:sms",
                    f"{cause['event_id']}:case_assigned:mbb-0020:email",
                    f"{cause['event_id']}:case_assigned:mbb-0021:sms"}


def test_an_escalation_reaches_the_person_on_the_ladder_by_sms_and_email(store):
    service = make_service(store)
    escalated = event("case_escalated", {
        "tracking_code": "K7M4QX2D9", "unit": "mezitli_bld.works", "from_level": 3,
        "to_level": 4, "to_role": "head", "to_staff": "mbb-0001", "deadline": "resolve"})
    service.handle_case_escalated(escalated)
    service.handle_case_escalated(escalated)
    assert [s["to"] for s in service.sms.sent] == ["+905320000001"]
    assert [s["to"] for s in service.email.sent] == ["baskan@mersin.bel.tr"]
    assert "K7M-4QX-2D9" in service.email.sent[0]["subject"] + service.email.sent[0]["text"]


def test_the_quiet_hours_hold_a_step_notice_until_eight_and_it_survives_a_restart(store):
    clock = Clock(NIGHT)
    service = make_service(store, clock=clock)
    cause = routed()
    service.handle_application_routed(cause)
    assert [s for s in service.sms.sent if s["to"] == PHONE] == []  # held
    assert len([s for s in service.sms.sent if s["to"] != PHONE]) == 2  # staff are not held
    key = domain.message_key(cause["event_id"], "application_routed")
    held = store.messages.find_one({"_id": key})
    assert (held["status"], held["held_for"], held["due_at"]) == (
        "deferred", "quiet_hours", MORNING)
    service.handle_application_routed(cause)  # a redelivery does not send it early
    # notify restarts: a new process, the same store
    clock.now = MORNING - timedelta(minutes=1)
    restarted = make_service(store, clock=clock)
    assert restarted.deliveries.release_due(restarted._resolve) == 0
    clock.now = MORNING
    assert restarted.deliveries.release_due(restarted._resolve) == 1
    assert restarted.deliveries.release_due(restarted._resolve) == 0
    [sent] = restarted.sms.sent
    assert sent["to"] == PHONE and "Fen İşleri" in sent["text"]
    message = store.messages.find_one({"_id": key})
    assert message["status"] == "sent" and len(message[OUTBOX]) == 1
    assert store.deferred.count_documents({}) == 0


def test_the_codes_and_urgent_cases_are_not_held_by_the_quiet_hours(store):
    service = make_service(store, clock=Clock(NIGHT))
    service.handle_application_received(received(NIGHT))
    service.handle_application_routed(routed(priority="urgent"))
    assert len([s for s in service.sms.sent if s["to"] == PHONE]) == 2


def test_an_opted_out_citizen_gets_only_the_codes_and_a_held_message_is_checked_again(store):
    clock = Clock(NIGHT)
    service = make_service(store, clock=clock)
    service.handle_case_waiting(case("case_waiting", state="waiting_citizen", reason="Adres?"))
    service.deliveries.set_opt_out("c" * 64, True, "sms")
    clock.now = MORNING
    service.deliveries.release_due(service._resolve)
    service.handle_case_closed(case("case_closed", state="closed", result="Tamam"))
    service.handle_application_received(received())
    [sent] = service.sms.sent
    assert "K7M-4QX-2D9" in sent["text"] and "Adres" not in sent["text"]
    statuses = sorted(m["status"] for m in store.messages.find())
    assert statuses == ["sent", "skipped", "skipped"]
    service.deliveries.set_opt_out("c" * 64, False, "sms")
    service.handle_case_reopened(case("case_reopened", state="assigned"))
    assert len(service.sms.sent) == 2


def test_passing_failures_are_tried_again_with_the_same_reference_and_sent_once(store):
    sms = Provider("sms", [TransientFailure("http_503"), TransientFailure("timeout")])
    service = make_service(store, sms=sms)
    service.handle_case_waiting(case("case_waiting", state="waiting_citizen", reason="Adres?"))
    [sent] = sms.sent
    assert len(set(sms.references)) == 1 and len(sms.references) == 3
    key = domain.message_key(sent["reference"].split(":")[0], "case_waiting")
    assert store.messages.find_one({"_id": key})["status"] == "sent"


def test_a_provider_down_longer_holds_the_message_and_tries_again_later(store):
    clock = Clock(DAY)
    sms = Provider("sms", [TransientFailure("http_500")] * QUICK.attempts)
    service = make_service(store, sms=sms, clock=clock)
    cause = case("case_waiting", state="waiting_citizen", reason="Adres?")
    service.handle_case_waiting(cause)
    key = domain.message_key(cause["event_id"], "case_waiting")
    held = store.messages.find_one({"_id": key})
    assert (held["status"], held["held_for"], held["retries"]) == ("deferred", "retry", 1)
    assert held["due_at"] == DAY + domain.RETRY_DELAYS[0]
    assert OUTBOX not in held or not held[OUTBOX]  # nothing said yet: it is not over
    clock.now = DAY + domain.RETRY_DELAYS[0]
    assert service.deliveries.release_due(service._resolve) == 1
    assert len(sms.sent) == 1 and len(set(sms.references)) == 1
    assert store.messages.find_one({"_id": key})["status"] == "sent"


def test_a_refusal_is_recorded_as_failed_at_once_and_never_retried(store):
    sms = Provider("sms", [PermanentFailure("http_400")])
    service = make_service(store, sms=sms)
    cause = case("case_waiting", state="waiting_citizen", reason="Adres?")
    service.handle_case_waiting(cause)
    service.handle_case_waiting(cause)
    key = domain.message_key(cause["event_id"], "case_waiting")
    message = store.messages.find_one({"_id": key})
    assert (message["status"], message["error"]) == ("failed", "http_400")
    [outcome] = message[OUTBOX]
    assert outcome["type"] == "notification_failed" and outcome["data"]["error"] == "http_400"
    assert sms.sent == [] and len(sms.references) == 1
    assert store.deferred.count_documents({}) == 0


def test_the_mayors_office_gets_one_morning_digest_of_what_reached_the_top(store):
    clock = Clock(MORNING - timedelta(minutes=5))  # 07:55 Istanbul
    service = make_service(store, clock=clock)
    service.routing_rpc.institution_heads.return_value = [
        {"institution": "mersin_bb", "code": "mbb-0001"},
        {"institution": "mezitli_bld", "code": "mbb-0021"}]
    service.sla_rpc.top_of_ladder.side_effect = lambda institution: [
        {"application_id": "app-9", "tracking_code": "K7M4QX2D9", "unit": "mersin_bb.roads",
         "category": "road_damage", "level": 4, "waited_hours": 26.5},
    ] if institution == "mersin_bb" else []
    service.morning_digest()
    assert service.sms.sent == [] and service.email.sent == []  # not before eight
    clock.now = MORNING + timedelta(minutes=3)
    service.morning_digest()
    service.morning_digest()  # the next minute's timer, or another notify process
    make_service(store, clock=clock).morning_digest()
    assert [s["to"] for s in service.sms.sent] == ["+905320000001"]
    [mail] = service.email.sent
    assert mail["to"] == "baskan@mersin.bel.tr" and "K7M-4QX-2D9" in mail["text"]
    assert "mersin_bb.roads" in mail["text"]
    assert service.routing_rpc.institution_heads.call_count == 1  # the day is marked done


def test_the_forwarded_message_never_overtakes_the_received_one(store):
    clock = Clock(DAY)
    service = make_service(store, clock=clock)
    early = routed()
    service.handle_application_routed(early)  # routing was quicker than notify's "received"
    key = domain.message_key(early["event_id"], "application_routed")
    held = store.messages.find_one({"_id": key})
    assert (held["status"], held["held_for"]) == ("deferred", "order")
    service.handle_application_received(received())
    clock.now = DAY + domain.ORDER_HOLD
    assert service.deliveries.release_due(service._resolve) == 1
    citizen_texts = [s["text"] for s in service.sms.sent if s["to"] == PHONE]
    assert len(citizen_texts) == 2 and "Fen İşleri" in citizen_texts[1]


def test_a_forwarded_message_waits_within_its_run_for_a_received_one_being_sent(store):
    service = make_service(store)
    slow = Provider("sms")
    original = slow.send

    def send_slowly(to, *args, **kwargs):
        eventlet.sleep(0.2)  # the "received" is on its way to the provider
        return original(to, *args, **kwargs)

    slow.send = send_slowly
    service.deliveries.sms = slow
    receiving = eventlet.spawn(service.handle_application_received, received())
    eventlet.sleep(0.05)
    service.handle_application_routed(routed())
    receiving.wait()
    citizen_texts = [s["text"] for s in slow.sent if s["to"] == PHONE]
    assert "alındı" in citizen_texts[0] and "Fen İşleri" in citizen_texts[1]
    assert store.deferred.count_documents({}) == 0  # not held: it waited its turn


def test_a_generated_report_goes_by_e_mail_to_whom_it_is_for(store):
    service = make_service(store)
    weekly = event("report_generated", {
        "file_id": "weekly|2026-W48|unit|mersin_bb.roads", "kind": "weekly",
        "period": "2026-W48", "scope_type": "unit", "scope": "mersin_bb.roads", "total": 12},
        application_id="report:weekly|2026-W48|unit|mersin_bb.roads")
    service.handle_report_generated(weekly)
    service.handle_report_generated(weekly)
    service.routing_rpc.ladder_staff.assert_called_with("mersin_bb.roads", 1)  # supervisor
    assert service.sms.sent == []  # a file: e-mail only
    [mail] = service.email.sent
    assert mail["to"] == "baskan@mersin.bel.tr" and "2026-W48" in mail["subject"]
    assert "/api/v1/reports/files/weekly%7C2026-W48%7Cunit%7Cmersin_bb.roads" in mail["text"]
    service.routing_rpc.institution_heads.return_value = [
        {"institution": "mersin_bb", "code": "mbb-0020"}]
    service.handle_report_generated(event("report_generated", {
        "file_id": "monthly|2026-11|institution|mersin_bb", "kind": "monthly",
        "period": "2026-11", "scope_type": "institution", "scope": "mersin_bb", "total": 400},
        application_id="report:monthly|2026-11|institution|mersin_bb"))
    assert [m["to"] for m in service.email.sent] == ["baskan@mersin.bel.tr",
                                                     "uzman@mersin.bel.tr"]


def test_a_held_message_whose_releaser_died_mid_send_goes_out_after_the_lease(store):
    clock = Clock(NIGHT)
    service = make_service(store, clock=clock)
    cause = case("case_waiting", state="waiting_citizen", reason="Adres?")
    service.handle_case_waiting(cause)
    key = domain.message_key(cause["event_id"], "case_waiting")
    held = store.messages.find_one({"_id": key})
    # a releaser took it (status `sending` under its claim), then was killed before the send
    gone = utcnow() - QUICK.lease - timedelta(seconds=1)
    assert store.resume(key, held["claim"], "dead-releaser", gone, QUICK.lease)
    clock.now = MORNING
    restarted = make_service(store, clock=clock)
    assert restarted.deliveries.release_due(restarted._resolve) == 1
    [sent] = restarted.sms.sent
    assert "Adres?" in sent["text"]
    message = store.messages.find_one({"_id": key})
    assert message["status"] == "sent" and message["claim"] != "dead-releaser"
    assert store.deferred.count_documents({}) == 0
