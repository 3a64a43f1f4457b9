"""Messages through the real providers: an HTTP SMS gateway played by a local server that fails,
stalls and refuses, and a real SMTP server (aiosmtpd, STARTTLS + AUTH) whose mail is parsed."""
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from unittest.mock import MagicMock

import eventlet
import pytest
from nameko.testing.services import worker_factory
from werkzeug import Response

from services.common.events import load_event, make_event
from services.common.outbox import OUTBOX
from services.common.retention import Retention
from services.notify import domain
from services.notify.bootstrap import build
from services.notify.sending import Deliveries
from services.notify.service import NotifyService
from tests.notify.servers import gateway, smtp_provider

DAY = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
CITIZEN = {"phone": "+905551112233", "email": None, "preferred_channel": "sms",
           "language": "tr", "citizen_ref": "c" * 64}
MAYOR = {"code": "mbb-0001", "phone": "+905320000001", "email": "baskan@mersin.bel.tr"}
# Two attempts of 1.5 s at most; the gateway's own timeout (1 s) comes first.
TIMING = domain.SendTiming(provider_timeout=1.5, record_seconds=1, margin=1, poll_seconds=0.05,
                           attempts=2, pause_seconds=0.05)


class RememberingGateway:
    """A gateway that delivers each idempotency key once, whatever the number of requests, and
    answers by a script: 500, then a stall past the client's timeout (after delivering), then
    200 — as a real gateway in trouble may."""

    def __init__(self, server, script: list[str]):
        self.server, self.script = server, list(script)
        self.delivered: dict[str, dict] = {}
        server.respond = self.answer

    def answer(self, request):
        key = request.headers.get("Idempotency-Key")
        step = self.script.pop(0) if self.script else "ok"
        if step == "500":
            return Response("busy", status=500)
        if step == "400":
            return Response(json.dumps({"error": "invalid sender"}), status=400)
        self.delivered.setdefault(key, json.loads(request.get_data()))
        if step == "stall":
            eventlet.sleep(1.2)  # delivered, but the answer comes too late
        return Response(json.dumps({"message_id": f"gw-{len(self.delivered)}"}),
                        content_type="application/json")


@pytest.fixture
def store(config):
    parts = build(config)
    yield parts.store
    parts.close()


def service_on(store, sms, email=None):
    intake, routing = MagicMock(), MagicMock()
    intake.get_contact.return_value = CITIZEN
    routing.staff_contact.side_effect = lambda code: MAYOR if code == "mbb-0001" else None
    deliveries = Deliveries(store, sms, email or MagicMock(name="email"),
                            domain.Composer("https://acikkapi.mersin.bel.tr",
                                            link_secret="s" * 32),
                            TIMING, clock=lambda: DAY)
    service = worker_factory(NotifyService, parts=SimpleNamespace(
        deliveries=deliveries, retention=Retention(deliveries.store.db)),
                             intake_rpc=intake, routing_rpc=routing)
    service.deliveries = deliveries
    return service


def waiting() -> dict:
    return load_event(make_event("case_waiting", "app-1", {
        "state": "waiting_citizen", "tracking_code": "K7M4QX2D9",
        "reason": "Çukurun yerini sokak adıyla yazar mısınız?"}, occurred_at=DAY))


def test_a_gateway_failing_then_stalling_gets_the_sms_out_exactly_once(store, gateway_server):
    remembering = RememberingGateway(gateway_server, ["500", "stall"])
    service = service_on(store, gateway(gateway_server, SMS_GATEWAY_TIMEOUT="1"))
    cause = waiting()
    service.handle_case_waiting(cause)  # 500, then a stall: both attempts fail for now
    key = domain.message_key(cause["event_id"], "case_waiting")
    held = store.messages.find_one({"_id": key})
    assert (held["status"], held["held_for"], held["last_error"]) == ("deferred", "retry",
                                                                      "timeout")
    service.handle_case_waiting(cause)  # a redelivery does not jump the queue
    service.deliveries.clock = lambda: DAY + domain.RETRY_DELAYS[0]
    assert service.deliveries.release_due(service._resolve) == 1
    keys = [request.headers["Idempotency-Key"] for request in gateway_server.requests]
    assert keys == [key] * 3  # the same reference on every attempt
    assert list(remembering.delivered) == [key]  # the citizen got it once
    [sms] = remembering.delivered.values()
    assert sms["to"] == "+905551112233" and "sokak adıyla" in sms["text"]
    message = store.messages.find_one({"_id": key})
    assert (message["status"], message["provider_message_id"]) == ("sent", "gw-1")
    [outcome] = message[OUTBOX]
    assert outcome["type"] == "notification_sent"


def test_a_gateway_refusal_is_recorded_failed_and_published_once(store, gateway_server):
    RememberingGateway(gateway_server, ["400"])
    service = service_on(store, gateway(gateway_server))
    cause = waiting()
    service.handle_case_waiting(cause)
    service.handle_case_waiting(cause)
    assert len(gateway_server.requests) == 1
    message = store.messages.find_one({"_id": domain.message_key(cause["event_id"],
                                                                  "case_waiting")})
    assert (message["status"], message["error"]) == ("failed", "http_400")
    [outcome] = message[OUTBOX]
    assert (outcome["type"], outcome["data"]["error"]) == ("notification_failed", "http_400")
    assert store.deferred.count_documents({}) == 0


def test_an_escalation_reaches_the_mayor_by_sms_and_by_e_mail_in_turkish(
        store, gateway_server, starttls_server, certificate):
    remembering = RememberingGateway(gateway_server, [])
    controller, inbox = starttls_server
    service = service_on(store, gateway(gateway_server),
                         smtp_provider(controller, certificate))
    escalated = load_event(make_event("case_escalated", "app-1", {
        "tracking_code": "K7M4QX2D9", "unit": "mersin_bb.roads", "from_level": 3,
        "to_level": 4, "to_role": "head", "to_staff": "mbb-0001", "deadline": "resolve"},
        occurred_at=DAY))
    service.handle_case_escalated(escalated)
    service.handle_case_escalated(escalated)
    [sms] = remembering.delivered.values()
    assert sms["to"] == "+905320000001" and "K7M-4QX-2D9" in sms["text"]
    assert "5551112233" not in sms["text"]  # nothing about the citizen
    [(_, recipients, _)] = inbox.received
    assert recipients == ["baskan@mersin.bel.tr"]
    mail = inbox.message()
    assert "K7M-4QX-2D9" in str(mail["Subject"])
    body = mail.get_content()
    assert mail.get_content_charset() == "utf-8" and mail["Content-Language"] == "tr"
    assert "başkan" in body.lower() and "mersin_bb.roads" in body
    assert mail["Message-ID"].endswith("@belediye.example.gov.tr>")
