"""Notify's test servers: an SMS gateway (eventlet's WSGI server, as the services' own HTTP
runs: a server on a thread of its own would block every green thread of the test process) and
SMTP (aiosmtpd) with STARTTLS + AUTH or implicit TLS, on a self-signed certificate."""
import pytest
from aiosmtpd.controller import Controller

from tests.notify.servers import Gateway, Inbox, make_certificate, server_context
from tests.support import free_port, serve


@pytest.fixture
def gateway_server():
    app = Gateway()
    with serve(app) as base:
        app.url = f"{base}/sms/send"
        yield app


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def starttls_server(certificate):
    """STARTTLS required before anything, then AUTH required (aiosmtpd's defaults: AUTH is
    offered only over TLS)."""
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), tls_context=server_context(certificate),
        require_starttls=True, authenticator=inbox.authenticate, auth_required=True)
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def implicit_tls_server(certificate):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            ssl_context=server_context(certificate))
    controller.start()
    yield controller, inbox
    controller.stop()
