"""Notify's rules: what a message says, where it may be shown, and what its outcome records.

Pure: no nameko, no pymongo. Message texts are Jinja2 templates under `templates/<channel>/`
(`<template>.<language>.j2`), rendered with `StrictUndefined` so a missing variable is an error,
never a blank in a citizen's SMS. A message is identified by its cause: one message per
(cause event, template), whatever channel it goes out on, which is what makes sending
exactly-once. A cause has one recipient (the applicant, or the sender of a refused message), so
the pair names the recipient too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.common.codes import display_tracking_code
from services.common.events import make_event
from services.common.links import make_link_token

SMS = "sms"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGE = "tr"

SENDING = "sending"
SENT = "sent"
FAILED = "failed"
FINAL = (SENT, FAILED)
NO_CONTACT = "no contact"
NO_PROVIDER = "none"


@dataclass(frozen=True)
class SendTiming:
    """How long each step of a send may take, and so how long a claim is good for.

    The sender of a claimed message calls the provider for at most `provider_timeout` seconds
    and keeps trying to record the outcome until `record_seconds` after that (a database
    restart, a version claim left by a write the outage cut short); a last write started then
    may still wait for server selection (10 s), which `margin` covers with clock skew between
    replicas. Only after all of that has a claim no live sender: the lease. A delivery meeting
    a fresh claim of someone else waits for it within its run, up to `wait_seconds`, reading
    the message every `poll_seconds`.
    """

    provider_timeout: float = 10.0
    record_seconds: float = 30.0
    margin: float = 20.0
    poll_seconds: float = 0.5
    wait_seconds: float | None = None  # None: the lease and two polls (a claim lapses by then)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.provider_timeout + self.record_seconds + self.margin)

    @property
    def record_until(self) -> float:
        """Seconds after claiming by which the sender stops starting writes of its outcome."""
        return self.provider_timeout + self.record_seconds

    @property
    def wait(self) -> float:
        if self.wait_seconds is not None:
            return self.wait_seconds
        return self.lease.total_seconds() + 2 * self.poll_seconds


# A message left in "sending" longer than this has no live sender (one crashed, or the
# database was away for longer than it could wait): a delivery may take it over and send it —
# at-least-once for that case only. It fits the sender's own bounded steps (`SendTiming`); at
# 5 minutes, every retry of an event whose sender was cut off by a database outage met a fresh
# claim, and the event was dead-lettered (`MessageInFlight`).
SENDING_LEASE = SendTiming().lease


@dataclass(frozen=True)
class Recipient:
    """Where a message goes, resolved at send time: its channel and address (None: nowhere to
    send it), and what the templates may also need (a security code still owed, a subject)."""

    channel: str
    address: str | None
    extra: dict = field(default_factory=dict)

# GSM 03.38 basic alphabet and its extension table (extension characters cost two septets).
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def message_key(cause_event_id: str, template: str) -> str:
    """The message-log id: one message per cause event and template, on whichever channel.

    The channel is chosen at send time and may differ between two deliveries of one event (the
    citizen changed their preference meanwhile); it is not part of the id, so the two cannot
    both claim a message and both send.
    """
    return f"{cause_event_id}:{template}"


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
        "application_id": event["application_id"],
    }
    if template == "application_routed":
        context.update(unit_name=data["unit_name"], institution_name=data["institution_name"])
    elif template in ("case_escalated", "sla_warned"):
        # Staff alerts: the case's public code and unit, nothing about the citizen.
        context.update(unit=data.get("unit") or "-",
                       deadline_name=DEADLINE_NAMES_TR.get(data.get("deadline") or "", "süre"),
                       level_name=LEVEL_NAMES_TR.get(data.get("to_level", 0), "birim"),
                       percent_used=data.get("percent_used"))
    elif template == "delay_notice_due":
        context.update(hours_open=data["hours_open"])
    return context


class SmsComposer:
    """Renders SMS texts for events; built once at container setup."""

    def __init__(self, base_url: str, environment: Environment | None = None,
                 link_secret: str | None = None):
        self.base_url = base_url
        self.environment = environment or template_environment()
        if link_secret:
            # `{{ status_link(application_id) }}`: a signed link opening the status page
            # without the codes (services.common.links; tracking serves /t/<token>).
            root = base_url.rstrip("/")
            self.environment.globals["status_link"] = (
                lambda application_id: f"{root}/t/{make_link_token(link_secret, application_id)}")

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


# -- e-mail, replies to inbound messages, duplicates (intake channels) -----------------------

EMAIL = "email"
CHANNELS = (SMS, EMAIL)
# Event channels whose applicant is answered on that same channel.
ANSWER_ON_SAME_CHANNEL = {"sms": SMS, "email": EMAIL}


def mask_email(address: str | None) -> str | None:
    """`ayse.demir@example.com` → `a*********@example.com`: recognisable, not usable."""
    if not address or "@" not in address:
        return None
    local, _, domain_part = address.partition("@")
    return local[:1] + "*" * max(len(local) - 1, 1) + "@" + domain_part


def mask_destination(channel: str, address: str | None) -> str | None:
    return mask_phone(address) if channel == SMS else mask_email(address)


def choose_channel(cause: dict, contact: dict) -> tuple[str, str | None]:
    """`(channel, address)` for a message about an application.

    An application that came in by SMS or e-mail is answered there; otherwise the citizen's
    preferred channel. The address may be None (nothing to send to: recorded as failed).
    """
    came_in = (cause.get("data") or {}).get("channel") or contact.get("channel")
    channel = ANSWER_ON_SAME_CHANNEL.get(came_in) or contact.get("preferred_channel") or SMS
    if channel not in CHANNELS:
        channel = SMS
    return channel, contact.get("phone") if channel == SMS else contact.get("email")


def applicant(cause: dict, contact: dict) -> Recipient:
    """The applicant of `cause`, from what intake said of them (`{}`: it knows no one)."""
    channel, address = choose_channel(cause, contact)
    return Recipient(channel, address, contact)


def staff_member(contact: dict | None) -> Recipient:
    """A staff member alerted by SMS when the directory has a phone, else by e-mail (None:
    nowhere to send; recorded as failed)."""
    contact = contact or {}
    if contact.get("phone"):
        return Recipient(SMS, contact["phone"], {})
    return Recipient(EMAIL, contact.get("email"), {})


# What a staff alert calls each rung of the ladder (design §4).
LEVEL_NAMES_TR = {0: "birim", 1: "birim amiri", 2: "müdür", 3: "başkan yardımcısı",
                  4: "başkan"}
DEADLINE_NAMES_TR = {"read": "okunma", "resolve": "çözüm"}


def inbound_sender(found: dict) -> Recipient:
    """The sender of a refused inbound message: answered where it came from."""
    return Recipient(found.get("channel") or SMS, found.get("address"),
                     {"subject": found.get("subject")})


REJECTION_REASONS = {
    # reason code → what the reply says was wrong (Turkish; the templates add the rest)
    "empty": "mesajınız boş geldi",
    "no_tckn": "mesaj T.C. kimlik numaranızla başlamalı",
    "bad_tckn": "T.C. kimlik numarası geçersiz",
    "no_message": "kimlik numarasından sonra başvuru metni yok",
    "attachment_too_large": "ekli dosya çok büyük",
    "attachment_type": "ekli dosyanın türü kabul edilmiyor (JPEG, PNG, WebP veya PDF)",
    "attachment_corrupt": "ekli dosya okunamadı",
}


def message_context(template: str, event: dict, base_url: str, extra: dict) -> dict:
    """Variables for the intake-channel templates: from the event, plus `extra` resolved at
    send time (a security code still owed, never stored here)."""
    data = event["data"]
    context = {"base_url": base_url.rstrip("/"), "security_code": extra.get("security_code")}
    if template == "inbound_rejected":
        context["reason_text"] = REJECTION_REASONS.get(data["reason"], "başvuru okunamadı")
        context["channel"] = data["channel"]
        context["subject"] = extra.get("subject")
    elif template == "application_merged":
        context["tracking_code_display"] = display_tracking_code(data["original_tracking_code"])
    else:
        context.update(sms_context(template, event, base_url))
    return context


def render_message(composer: SmsComposer, channel: str, template: str,
                   context: dict) -> tuple[str | None, str]:
    """`(subject, text)`: an SMS is one line with no subject; an e-mail's template starts with
    its subject line, then a blank line, then the body."""
    if channel == SMS:
        return None, composer.render(SMS, template, context)
    raw = composer.environment.get_template(f"{EMAIL}/{template}.{LANGUAGE}.j2").render(context)
    subject, _, body = raw.strip().partition("\n\n")
    return " ".join(subject.split()), body.strip() + "\n"
