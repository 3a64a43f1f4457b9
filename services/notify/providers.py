"""Outbound SMS providers behind one small interface, chosen by `SMS_PROVIDER` at start-up.

Only the development provider exists: `DevSinkSmsProvider` writes each message as a JSON line
to `<DEV_SINK_DIR>/sms.jsonl` instead of sending it, so the local run and the tests can see what
a citizen would receive. An unknown `SMS_PROVIDER` stops the service at start (notify's
composition root builds the providers first), never at the first message. E-mail works the
same way (`EMAIL_PROVIDER`): `DevSinkEmailProvider` writes each message as an RFC 5322 file
under `<DEV_SINK_DIR>/mail/`. Both are made once per process by `bootstrap.NotifyParts`.

Every send carries a `reference`: the message's own key (`<cause event>:<template>`). A sender
that died after handing a message over and before recording it leaves a claim that is taken
over after the lease, and the message is handed over again with the same reference: a provider
that keeps client references (most SMS gateways take one for delivery reports; many refuse a
repeated one) sends it once. The development sinks do as such a gateway would: the first send of
a reference is written, a repeat answers the first one's message id and writes nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Protocol

from services.common.config import is_local
from services.common.events import new_event_id, utcnow

log = logging.getLogger(__name__)


class ProviderConfigError(RuntimeError):
    """The configured provider cannot be used."""


class SmsProvider(Protocol):
    name: str

    def send(self, to: str, text: str, reference: str | None = None) -> str:
        """Hand one SMS to the provider; returns its message id, raises if it was refused.

        A repeated `reference` is the same message handed over again (see the module)."""


class DevSinkSmsProvider:
    """The development provider: appends `{at, to, text, message_id}` to `sms.jsonl`."""

    name = "dev"

    def __init__(self, sink_dir: str | Path):
        self.path = Path(sink_dir) / "sms.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Greenlets of one process share the file: one whole line per write, one writer at a time.
        self._lock = threading.Lock()

    def send(self, to: str, text: str, reference: str | None = None) -> str:
        message_id, first = _once(self.path.parent / "sms-references", reference)
        if not first:
            return message_id
        line = json.dumps({"at": utcnow().isoformat(), "to": to, "text": text,
                           "message_id": message_id}, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")
        return message_id


def _once(directory: Path, reference: str | None) -> tuple[str, bool]:
    """A new message id and True for a first send of `reference` (or none), else the id the
    first send got and False. One file per reference, created exclusively: of any number of
    processes handing the same message over, one writes it."""
    message_id = f"dev-{new_event_id()}"
    if reference is None:
        return message_id, True
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / hashlib.sha256(reference.encode()).hexdigest()
    try:
        with marker.open("x", encoding="utf-8") as handle:
            handle.write(message_id)
    except FileExistsError:
        return marker.read_text(encoding="utf-8") or message_id, False
    return message_id, True


def build_sms_provider(config: dict) -> SmsProvider:
    """The provider `SMS_PROVIDER` names; raises `ProviderConfigError` for anything unknown."""
    name = config.get("SMS_PROVIDER", "dev")
    if name == "dev":
        if not is_local(config["MONGO_URI"]):
            log.warning("SMS_PROVIDER=dev: messages go to the development sink, not to citizens")
        return DevSinkSmsProvider(config["DEV_SINK_DIR"])
    raise ProviderConfigError(f"SMS_PROVIDER={name!r} is not supported; known providers: dev")


# -- e-mail ----------------------------------------------------------------------------------

class EmailProvider(Protocol):
    name: str

    def send(self, to: str, subject: str, text: str, reference: str | None = None) -> str:
        """Hand one e-mail to the provider; returns its message id, raises if refused. A
        repeated `reference` is the same message handed over again (see the module)."""


class DevSinkEmailProvider:
    """The development provider: each message an RFC 5322 file, `DEV_SINK_DIR/mail/<id>.eml`."""

    name = "dev"

    def __init__(self, sink_dir: str | Path, sender: str):
        self.directory = Path(sink_dir) / "mail"
        self.sender = sender

    def send(self, to: str, subject: str, text: str, reference: str | None = None) -> str:
        from email.message import EmailMessage
        from email.utils import format_datetime, make_msgid

        message_id, first = _once(self.directory.parent / "mail-references", reference)
        if not first:
            return message_id
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(idstring=message_id, domain="acikkapi.local")
        message["Auto-Submitted"] = "auto-replied"  # RFC 3834: no autoresponder loops
        message.set_content(text)
        self.directory.mkdir(parents=True, exist_ok=True)
        # write then rename: a reader never sees half a message
        partial = self.directory / f".{message_id}.tmp"
        partial.write_bytes(bytes(message))
        partial.rename(self.directory / f"{message_id}.eml")
        return message_id


def build_email_provider(config: dict) -> EmailProvider:
    """The provider `EMAIL_PROVIDER` names; raises `ProviderConfigError` for anything unknown."""
    name = config.get("EMAIL_PROVIDER", "dev")
    if name == "dev":
        if not is_local(config["MONGO_URI"]):
            log.warning("EMAIL_PROVIDER=dev: e-mail goes to the development sink")
        return DevSinkEmailProvider(config["DEV_SINK_DIR"],
                                    config.get("MAIL_FROM") or "acikkapi@example.gov.tr")
    raise ProviderConfigError(f"EMAIL_PROVIDER={name!r} is not supported; known providers: dev")
