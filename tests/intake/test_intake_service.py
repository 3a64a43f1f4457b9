"""Intake's container on the real broker: the muhtar registry RPCs, and with notify running,
every channel answered on its own channel — replies to refused messages, confirmations with the
codes, the duplicate's caller told the original's tracking code."""
import json
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import yaml
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.common.bootstrap import parts_of
from services.common.codes import normalise_tracking_code, security_digest
from services.common.config import DEFAULTS
from services.common.refusals import SubmissionRefused
from services.intake.service import IntakeService
from services.intake.web import create_app
from services.notify.service import NotifyService
from tests.intake.intake_samples import FIXTURES, TCKN, WEB, email_bytes, executable
from tests.support import bearer
from tests.support import database as get_database

MUHTARS = yaml.safe_load(Path(DEFAULTS["MUHTARS_PATH"]).read_text("utf-8"))["muhtars"]


@pytest.fixture
def intake(config, container_factory):
    container = container_factory(IntakeService, config)
    container.start()
    return container


@pytest.fixture
def client(config, intake):
    """The HTTP side of the running intake: its writes hint the container's relay."""
    test_client = create_app(parts_of(intake)).test_client()
    test_client.environ_base["HTTP_X_WEBHOOK_SECRET"] = config["CHANNEL_WEBHOOK_SECRET"]
    return test_client


@pytest.fixture
def notify(config, container_factory, intake):
    container = container_factory(NotifyService, config)
    container.start()
    return container



@contextmanager
def handled(container, method: str, count: int = 1):
    seen = []

    def enough(worker_ctx, result, exc_info):
        assert exc_info is None, exc_info
        seen.append(1)
        return len(seen) == count

    with entrypoint_waiter(container, method, callback=enough, timeout=30):
        yield


def sms_sink(config) -> list[dict]:
    path = Path(config["DEV_SINK_DIR"]) / "sms.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()] if (
        path.exists()) else []


def mail_sink(config) -> list:
    directory = Path(config["DEV_SINK_DIR"]) / "mail"
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes())
            for p in sorted(directory.glob("*.eml"))] if directory.exists() else []


# -- the muhtar registry (for the muhtar portal) -------------------------------------------------

def test_muhtars_are_identified_by_tckn_and_names_turkish_case_insensitively(config, intake):
    muhtar = MUHTARS[1]  # İsmail Çelik
    with ServiceRpcProxy("intake", config) as rpc:
        assert (muhtar["first_name"], muhtar["last_name"]) == ("İsmail", "Çelik")
        ref = rpc.identify_muhtar(muhtar["tckn"], "İSMAİL", "çelik")  # Turkish capitals
        assert ref and len(ref) == 64
        assert rpc.identify_muhtar(muhtar["tckn"], "İsmail", "Yılmaz") is None
        assert rpc.identify_muhtar("10000000146", "İsmail", "Çelik") is None
        assert rpc.identify_muhtar("not-a-tckn", "", "") is None
        contact = rpc.get_citizen_contact(ref)
        assert contact == {"phone": muhtar["phone"], "email": muhtar["email"],
                           "preferred_channel": "sms", "language": "tr"}
        assert rpc.get_citizen_contact("nobody") is None
        # the muhtar portal files by reference, as identified
        request = {k: v for k, v in WEB.items() if k != "citizen"}
        answer = rpc.submit_application(dict(
            request, channel="muhtar", caller_type="muhtar", category="school_building",
            kind="request", description="Okulun çatısı akıtıyor.", citizen_ref=ref))
        assert answer["status"] == "received" and answer["security_code"]
        # what notify is told when it writes to them: keyed by the ref, as the muhtar
        sent_to = rpc.get_contact(answer["application_id"])
        assert (sent_to["citizen_ref"], sent_to["caller_type"], sent_to["language"]) == (
            ref, "muhtar", "tr")
        assert sent_to["phone"] == muhtar["phone"]
        # claiming to be a muhtar neither works nor makes one
        with pytest.raises(SubmissionRefused) as refused:
            rpc.submit_application(dict(WEB, caller_type="muhtar"))
        assert list(refused.value.errors) == ["caller_type"]
        with pytest.raises(SubmissionRefused) as unknown:
            rpc.submit_application(dict(request, citizen_ref="nobody"))
        assert list(unknown.value.errors) == ["citizen_ref"]
        rpc.submit_application(dict(WEB, caller_type="council_member"))
        assert rpc.identify_muhtar(TCKN, "Ayşe", "Demir") is None
    stored = get_database(config, "intake")["applications"].find_one(
        {"_id": answer["application_id"]})
    assert (stored["caller_type"], stored["citizen_id"]) == ("muhtar", ref)
    registry = get_database(config, "intake")["citizens"]
    assert registry.count_documents({"caller_type": "muhtar"}) == len(MUHTARS)


# -- answered on the channel they came from ---------------------------------------------------

def test_a_refused_sms_is_answered_by_sms_saying_what_was_wrong(config, notify, client):
    with handled(notify, "handle_inbound_rejected"):
        response = client.post("/api/v1/channels/sms", json={
            "from": "0555 111 22 33", "text": "10000000147 çukur var"})
    assert response.status_code == 422
    [reply] = sms_sink(config)
    assert reply["to"] == "+905551112233"
    assert "T.C. kimlik numarası geçersiz" in reply["text"]
    assert "10000000147" not in reply["text"]


def test_an_accepted_sms_is_confirmed_by_sms_with_both_codes(config, notify, client):
    with handled(notify, "handle_application_received"):
        response = client.post("/api/v1/channels/sms", json={
            "from": "0555 111 22 33", "text": f"{TCKN} Sokak lambası yanmıyor"})
    body = response.get_json()
    [confirmation] = sms_sink(config)
    assert confirmation["to"] == "+905551112233"
    assert body["tracking_code"] in confirmation["text"]
    security = confirmation["text"].split("Güvenlik kodu (paylaşmayın): ")[1].split(".")[0]
    stored = get_database(config, "intake")["applications"].find_one(
        {"_id": body["application_id"]})
    assert stored["security_digest"] == security_digest(config["CODE_PEPPER"], security)


def test_an_email_is_confirmed_by_email_and_a_refused_one_answered_by_email(
        config, notify, client):
    with handled(notify, "handle_application_received"):
        accepted = client.post("/api/v1/channels/email", content_type="message/rfc822",
                               data=(FIXTURES / "complaint_with_photo.eml").read_bytes())
    with handled(notify, "handle_inbound_rejected"):
        refused = client.post("/api/v1/channels/email", content_type="message/rfc822",
                              data=email_bytes(sender="Ali Veli <ali@example.org>",
                                               attachments=[("a.jpg", "image/jpeg",
                                                             executable())]))
    assert (accepted.status_code, refused.status_code) == (201, 422)
    confirmation, reply = sorted(mail_sink(config), key=lambda m: m["To"] != "ayse@example.com")
    assert confirmation["To"] == "ayse@example.com"
    assert accepted.get_json()["tracking_code"] in confirmation["Subject"]
    assert "Güvenlik kodu:" in confirmation.get_content()
    assert reply["To"] == "ali@example.org" and "alınamadı" in reply["Subject"]
    assert "türü kabul edilmiyor" in reply.get_content()
    assert sms_sink(config) == []  # e-mail in, e-mail out


def test_the_web_caller_of_a_duplicate_is_told_the_original_tracking_code(
        config, notify, client):
    with handled(notify, "handle_application_received"):
        original = client.post("/api/v1/channels/sms", json={
            "from": "0555 111 22 33", "text": f"{TCKN} Sokağımızda büyük çukur var"}).get_json()
    with handled(notify, "handle_application_merged"):
        duplicate = client.post("/api/v1/applications", json=WEB).get_json()
    assert duplicate["tracking_code"] == original["tracking_code"]
    _, merged = sms_sink(config)
    assert "birleştirildi" in merged["text"] and original["tracking_code"] in merged["text"]
    assert "Güvenlik" not in merged["text"]

    with handled(notify, "handle_application_received"):
        unlinked = client.post(f"/api/v1/applications/{duplicate['application_id']}/unlink",
                               headers=bearer(config)).get_json()
    fresh = sms_sink(config)[-1]
    assert unlinked["tracking_code"] in fresh["text"] and "Güvenlik kodu" in fresh["text"]
    assert normalise_tracking_code(unlinked["tracking_code"]) != normalise_tracking_code(
        original["tracking_code"])


def test_reporting_records_a_merged_duplicate_as_a_fact_and_counts_it_once(config):
    from nameko.testing.services import worker_factory

    from services.common.events import load_event, make_event
    from services.reporting.bootstrap import build
    from services.reporting.service import ReportingService

    parts = build(config)
    store = parts.store
    service = worker_factory(ReportingService, parts=parts)
    event = load_event(make_event("application_merged", "01DUPLICATE0000000000000000"[:26], {
        "original_application_id": "01ORIGINAL00000000000000000"[:26],
        "original_tracking_code": "K7M4QX2D9"}))
    service.record_events([event])
    service.record_events([event])  # redelivered: still one fact
    parts.reports.projector.run(wait=True)  # as the service's timer does within a second
    facts = [fact for fact in store.all_facts() if fact["type"] == "application_merged"]
    assert len(facts) == 1 and facts[0]["_id"] == event["event_id"]
    assert store.get_summary(event["application_id"]) is None  # not a second application
    parts.close()


def test_the_call_back_contact_is_given_to_the_named_staff_member_and_audited(parts, client):
    from nameko.testing.services import worker_factory

    from services.intake.service import IntakeService
    from tests.support import SAMPLE_APPLICATION

    created = client.post("/api/v1/applications", json=SAMPLE_APPLICATION).get_json()
    service = worker_factory(IntakeService, parts=parts)
    contact = service.get_callback_contact(created["application_id"], "ozel-kalem-1", "mayor")
    assert contact == {"first_name": "Ayşe", "last_name": "Demir", "phone": "+905551112233",
                       "email": None}
    [entry] = list(parts.store.audit_log.find({"action": "callback.contact"}))
    assert (entry["staff"], entry["role"], entry["application_id"]) == (
        "ozel-kalem-1", "mayor", created["application_id"])
    assert service.get_callback_contact("no-such-application", "ozel-kalem-1", "mayor") is None
