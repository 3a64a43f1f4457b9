"""Notify's rules: what a message says, where it may be shown, and what its outcome records.

Pure: no nameko, no pymongo. Message texts are Jinja2 templates under `templates/<channel>/`
(`<template>.<language>.j2`), rendered with `StrictUndefined` so a missing variable is an error,
never a blank in a citizen's SMS. A message is identified by its cause: one message per
(cause event, channel, template), which is what makes sending exactly-once.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.common.codes import display_tracking_code
from services.common.events import make_event

SMS = "sms"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGE = "tr"

SENDING = "sending"
SENT = "sent"
FAILED = "failed"
FINAL = (SENT, FAILED)
NO_CONTACT = "no contact"
NO_PROVIDER = "none"
# A message left in "sending" longer than this was abandoned by a crashed worker: a redelivery
# may take it over and send it (at-least-once for that window). Shorter leases risk a second
# SMS while a slow provider call is still running.
SENDING_LEASE = timedelta(minutes=5)

# GSM 03.38 basic alphabet and its extension table (extension characters cost two septets).
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def message_key(cause_event_id: str, channel: str, template: str) -> str:
    """The message-log id: one message per cause event, channel and template."""
    return f"{cause_event_id}:{channel}:{template}"


def mask_phone(phone: str | None) -> str | None:
    """`+905551112233` → `+90555*****33`: enough for staff to recognise, not to dial."""
    if not phone:
        return None
    if len(phone) < 8:  # too short to show any of it safely
        return "*" * len(phone)
    head = 6 if len(phone) >= 12 else 2  # `+90555`: country and operator code, not the person
    return phone[:head] + "*" * (len(phone) - head - 2) + phone[-2:]


def sms_segments(text: str) -> int:
    """How many SMS segments `text` costs (GSM-7 when it fits, else UCS-2).

    Turkish ı, ş, ğ, İ, Ş, Ğ are outside GSM-7, so Turkish texts nearly always go as UCS-2:
    70 characters in one segment, 67 per segment when concatenated.
    """
    if all(ch in _GSM7 or ch in _GSM7_EXTENDED for ch in text):
        septets = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def template_environment(directory: Path = TEMPLATE_DIR) -> Environment:
    """Plain-text templates: no HTML escaping (an `&` in a unit name stays an `&`)."""
    return Environment(
        loader=FileSystemLoader(str(directory)),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - SMS and e-mail text, never HTML
        keep_trailing_newline=False,
    )


def sms_context(template: str, event: dict, base_url: str) -> dict:
    """The variables of `template`, taken from its cause event (no personal data needed)."""
    data = event["data"]
    context = {
        "tracking_code_display": display_tracking_code(data["tracking_code"]),
        "base_url": base_url.rstrip("/"),
    }
    if template == "application_routed":
        context.update(unit_name=data["unit_name"], institution_name=data["institution_name"])
    return context


class SmsComposer:
    """Renders SMS texts for events; built once at container setup."""

    def __init__(self, base_url: str, environment: Environment | None = None):
        self.base_url = base_url
        self.environment = environment or template_environment()

    def render(self, channel: str, template: str, context: dict) -> str:
        """`templates/<channel>/<template>.tr.j2` rendered with `context`, one line."""
        text = self.environment.get_template(f"{channel}/{template}.{LANGUAGE}.j2").render(
            context)
        return " ".join(text.split())

    def compose(self, template: str, event: dict) -> str:
        """The SMS text for `template` caused by `event`."""
        return self.render(SMS, template, sms_context(template, event, self.base_url))


def new_message(
    key: str, cause: dict, channel: str, template: str, *, destination: str | None,
    provider: str, claim: str, now: datetime,
) -> dict:
    """The message-log entry claimed before sending: masked destination only, never the text."""
    return {
        "_id": key,
        "application_id": cause["application_id"],
        "cause_event_id": cause["event_id"],
        "cause_type": cause["type"],
        "channel": channel,
        "template": template,
        "destination": destination,
        "provider": provider,
        "status": SENDING,
        "claim": claim,
        "claimed_at": now,
        "attempts": 1,
        "created_at": now,
    }


def outcome(
    message: dict, cause: dict, *, provider_message_id: str | None = None,
    error: str | None = None, now: datetime,
) -> tuple[dict, dict]:
    """The fields that finish `message` and its `notification_sent` / `_failed` event.

    The event's `message_id` is the message-log id (it exists for failures too); the provider's
    own id stays in the log.
    """
    failed = error is not None
    provider = NO_PROVIDER if error == NO_CONTACT else message["provider"]
    fields = {"status": FAILED if failed else SENT, "provider": provider,
              "finished_at": now}
    if failed:
        fields["error"] = error
    else:
        fields.update(provider_message_id=provider_message_id, sent_at=now)
    event = make_event(
        "notification_failed" if failed else "notification_sent",
        cause["application_id"],
        {"channel": message["channel"], "template": message["template"],
         "message_id": message["_id"], "provider": provider,
         "cause_event_id": cause["event_id"], "error": error},
        correlation_id=cause["correlation_id"],
        occurred_at=now,
    )
    return fields, event
