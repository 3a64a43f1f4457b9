"""Outbound SMS providers behind one small interface, chosen by `SMS_PROVIDER` at start-up.

Only the development provider exists: `DevSinkSmsProvider` writes each message as a JSON line
to `<DEV_SINK_DIR>/sms.jsonl` instead of sending it, so the local run and the tests can see what
a citizen would receive. An unknown `SMS_PROVIDER` stops the service at start, never at the first
message.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Protocol

from nameko.extensions import DependencyProvider

from services.common.events import new_event_id, utcnow
from services.common.mongo import is_embedded

log = logging.getLogger(__name__)


class ProviderConfigError(RuntimeError):
    """The configured provider cannot be used."""


class SmsProvider(Protocol):
    name: str

    def send(self, to: str, text: str) -> str:
        """Hand one SMS to the provider; returns its message id, raises if it was refused."""


class DevSinkSmsProvider:
    """The development provider: appends `{at, to, text, message_id}` to `sms.jsonl`."""

    name = "dev"

    def __init__(self, sink_dir: str | Path):
        self.path = Path(sink_dir) / "sms.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Greenlets of one process share the file: one whole line per write, one writer at a time.
        self._lock = threading.Lock()

    def send(self, to: str, text: str) -> str:
        message_id = f"dev-{new_event_id()}"
        line = json.dumps({"at": utcnow().isoformat(), "to": to, "text": text,
                           "message_id": message_id}, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")
        return message_id


def build_sms_provider(config: dict) -> SmsProvider:
    """The provider `SMS_PROVIDER` names; raises `ProviderConfigError` for anything unknown."""
    name = config.get("SMS_PROVIDER", "dev")
    if name == "dev":
        if not is_embedded(config["MONGO_URI"]):
            log.warning("SMS_PROVIDER=dev: messages go to the development sink, not to citizens")
        return DevSinkSmsProvider(config["DEV_SINK_DIR"])
    raise ProviderConfigError(f"SMS_PROVIDER={name!r} is not supported; known providers: dev")


class SmsGateway(DependencyProvider):
    """Injects the configured SMS provider, built (and checked) at container setup."""

    def setup(self) -> None:
        self.provider = build_sms_provider(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.provider
