"""Notify's handler of `staff_password_reset_requested` with its dependencies in hand: the
address and link are asked from the console at send time, e-mailed once, and neither is kept
in notify's log or its outcome event."""
from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest
from nameko.testing.services import worker_factory

from services.common.events import load_event, make_event
from services.common.outbox import OUTBOX
from services.notify import domain
from services.notify.bootstrap import build
from services.notify.sending import Deliveries
from services.notify.service import NotifyService

RESET_ID = "Qx7k2M9dP4vR8sT1uW3yZ5aB"
LINK = f"https://acikkapi.example/console/parola-sifirla/{RESET_ID}.{'m' * 43}"


class FakeEmail:
    name = "fake-email"

    def __init__(self):
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, text: str, reference: str | None = None, *,
             language: str = "tr") -> str:
        self.sent.append((to, subject, text))
        return f"mail-{len(self.sent)}"


@pytest.fixture
def store(config):
    parts = build(config)
    yield parts.store
    parts.close()


def requested() -> dict:
    return load_event(make_event("staff_password_reset_requested", f"reset:{RESET_ID}",
                                 {"staff": "mez-0008", "reset_id": RESET_ID}))


def make_service(store, answer: dict | None):
    console = MagicMock()
    console.password_reset_message.return_value = answer
    email = FakeEmail()
    deliveries = Deliveries(store, MagicMock(name="sms"), email,
                            domain.Composer("https://acikkapi.example"), quiet=None)
    service = worker_factory(NotifyService, parts=SimpleNamespace(deliveries=deliveries),
                             console_rpc=console)
    service.email = email
    return service


def test_the_reset_link_is_emailed_once_to_the_address_the_console_gives(store):
    service = make_service(store, {"staff": "mez-0008", "email": "mez-0008@example.gov.tr",
                                   "name": "Bülent Aslan", "link": LINK, "minutes": 30})
    event = requested()
    service.handle_staff_password_reset_requested(event)
    service.handle_staff_password_reset_requested(event)  # redelivered: nothing twice
    service.console_rpc.password_reset_message.assert_called_once_with(RESET_ID)
    [(to, subject, text)] = service.email.sent
    assert to == "mez-0008@example.gov.tr" and "parola" in subject
    assert LINK in text.splitlines() and "Bülent Aslan" in text and "30 dakika" in text
    [message] = store.messages.find({})
    assert message["status"] == "sent" and message["audience"] == "staff"
    assert message["template"] == "staff_password_reset"
    assert LINK not in repr(message) and "mez-0008@example.gov.tr" not in repr(message)
    [outcome] = message[OUTBOX]
    assert outcome["type"] == "notification_sent" and outcome["data"]["audience"] == "staff"
    assert RESET_ID + "." not in repr(outcome) and "example.gov.tr" not in repr(outcome)


def test_a_reset_the_console_no_longer_answers_for_sends_nothing(store):
    service = make_service(store, None)  # used, expired or unknown
    service.handle_staff_password_reset_requested(requested())
    assert service.email.sent == []
    [message] = store.messages.find({})
    assert message["status"] == "failed" and message["error"] == domain.NO_CONTACT
