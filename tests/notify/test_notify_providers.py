"""Notify's providers: the development sinks, an HTTP SMS gateway played by a real HTTP server,
SMTP against a real aiosmtpd server, and refusing a provider it cannot use at start."""
import email
import email.policy
import json
import re
import socket
import time

import eventlet
import eventlet.wsgi
import pytest
from werkzeug import Response

from services.notify.providers import (
    DevSinkEmailProvider,
    DevSinkSmsProvider,
    PermanentFailure,
    ProviderConfigError,
    ProviderError,
    TransientFailure,
    build_email_provider,
    build_sms_provider,
    fill_template,
)
from services.notify.service import NotifyService
from tests.notify.servers import (
    MAIL_FROM,
    PASSWORD,
    SMTP_PASSWORD,
    SMTP_USER,
    gateway,
    json_answer,
    settings,
    smtp_provider,
)
from tests.support import free_port


def test_the_dev_sink_appends_one_json_line_per_message_and_creates_its_directory(tmp_path):
    sink = tmp_path / "not" / "there"
    provider = DevSinkSmsProvider(sink)
    first = provider.send("+905551112233", "Açık Kapı: bir")
    second = provider.send("+905551112244", "Açık Kapı: iki")
    lines = [json.loads(line) for line in (sink / "sms.jsonl").read_text("utf-8").splitlines()]
    assert [(line["to"], line["text"], line["message_id"]) for line in lines] == [
        ("+905551112233", "Açık Kapı: bir", first), ("+905551112244", "Açık Kapı: iki", second)]
    assert first != second
    assert all(set(line) == {"at", "to", "text", "message_id"} for line in lines)


def test_a_message_handed_over_again_with_its_reference_is_sent_once(tmp_path):
    """As a gateway that keeps client references: a taken-over claim's second hand-over of the
    same message (same key) is answered with the first one's id, and nobody gets it twice."""
    first_process, second_process = DevSinkSmsProvider(tmp_path), DevSinkSmsProvider(tmp_path)
    sent = first_process.send("+905551112233", "Açık Kapı: bir", reference="evt-1:received")
    again = second_process.send("+905551112233", "Açık Kapı: bir", reference="evt-1:received")
    other = second_process.send("+905551112233", "Açık Kapı: iki", reference="evt-2:received")
    lines = (tmp_path / "sms.jsonl").read_text("utf-8").splitlines()
    assert again == sent and other != sent
    assert [json.loads(line)["text"] for line in lines] == ["Açık Kapı: bir", "Açık Kapı: iki"]


def test_the_configured_dev_provider_writes_to_dev_sink_dir(config):
    provider = build_sms_provider(config)
    assert isinstance(provider, DevSinkSmsProvider)
    assert provider.name == "dev"
    assert str(provider.path).startswith(config["DEV_SINK_DIR"])


def test_an_unknown_provider_is_refused_by_name(config):
    with pytest.raises(ProviderConfigError, match="SMS_PROVIDER='carrier-pigeon'"):
        build_sms_provider(dict(config, SMS_PROVIDER="carrier-pigeon"))


def test_the_notify_service_does_not_start_with_an_unknown_provider(config, container_factory):
    container = container_factory(NotifyService, dict(config, SMS_PROVIDER="carrier-pigeon"))
    with pytest.raises(ProviderConfigError):
        container.start()


# -- the HTTP SMS gateway ----------------------------------------------------------------------
# A real HTTP server plays the gateway: eventlet's WSGI server, as the services' own HTTP runs
# (a server on a thread of its own would block every green thread of the test process).

TOKEN = "bearer-token-456"
NUMBER = "+905551112233"


def test_the_default_body_is_json_with_the_credentials_and_the_reference_in_a_header(
        gateway_server):
    gateway_server.respond = json_answer({"message_id": "gw-42"})
    provider = gateway(gateway_server)
    text = "Başvurunuz alındı {to} {password} %s {0} \\1"  # braces in a text stay as they are
    assert provider.send("0555 111 22 33", text, reference="evt-1:application_received") == (
        "gw-42")
    request = gateway_server.only_request()
    assert (request.method, request.path) == ("POST", "/sms/send")
    assert request.mimetype == "application/json"
    assert request.get_json() == {
        "username": "belediye", "password": PASSWORD, "sender": "ACIKKAPI", "to": NUMBER,
        "text": text, "reference": "evt-1:application_received"}
    assert request.headers["Idempotency-Key"] == "evt-1:application_received"
    assert "Authorization" not in request.headers


def test_a_configured_form_body_fills_placeholders_and_sends_constants(gateway_server):
    gateway_server.respond = lambda request: Response("00 123456")
    body = {"usercode": "{username}", "password": "{password}", "gsmno": "{to}",
            "message": "Kod: {text}", "msgheader": "{sender}", "dil": "TR", "filter": 0}
    provider = gateway(gateway_server, SMS_GATEWAY_FORMAT="form",
                       SMS_GATEWAY_BODY=json.dumps(body),
                       SMS_GATEWAY_NUMBER_FORMAT="national_digits",
                       SMS_GATEWAY_IDEMPOTENCY_HEADER="")
    # a plain-text answer has no id to read: the reference is the message id
    assert provider.send(NUMBER, "ğüşıöçİ & = +", reference="evt-2:x") == "evt-2:x"
    request = gateway_server.only_request()
    assert request.mimetype == "application/x-www-form-urlencoded"
    assert request.form.to_dict() == {
        "usercode": "belediye", "password": PASSWORD, "gsmno": "5551112233",
        "message": "Kod: ğüşıöçİ & = +", "msgheader": "ACIKKAPI", "dil": "TR", "filter": "0"}
    assert "Idempotency-Key" not in request.headers


def test_nested_json_bodies_and_a_dotted_id_field(gateway_server):
    gateway_server.respond = json_answer(
        {"response": {"status": "ok", "messages": [{"id": 987654}]}})
    body = {"request": {"authentication": {"key": "{username}", "hash": "{password}"},
                        "order": {"sender": "{sender}", "message": {
                            "text": "{text}", "receipents": {"number": ["{to}"]}}}}}
    provider = gateway(gateway_server, SMS_GATEWAY_BODY=json.dumps(body),
                       SMS_GATEWAY_NUMBER_FORMAT="international_digits",
                       SMS_GATEWAY_ID_FIELD="response.messages.0.id")
    assert provider.send(NUMBER, "Merhaba", reference="evt-3:x") == "987654"
    sent = gateway_server.only_request().get_json()
    assert sent["request"]["order"]["message"] == {
        "text": "Merhaba", "receipents": {"number": ["905551112233"]}}
    assert sent["request"]["authentication"] == {"key": "belediye", "hash": PASSWORD}


@pytest.mark.parametrize(("number_format", "expected"), [
    ("e164", "+905551112233"), ("international_digits", "905551112233"),
    ("national_digits", "5551112233")])
@pytest.mark.parametrize("written", ["+905551112233", "05551112233", "5551112233",
                                     "+90 (555) 111 22 33"])
def test_numbers_are_normalised_to_the_configured_format(gateway_server, number_format,
                                                         expected, written):
    gateway(gateway_server, SMS_GATEWAY_NUMBER_FORMAT=number_format).send(written, "x")
    assert gateway_server.only_request().get_json()["to"] == expected


def test_basic_auth_sends_the_credentials_in_the_header_not_the_body(gateway_server):
    gateway(gateway_server, SMS_GATEWAY_AUTH="basic").send(NUMBER, "x", reference="r")
    request = gateway_server.only_request()
    assert request.authorization.type == "basic"
    assert (request.authorization.username, request.authorization.password) == (
        "belediye", PASSWORD)
    assert set(request.get_json()) == {"sender", "to", "text", "reference"}


def test_bearer_auth_sends_the_token(gateway_server):
    provider = gateway(gateway_server, SMS_GATEWAY_AUTH="bearer", SMS_GATEWAY_TOKEN=TOKEN)
    reference = provider.send(NUMBER, "x")  # no key of ours: a fresh reference is the id
    request = gateway_server.only_request()
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == reference
    assert reference.startswith("ak-")
    assert set(request.get_json()) == {"sender", "to", "text", "reference"}


def test_get_sends_the_body_as_the_query(gateway_server):
    gateway_server.respond = lambda request: Response("OK")
    body = {"user": "{username}", "pass": "{password}", "to": "{to}", "msg": "{text}"}
    gateway(gateway_server, SMS_GATEWAY_METHOD="GET", SMS_GATEWAY_FORMAT="form",
            SMS_GATEWAY_BODY=json.dumps(body)).send(NUMBER, "Çağrı & iş")
    assert gateway_server.only_request().method == "GET"
    assert gateway_server.only_request().args.to_dict() == {
        "user": "belediye", "pass": PASSWORD, "to": NUMBER, "msg": "Çağrı & iş"}


def assert_says_nothing_personal(failure: ProviderError, *secrets: str) -> None:
    """The exception's text (it may be logged) and everything chained to it."""
    assert failure.__cause__ is None
    assert failure.__context__ is None or failure.__suppress_context__
    for secret in (NUMBER, "5551112233", PASSWORD, TOKEN, "Gizli metin", *secrets):
        assert secret not in str(failure) and secret not in repr(failure)


@pytest.mark.parametrize(("status", "failure"), [
    (500, TransientFailure), (502, TransientFailure), (503, TransientFailure),
    (408, TransientFailure), (429, TransientFailure),
    (400, PermanentFailure), (401, PermanentFailure), (403, PermanentFailure),
    (422, PermanentFailure), (302, PermanentFailure)])
def test_http_statuses_are_transient_or_permanent(gateway_server, status, failure):
    gateway_server.respond = lambda request: Response("hata", status=status,
                                                      headers={"Location": "/elsewhere"})
    with pytest.raises(failure) as raised:
        gateway(gateway_server).send(NUMBER, "Gizli metin", reference="r")
    assert raised.value.code == f"http_{status}"
    assert raised.value.permanent is (failure is PermanentFailure)
    assert len(gateway_server.requests) == 1  # one attempt: retrying is the caller's
    assert_says_nothing_personal(raised.value)


def test_a_gateway_slower_than_the_timeout_is_a_transient_timeout(gateway_server):
    def slow(request):
        eventlet.sleep(1.5)
        return Response("{}", content_type="application/json")

    gateway_server.respond = slow
    provider = gateway(gateway_server, SMS_GATEWAY_TIMEOUT="0.3")
    started = time.monotonic()
    with pytest.raises(TransientFailure) as raised:
        provider.send(NUMBER, "Gizli metin", reference="r")
    assert raised.value.code == "timeout"
    assert time.monotonic() - started < 1.2
    assert_says_nothing_personal(raised.value)


def test_a_gateway_that_is_not_there_is_a_transient_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = build_sms_provider(settings(
        SMS_PROVIDER="http", SMS_GATEWAY_URL=f"http://127.0.0.1:{port}/sms?key={PASSWORD}",
        SMS_GATEWAY_USERNAME="belediye", SMS_GATEWAY_PASSWORD=PASSWORD,
        SMS_GATEWAY_SENDER="ACIKKAPI"))
    with pytest.raises(TransientFailure) as raised:
        provider.send(NUMBER, "Gizli metin")
    assert raised.value.code == "connection_error"
    assert_says_nothing_personal(raised.value)


@pytest.mark.parametrize("number", ["12345", "+90 555 111", "not a number", "", "+90212"])
def test_an_invalid_number_is_refused_for_good_before_any_request(gateway_server, number):
    with pytest.raises(PermanentFailure) as raised:
        gateway(gateway_server).send(number, "Gizli metin", reference="r")
    assert raised.value.code == "invalid_number"
    assert gateway_server.requests == []


def test_a_foreign_number_cannot_go_to_a_gateway_of_national_numbers(gateway_server):
    with pytest.raises(PermanentFailure, match="foreign_number"):
        gateway(gateway_server, SMS_GATEWAY_NUMBER_FORMAT="national_digits").send(
            "+4915112345678", "x")
    assert gateway_server.requests == []


def test_placeholders_are_filled_once_never_formatted():
    template = {"a": "{to}/{text}", "b": ["{text}", 3, None, {"c": "{x} {}"}]}
    filled = fill_template(template, {"to": "{text}", "text": "{to} {0} %(x)s"})
    assert filled == {"a": "{text}/{to} {0} %(x)s",
                      "b": ["{to} {0} %(x)s", 3, None, {"c": "{x} {}"}]}


@pytest.mark.parametrize(("overrides", "setting"), [
    ({}, "SMS_GATEWAY_URL"),
    ({"SMS_GATEWAY_URL": "ftp://gw.example/"}, "SMS_GATEWAY_URL"),
    ({"SMS_GATEWAY_URL": "https://gw.example/"}, "SMS_GATEWAY_USERNAME"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_USERNAME": "u"},
     "SMS_GATEWAY_PASSWORD"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer"},
     "SMS_GATEWAY_TOKEN"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "basic"},
     "SMS_GATEWAY_USERNAME"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "cookie"},
     "SMS_GATEWAY_AUTH"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_BODY": '{"to": "{to}"'}, "SMS_GATEWAY_BODY"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_BODY": '{"to": "{to}"}'}, "SMS_GATEWAY_BODY"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_BODY": '{"to": "{phone}", "m": "{text}"}'},
     "SMS_GATEWAY_BODY"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_FORMAT": "form",
      "SMS_GATEWAY_BODY": '{"to": "{to}", "m": {"t": "{text}"}}'}, "SMS_GATEWAY_BODY"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_FORMAT": "xml"}, "SMS_GATEWAY_FORMAT"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_NUMBER_FORMAT": "local"},
     "SMS_GATEWAY_NUMBER_FORMAT"),
    ({"SMS_GATEWAY_URL": "https://gw.example/", "SMS_GATEWAY_AUTH": "bearer",
      "SMS_GATEWAY_TOKEN": "t", "SMS_GATEWAY_TIMEOUT": "soon"}, "SMS_GATEWAY_TIMEOUT"),
])
def test_a_missing_or_wrong_gateway_setting_is_refused_at_start_by_name(overrides, setting):
    config = settings(SMS_PROVIDER="http", **overrides)
    with pytest.raises(ProviderConfigError, match=setting) as raised:
        build_sms_provider(config)
    assert PASSWORD not in str(raised.value)


def test_a_gateway_body_s_text_is_not_repeated_in_its_error():
    with pytest.raises(ProviderConfigError) as raised:
        build_sms_provider(settings(
            SMS_PROVIDER="http", SMS_GATEWAY_URL="https://gw.example/",
            SMS_GATEWAY_BODY=f'{{"key": "{PASSWORD}", "to": "{{to}}"'))
    assert PASSWORD not in str(raised.value)


def test_the_notify_service_does_not_start_with_a_gateway_it_cannot_use(config,
                                                                        container_factory):
    container = container_factory(NotifyService, dict(config, SMS_PROVIDER="http"))
    with pytest.raises(ProviderConfigError, match="SMS_GATEWAY_URL"):
        container.start()


# -- SMTP --------------------------------------------------------------------------------------
# A real aiosmtpd server receives the mail: STARTTLS with AUTH, and implicit TLS, both with a
# self-signed certificate made here with the openssl command.

SUBJECT = "Başvurunuz ilgili birime iletildi: ğüşıöçİ ĞÜŞIÖÇ"
BODY = "Sayın Ayşe Işık,\n\nBaşvurunuz Çevre Koruma Müdürlüğü'ne iletildi.\nİyi günler.\n"


def test_starttls_with_auth_delivers_turkish_text_intact(starttls_server, certificate):
    controller, inbox = starttls_server
    provider = smtp_provider(controller, certificate)
    message_id = provider.send("ayse.isik@example.com", SUBJECT, BODY,
                               reference="evt-1:application_routed", language="tr")
    assert inbox.logins == [SMTP_USER]
    [(envelope_from, recipients, _)] = inbox.received
    assert (envelope_from, recipients) == ("acikkapi@belediye.example.gov.tr",
                                           ["ayse.isik@example.com"])
    message = inbox.message()
    assert message["From"].addresses[0].display_name == "Açık Kapı Belediyesi"
    assert message["From"].addresses[0].addr_spec == "acikkapi@belediye.example.gov.tr"
    assert str(message["To"]) == "ayse.isik@example.com"
    assert str(message["Subject"]) == SUBJECT
    assert message.get_content() == BODY.replace("\n", "\r\n")  # SMTP's lines end in CRLF
    assert message.get_content_charset() == "utf-8"
    assert message["Message-ID"] == message_id
    assert re.fullmatch(r"<[0-9a-f]{32}@belediye\.example\.gov\.tr>", message_id)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "tr"
    assert message["Date"].datetime.tzinfo is not None


def test_the_same_reference_gives_the_same_message_id_and_another_a_different_one(
        starttls_server, certificate):
    controller, inbox = starttls_server
    provider = smtp_provider(controller, certificate)
    first = provider.send("ayse@example.com", "a", "b", reference="evt-1:x")
    again = provider.send("ayse@example.com", "a", "b", reference="evt-1:x")
    other = provider.send("ayse@example.com", "a", "b", reference="evt-2:x")
    unkeyed = provider.send("ayse@example.com", "a", "b")
    assert first == again != other
    assert unkeyed not in (first, other)
    assert [inbox.message(i)["Message-ID"] for i in range(4)] == [first, again, other, unkeyed]
    # another process, same configuration: the same id (nothing random or per-process in it)
    assert smtp_provider(controller, certificate).message_id("evt-1:x") == first


def test_implicit_tls_delivers_and_english_is_labelled_as_such(implicit_tls_server,
                                                               certificate):
    controller, inbox = implicit_tls_server
    provider = smtp_provider(controller, certificate, SMTP_SECURITY="tls", SMTP_USERNAME="",
                             SMTP_PASSWORD="")
    provider.send("citizen@example.org", "Your request", "Hello İstanbul\n", reference="k",
                  language="en")
    message = inbox.message()
    assert (str(message["Subject"]), message.get_content()) == ("Your request",
                                                                "Hello İstanbul\r\n")
    assert message["Content-Language"] == "en"


def test_an_unverified_self_signed_server_is_accepted_only_when_told(implicit_tls_server,
                                                                     certificate):
    controller, inbox = implicit_tls_server
    base = {"SMTP_SECURITY": "tls", "SMTP_USERNAME": "", "SMTP_PASSWORD": "",
            "SMTP_CA_FILE": ""}
    with pytest.raises(TransientFailure, match="tls_error"):
        smtp_provider(controller, certificate, **base).send("a@example.org", "s", "t")
    smtp_provider(controller, certificate, SMTP_VERIFY="false", **base).send(
        "a@example.org", "s", "t")
    assert len(inbox.received) == 1


def test_wrong_credentials_are_a_transient_failure(starttls_server, certificate):
    controller, inbox = starttls_server
    provider = smtp_provider(controller, certificate, SMTP_PASSWORD="wrong-parola")
    with pytest.raises(TransientFailure) as raised:
        provider.send("ayse.isik@example.com", SUBJECT, "Gizli metin", reference="r")
    assert raised.value.code == "smtp_auth"
    assert inbox.received == []
    assert_says_nothing_personal(raised.value, "ayse.isik@example.com", "wrong-parola",
                                 SMTP_PASSWORD)


def test_a_refused_recipient_is_a_permanent_failure(starttls_server, certificate):
    controller, inbox = starttls_server
    with pytest.raises(PermanentFailure) as raised:
        smtp_provider(controller, certificate).send("refused@example.com", "s", "Gizli metin")
    assert raised.value.code == "smtp_550"
    assert inbox.received == []
    assert_says_nothing_personal(raised.value, "refused@example.com", SMTP_PASSWORD)


def test_a_recipient_deferred_with_4xx_is_a_transient_failure(starttls_server, certificate):
    controller, _ = starttls_server
    with pytest.raises(TransientFailure, match="smtp_451"):
        smtp_provider(controller, certificate).send("later@example.com", "s", "t")


def test_a_server_that_is_not_there_is_a_transient_failure(certificate):
    provider = build_email_provider(settings(
        EMAIL_PROVIDER="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=str(free_port()),
        MAIL_FROM=MAIL_FROM, SMTP_TIMEOUT="2"))
    with pytest.raises(TransientFailure, match="connection_error"):
        provider.send("ayse@example.com", "s", "t")


@pytest.mark.parametrize("address", [
    "not-an-address", "ayse@", "@example.com", "ayse@@example.com", "ayşe@example.com",
    "ayse@example", "a b@example.com", ""])
def test_an_invalid_address_is_refused_for_good_without_connecting(address):
    provider = build_email_provider(settings(
        EMAIL_PROVIDER="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=str(free_port()),
        MAIL_FROM=MAIL_FROM))  # nothing listens there: a connection would fail otherwise
    with pytest.raises(PermanentFailure) as raised:
        provider.send(address, "s", "t", reference="r")
    assert raised.value.code == "invalid_address"
    if address:
        assert address not in str(raised.value)


@pytest.mark.parametrize(("overrides", "setting"), [
    ({}, "SMTP_HOST"),
    ({"SMTP_HOST": "smtp.example", "SMTP_SECURITY": "ssl"}, "SMTP_SECURITY"),
    ({"SMTP_HOST": "smtp.example", "SMTP_PORT": "smtp"}, "SMTP_PORT"),
    ({"SMTP_HOST": "smtp.example", "MAIL_FROM": "Açık Kapı"}, "MAIL_FROM"),
    ({"SMTP_HOST": "smtp.example", "MAIL_FROM": ""}, "MAIL_FROM"),
    ({"SMTP_HOST": "smtp.example", "SMTP_USERNAME": "u"}, "SMTP_PASSWORD"),
    ({"SMTP_HOST": "smtp.example", "SMTP_VERIFY": "maybe"}, "SMTP_VERIFY"),
    ({"SMTP_HOST": "smtp.example", "SMTP_CA_FILE": "/nonexistent/ca.pem"}, "SMTP_CA_FILE"),
    ({"SMTP_HOST": "smtp.example", "SMTP_TIMEOUT": "0"}, "SMTP_TIMEOUT"),
])
def test_a_missing_or_wrong_smtp_setting_is_refused_at_start_by_name(overrides, setting):
    with pytest.raises(ProviderConfigError, match=setting):
        build_email_provider(settings(EMAIL_PROVIDER="smtp", **overrides))


def test_the_smtp_port_follows_the_security_mode_unless_set():
    ports = {mode: build_email_provider(settings(
        EMAIL_PROVIDER="smtp", SMTP_HOST="smtp.example", SMTP_SECURITY=mode)).port
        for mode in ("starttls", "tls", "none")}
    assert ports == {"starttls": 587, "tls": 465, "none": 25}


def test_an_unknown_email_provider_is_refused_by_name():
    with pytest.raises(ProviderConfigError, match="EMAIL_PROVIDER='pigeon'"):
        build_email_provider(settings(EMAIL_PROVIDER="pigeon"))


def test_the_dev_email_sink_labels_the_language(tmp_path):
    provider = DevSinkEmailProvider(tmp_path, MAIL_FROM)
    message_id = provider.send("ayse@example.com", SUBJECT, BODY, language="en")
    written = email.message_from_bytes((tmp_path / "mail" / f"{message_id}.eml").read_bytes(),
                                       policy=email.policy.default)
    assert (written["Content-Language"], str(written["Subject"])) == ("en", SUBJECT)
    assert written.get_content() == BODY
