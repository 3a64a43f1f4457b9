"""A real HTTP server playing an SMS gateway and a real SMTP server (aiosmtpd) with TLS, for
notify's provider and delivery tests (the fixtures that start them are in conftest.py)."""
import email
import email.policy
import json
import ssl
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import AuthResult
from werkzeug import Request, Response

from services.common.config import load_config
from services.notify.providers import (
    HttpSmsGateway,
    SmtpEmailProvider,
    build_email_provider,
    build_sms_provider,
)

PASSWORD = "gizli-parola-123"


class Gateway:
    """A WSGI app recording each request (body read and parsed at once) and answering it with
    `respond(request)`: by default `{}` as JSON."""

    def __init__(self):
        self.requests: list[Request] = []
        self.url = ""
        self.respond: Callable[[Request], Response] = json_answer({})

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.get_data()  # read now, while the connection is open; parsed from the cache
        self.requests.append(request)
        return self.respond(request)(environ, start_response)

    def only_request(self) -> Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def json_answer(payload) -> Callable[[Request], Response]:
    return lambda request: Response(json.dumps(payload), content_type="application/json")


def settings(**overrides: str) -> dict:
    return load_config(env={}, **overrides)


def gateway(server: Gateway, **overrides: str) -> HttpSmsGateway:
    provider = build_sms_provider(settings(**{
        "SMS_PROVIDER": "http", "SMS_GATEWAY_URL": server.url,
        "SMS_GATEWAY_USERNAME": "belediye", "SMS_GATEWAY_PASSWORD": PASSWORD,
        "SMS_GATEWAY_SENDER": "ACIKKAPI", "SMS_GATEWAY_TIMEOUT": "2", **overrides}))
    assert isinstance(provider, HttpSmsGateway)
    return provider


# -- SMTP --------------------------------------------------------------------------------------

SMTP_USER, SMTP_PASSWORD = "acikkapi", "smtp-parola-789"
MAIL_FROM = "Açık Kapı Belediyesi <acikkapi@belediye.example.gov.tr>"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (also the CA a client may be told to trust)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60)
    return cert, key


class Inbox:
    """aiosmtpd's handler: keeps what it receives; `refused@` and `later@` are refused."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused@"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append(login)
        # handled=False: aiosmtpd answers the failure (535) itself (its default is that the
        # authenticator already did)
        return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD),
                          handled=False)

    def message(self, index: int = -1) -> EmailMessage:
        return email.message_from_bytes(self.received[index][2], policy=email.policy.default)


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def smtp_provider(controller, certificate, **overrides: str) -> SmtpEmailProvider:
    provider = build_email_provider(settings(**{
        "EMAIL_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port),
        "SMTP_USERNAME": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_CA_FILE": str(certificate[0]), "MAIL_FROM": MAIL_FROM, "SMTP_TIMEOUT": "5",
        **overrides}))
    assert isinstance(provider, SmtpEmailProvider)
    return provider
