"""Notify's rules: what a message says and costs, to whom, when, and what its outcome records.

Pure: no nameko, no pymongo. Message texts are Jinja2 templates under `templates/<channel>/`
(`<template>.<language>.j2`, Turkish and English), rendered with `StrictUndefined` so a missing
variable is an error, never a blank in a citizen's SMS.

A message is identified by its cause, its template and its recipient: one message per (cause
event, template, recipient), whatever channel a citizen's message goes out on, which is what
makes sending exactly-once. The applicant of a cause is one recipient whatever the channel (the
channel is chosen at send time); a staff member is one recipient per channel, as staff alerts
go by SMS and by e-mail alike (seed 004).

When a message goes: now, or — a citizen's step notice in the quiet hours (22:00–08:00
Europe/Istanbul) — at 08:00; a send that failed for a passing reason is tried again after a
backoff. Whether it goes at all: a citizen who opted out gets only the codes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
)
from jinja2.sandbox import SandboxedEnvironment

from services.common.codes import display_tracking_code
from services.common.events import make_event
from services.common.links import make_link_token

log = logging.getLogger(__name__)

SMS = "sms"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGE = "tr"

SENDING = "sending"
DEFERRED = "deferred"  # to go at `due_at`: the quiet hours, or a retry after a passing failure
SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"  # not sent, by the citizen's choice (an opt-out)
FINAL = (SENT, FAILED, SKIPPED)
NO_CONTACT = "no contact"
NO_PROVIDER = "none"


@dataclass(frozen=True)
class SendTiming:
    """How long each step of a send may take, and so how long a claim is good for.

    The sender of a claimed message calls the provider up to `attempts` times, each for at
    most `provider_timeout` seconds, pausing `pause_seconds` (doubling) between attempts that
    failed for a passing reason (a 5xx, a timeout); then it keeps trying to record the
    outcome until `record_seconds` after that (a database restart, a version claim left by a
    write the outage cut short); a last write started then may still wait for server
    selection (10 s), which `margin` covers with clock skew between replicas. Only after all
    of that has a claim no live sender: the lease. A delivery meeting a fresh claim of
    someone else waits for it within its run, up to `wait_seconds`, reading the message every
    `poll_seconds`.
    """

    provider_timeout: float = 10.0
    record_seconds: float = 30.0
    margin: float = 20.0
    poll_seconds: float = 0.5
    wait_seconds: float | None = None  # None: the lease and two polls (a claim lapses by then)
    attempts: int = 3
    pause_seconds: float = 1.0
    order_wait_seconds: float = 0.5  # a message waiting for the "received" to go first

    @property
    def pauses(self) -> list[float]:
        """The pauses between the attempts of one send: 1 s, 2 s, … by default."""
        return [self.pause_seconds * 2 ** n for n in range(self.attempts - 1)]

    @property
    def sending_seconds(self) -> float:
        """The longest the provider calls of one send may take, pauses included."""
        return self.attempts * self.provider_timeout + sum(self.pauses)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.sending_seconds + self.record_seconds + self.margin)

    @property
    def record_until(self) -> float:
        """Seconds after claiming by which the sender stops starting writes of its outcome."""
        return self.sending_seconds + self.record_seconds

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
    send it), its language, and what the templates may also need (a security code still owed,
    a subject, a staff member's role).

    `citizen_ref` is the citizen's opaque reference (opt-outs are kept by it); `staff` marks a
    staff member (never held by the quiet hours or an opt-out). `template` names a variant of
    the cause's template for this recipient (a muhtar's request is answered in the muhtar's
    words); the message keeps the cause's template in its key.
    """

    channel: str
    address: str | None
    extra: dict = field(default_factory=dict)
    language: str = LANGUAGE
    citizen_ref: str | None = None
    staff: bool = False
    template: str | None = None



def message_key(cause_event_id: str, template: str, recipient: str | None = None) -> str:
    """The message-log id: one message per cause event, template and recipient.

    The applicant (`recipient` None) is one recipient on whichever channel: the channel is
    chosen at send time and may differ between two deliveries of one event (the citizen changed
    their preference meanwhile), so it is not part of the id and the two cannot both claim a
    message and both send. A staff member is named with the channel (`<code>:<channel>`): they
    get the alert by SMS and by e-mail, once each.
    """
    key = f"{cause_event_id}:{template}"
    return f"{key}:{recipient}" if recipient else key


def mask_phone(phone: str | None) -> str | None:
    """`+905551112233` → `+90555*****33`: enough for staff to recognise, not to dial."""
    if not phone:
        return None
    if len(phone) < 8:  # too short to show any of it safely
        return "*" * len(phone)
    head = 6 if len(phone) >= 12 else 2  # `+90555`: country and operator code, not the person
    return phone[:head] + "*" * (len(phone) - head - 2) + phone[-2:]


# -- SMS length ------------------------------------------------------------------------------
#
# What a text costs depends on the alphabet it can be sent in (3GPP TS 23.038) and on the user
# data header it then needs (3GPP TS 23.040 §9.2.3.24). One SMS carries 140 octets of user
# data; a header (UDH) takes its octets from those, and 7-bit text after a header starts on a
# septet boundary (fill bits), so a header of H octets costs ceil(8·H / 7) septets:
#
#   gsm7     no header: 140·8/7 = 160 septets.
#            concatenated: UDHL(1) + concat IE(5: IEI, length, ref, total, seq) = 6 octets
#            = 48 bits → 7 septets → 153 per part.
#   gsm7-tr  the Turkish single shift table is announced by the National Language Single Shift
#            IE (IEI 0x24, length 1, language 0x01 = Turkish): 3 octets, in every part.
#            single: UDHL(1) + 3 = 4 octets = 32 bits → 5 septets → 160 - 5 = 155.
#            concatenated: UDHL(1) + 5 + 3 = 9 octets = 72 bits → 11 septets → 160 - 11 = 149.
#   ucs2     UTF-16 code units of 2 octets: 140 / 2 = 70; concatenated (6-octet header)
#            134 / 2 = 67 per part.
#
# A two-septet character (the escape and its code) and a surrogate pair are never split across
# parts: a receiver would decode half of one as garbage, so the parts are packed greedily
# rather than by dividing the total (which undercounts at the boundaries).

# GSM 03.38 / TS 23.038 §6.2.1 default alphabet, in code order 0x00-0x7F; 0x1B (the escape to
# the shift table, never a character of its own) is written as \x1b and excluded below.
_GSM7_DEFAULT_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_BASIC = frozenset(_GSM7_DEFAULT_TABLE) - {"\x1b"}
# §6.2.1.1 default alphabet extension table (reached by the escape: two septets each).
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
# Annex A.2.1, Turkish National Language Single Shift Table: it replaces the extension table
# (and holds all of it) plus Ğ 0x47, İ 0x49, Ş 0x53, ç 0x63, ğ 0x67, ı 0x69, ş 0x73. Ç, Ö, Ü,
# ö, ü are in the default alphabet already. Cross-checked against two implementations of the
# table (Android's GsmAlphabet, smslib's GsmAlphabetExtensionTable).
_GSM7_TURKISH_SHIFT = _GSM7_EXTENSION | frozenset("ĞİŞçğış")

GSM7, GSM7_TR, UCS2 = "gsm7", "gsm7-tr", "ucs2"
# encoding → (units in a single message, units per part of a concatenated one)
_CAPACITY = {GSM7: (160, 153), GSM7_TR: (155, 149), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsLength:
    """What a text costs as an SMS: its encoding, its length in that encoding's units (septets
    for `gsm7` / `gsm7-tr`, UTF-16 code units for `ucs2`) and the segments it is sent in."""

    encoding: str
    units: int
    segments: int


def _costs(text: str, single: frozenset[str], shifted: frozenset[str]) -> list[int] | None:
    """Septets of each character with this pair of tables, None when one is in neither."""
    costs = []
    for ch in text:
        if ch in single:
            costs.append(1)
        elif ch in shifted:
            costs.append(2)
        else:
            return None
    return costs


def _pack(costs: list[int], encoding: str) -> SmsLength:
    single, part = _CAPACITY[encoding]
    units = sum(costs)
    if units <= single:
        return SmsLength(encoding, units, 1)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:  # this character would straddle two parts: it opens the next
            segments, used = segments + 1, 0
        used += cost
    return SmsLength(encoding, units, segments)


def sms_length(text: str) -> SmsLength:
    """The encoding `text` goes in and what it costs: GSM-7 when every character is in the
    default alphabet or its extension table; else GSM-7 with the Turkish single shift table
    when that covers it (ç ğ ı İ ş Ş Ğ cost two septets; the gateway must be asked for the
    Turkish encoding); else UCS-2 (an emoji is two UTF-16 units)."""
    for encoding, shifted in ((GSM7, _GSM7_EXTENSION), (GSM7_TR, _GSM7_TURKISH_SHIFT)):
        costs = _costs(text, _GSM7_BASIC, shifted)
        if costs is not None:
            return _pack(costs, encoding)
    return _pack([2 if ord(ch) > 0xFFFF else 1 for ch in text], UCS2)


def sms_segments(text: str) -> int:
    """How many SMS segments `text` costs (`sms_length`)."""
    return sms_length(text).segments


def template_environment(directory: Path = TEMPLATE_DIR) -> Environment:
    """Plain-text templates: no HTML escaping (an `&` in a unit name stays an `&`)."""
    return Environment(
        loader=FileSystemLoader(str(directory)),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - SMS and e-mail text, never HTML
        keep_trailing_newline=False,
    )


def local_time(moment: datetime | None) -> str | None:
    """`02.12.2026 14:30`, Istanbul time: how a deadline reads in a staff alert."""
    return moment.astimezone(ISTANBUL).strftime("%d.%m.%Y %H:%M") if moment else None


def _tracking(data: dict, extra: dict) -> str:
    code = data.get("tracking_code") or extra.get("tracking_code")
    return display_tracking_code(code) if code else "-"


# Each template's own variables, from its cause's data and what was resolved at send time
# (`extra`: never stored, never logged).
_CONTEXTS: dict[str, Callable[[dict, dict], dict]] = {
    "application_received": lambda data, extra: {"security_code": extra.get("security_code")},
    "application_routed": lambda data, extra: {"unit_name": data["unit_name"],
                                               "institution_name": data["institution_name"]},
    "application_referred": lambda data, extra: {"institution_name": data["institution_name"],
                                                 "contact": dict(data.get("contact") or {})},
    "case_transferred": lambda data, extra: {"unit_name": data.get("unit_name"),
                                             "institution_name": data.get("institution_name")},
    "case_waiting": lambda data, extra: {"reason": data.get("reason")},
    "case_closed": lambda data, extra: {"result": data.get("result"),
                                        "survey": bool(extra.get("survey", True)),
                                        "reopen_days": extra.get("reopen_days")},
    "case_reopened": lambda data, extra: {},
    "case_reopen_refused": lambda data, extra: {"reason": data.get("reason")},
    "delay_notice_due": lambda data, extra: {"hours_open": data["hours_open"]},
    "muhtar_forwarded": lambda data, extra: {"unit_name": data["unit_name"],
                                             "institution_name": data["institution_name"]},
    "muhtar_concluded": lambda data, extra: {"result": data.get("result")},
    "satisfaction_thanks": lambda data, extra: {"score": data["score"]},
    "inbound_rejected": lambda data, extra: {"reason": data["reason"], "channel": data["channel"],
                                             "subject": extra.get("subject")},
    # a staff member's own password reset: the link the console gave at send time (`extra`)
    "staff_password_reset": lambda data, extra: {"reset_link": extra["link"],
                                                 "minutes": extra.get("minutes") or 30,
                                                 "staff": data["staff"],
                                                 "name": extra.get("name") or data["staff"]},
    # staff: the case's public code, unit and deadline, nothing about the citizen
    "case_assigned": lambda data, extra: {
        "unit_name": data.get("unit_name") or data.get("unit") or "-",
        "category_name": data.get("category_name") or data.get("category") or "-",
        "priority": data.get("priority") or "normal",
        "read_due": local_time(extra.get("read_due")), "role": extra.get("role", "primary")},
    "sla_warned": lambda data, extra: {"unit": data.get("unit") or "-",
                                       "deadline": data["deadline"],
                                       "percent_used": data["percent_used"],
                                       "due": local_time(data.get("due_at"))},
    "case_escalated": lambda data, extra: {"unit": data.get("unit") or "-",
                                           "deadline": data.get("deadline"),
                                           "to_level": data["to_level"],
                                           "waited_hours": extra.get("waited_hours")},
}


class Composer:
    """Renders message texts: the templates, and the links they carry. Built once per process.

    `status_link` is the citizen's signed link to their status page (`services.common.links`;
    tracking serves `/t/<token>`, where they see every step, reopen and rate), or the lookup
    page when no link secret is configured. `console_link` opens the case for staff.
    """

    def __init__(self, base_url: str, environment: Environment | None = None,
                 link_secret: str | None = None,
                 overrides: Callable[[], dict[str, str]] | None = None):
        self.base_url = base_url.rstrip("/")
        self.environment = environment or template_environment()
        self.link_secret = link_secret
        # the administrators' texts by file path (`OverrideCache`: read again every few seconds)
        self.overrides = overrides or dict
        self.sandbox = sandboxed_environment()
        self._compiled: dict[str, Template] = {}

    def status_link(self, application_id: str) -> str:
        if not self.link_secret:
            return f"{self.base_url}/takip"
        return f"{self.base_url}/t/{make_link_token(self.link_secret, application_id)}"

    def console_link(self, application_id: str) -> str:
        return f"{self.base_url}/console/cases/{application_id}"

    def context(self, template: str, event: dict, recipient: Recipient) -> dict:
        """The variables of `template` (a variant's name, if any) for `recipient` of `event`."""
        data, extra = event["data"], recipient.extra
        application_id = event["application_id"]
        context = {
            "language": recipient.language, "base_url": self.base_url,
            "application_id": application_id, "tracking_code_display": _tracking(data, extra),
            "status_link": self.status_link(application_id),
            "console_link": self.console_link(application_id),
        }
        if template == "application_merged":
            # the caller is told the original's code, and its page
            context["tracking_code_display"] = display_tracking_code(
                data["original_tracking_code"])
            context["status_link"] = self.status_link(data["original_application_id"])
        if template == "report_ready":
            context.update(kind=data["kind"], period=data["period"], scope=data["scope"],
                           total=data["total"],
                           download_link=f"{self.base_url}/api/v1/reports/files/"
                                         f"{quote(data['file_id'], safe='')}")
        if template == "mayor_digest":
            items = [{"tracking_code_display": _tracking(item, {}),
                      "unit": item.get("unit") or "-",
                      "category_name": item.get("category") or "-",
                      "level": item.get("level", 4), "waited_hours": item.get("waited_hours"),
                      "console_link": self.console_link(item["application_id"])}
                     for item in data["items"]]
            context.update(date=data["date"], count=len(items), items=items,
                           console_link=f"{self.base_url}/console/")
        builder = _CONTEXTS.get(template)
        if builder is not None:
            context.update(builder(data, extra))
        return context

    def render(self, channel: str, template: str, language: str,
               context: dict) -> tuple[str | None, str]:
        """`(subject, text)` of `templates/<channel>/<template>.<language>.j2` (Turkish when
        there is no such language): an SMS is one line with no subject; an e-mail's template
        starts with its subject line, then a blank line, then the body."""
        try:
            found = self.environment.get_template(f"{channel}/{template}.{language}.j2")
        except TemplateNotFound:
            found = self.environment.get_template(f"{channel}/{template}.{LANGUAGE}.j2")
        raw = self._overridden(found.name or "", context)
        if raw is None:
            raw = found.render(context)
        if channel == SMS:
            return None, " ".join(raw.split())
        subject, _, body = raw.strip().partition("\n\n")
        return " ".join(subject.split()), body.strip() + "\n"

    def _overridden(self, path: str, context: dict) -> str | None:
        """The administrators' text for file `path` rendered in the sandbox, or None: no
        override, or one that failed on this context (the file's text goes instead: a citizen
        gets the message either way)."""
        text = self.overrides().get(path)
        if not text:
            return None
        try:
            compiled = self._compiled.get(text)
            if compiled is None:
                if len(self._compiled) > 256:  # old texts of overrides changed since
                    self._compiled.clear()
                compiled = self._compiled[text] = self.sandbox.from_string(text)
            return compiled.render(context)
        except TemplateError as error:
            # the class only: a render error's message may quote the message's values
            log.warning("template override failed; the file's text is used",
                        extra={"template": path, "error": type(error).__name__})
            return None

    def message(self, template: str, event: dict, recipient: Recipient) -> tuple[str | None, str]:
        """`(subject, text)` of the message `template` about `event` for `recipient`."""
        name = recipient.template or template
        return self.render(recipient.channel, name, recipient.language,
                           self.context(name, event, recipient))


def new_message(
    key: str, cause: dict, recipient: Recipient, template: str, *, provider: str, claim: str,
    now: datetime, status: str = SENDING,
) -> dict:
    """The message-log entry claimed before sending: masked destination only, never the text."""
    return {
        "_id": key,
        "application_id": cause["application_id"],
        "cause_event_id": cause["event_id"],
        "cause_type": cause["type"],
        "channel": recipient.channel,
        "template": recipient.template or template,
        "language": recipient.language,
        "audience": "staff" if recipient.staff else "citizen",
        "destination": mask_destination(recipient.channel, recipient.address),
        "provider": provider,
        "status": status,
        "claim": claim,
        "claimed_at": now,
        "attempts": 1 if status == SENDING else 0,
        "retries": 0,
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
         "cause_event_id": cause["event_id"], "error": error,
         "audience": message.get("audience", "citizen")},
        correlation_id=cause["correlation_id"],
        occurred_at=now,
    )
    return fields, event


# -- channels, recipients ---------------------------------------------------------------

EMAIL = "email"
CHANNELS = (SMS, EMAIL)
LANGUAGES = ("tr", "en")
# Event channels whose applicant is answered on that same channel.
ANSWER_ON_SAME_CHANNEL = {"sms": SMS, "email": EMAIL}
# A muhtar's request is answered in the muhtar's words (seed 003).
MUHTAR_VARIANTS = {"application_routed": "muhtar_forwarded", "case_closed": "muhtar_concluded"}


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


def language_of(contact: dict) -> str:
    language = contact.get("language")
    return language if language in LANGUAGES else LANGUAGE


def applicant(cause: dict, contact: dict, template: str) -> Recipient:
    """The applicant of `cause`, from what intake said of them (`{}`: it knows no one)."""
    channel, address = choose_channel(cause, contact)
    variant = MUHTAR_VARIANTS.get(template) if contact.get("caller_type") == "muhtar" else None
    return Recipient(channel, address, contact, language=language_of(contact),
                     citizen_ref=contact.get("citizen_ref"), template=variant)


def staff_recipients(code: str, contact: dict | None, extra: dict | None = None,
                     ) -> list[tuple[str, Recipient]]:
    """`(recipient tag, recipient)` for each channel the directory has for staff member
    `code`: SMS and e-mail both (seed 004); nothing when it has neither."""
    contact = contact or {}
    found = []
    for channel, field_name in ((SMS, "phone"), (EMAIL, "email")):
        if contact.get(field_name):
            found.append((f"{code}:{channel}", Recipient(
                channel, contact[field_name], dict(extra or {}),
                language=language_of(contact), staff=True)))
    return found


def reset_recipient(found: dict | None) -> Recipient:
    """The staff member a password reset e-mail goes to, as the console's RPC answered (None:
    the reset is used, expired or unknown: no address, nothing is sent). The link rides in
    `extra`, which is never stored or logged."""
    found = found or {}
    return Recipient(EMAIL, found.get("email"),
                     {"link": found.get("link"), "minutes": found.get("minutes"),
                      "name": found.get("name")}, staff=True)


def inbound_sender(found: dict) -> Recipient:
    """The sender of a refused inbound message: answered where it came from."""
    return Recipient(found.get("channel") or SMS, found.get("address"),
                     {"subject": found.get("subject")}, language=language_of(found))


# -- when a message may go, and whether --------------------------------------------------

ISTANBUL = ZoneInfo("Europe/Istanbul")
# Answers to what the citizen just did, and the codes: sent at once, whatever the hour.
IMMEDIATE = frozenset({"application_received", "application_merged", "inbound_rejected",
                       "satisfaction_thanks", "one_time_code"})
# What an opt-out does not stop: the codes the citizen needs to follow their application.
CODES = frozenset({"application_received", "application_merged", "one_time_code"})
# After a send failed for a passing reason (every attempt of `SendTiming`): try again after
# these, then give up and record it failed.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360))
# What routing says at once after the application came in: it must not overtake the citizen's
# "received" with the codes. Held this long when the "received" is not out yet, then sent.
AFTER_RECEIVED = frozenset({"application_routed", "application_referred"})
ORDER_HOLD = timedelta(seconds=10)
OPTED_OUT = "opted out"
GAVE_UP = "gave up"


@dataclass(frozen=True)
class QuietHours:
    """The hours in which a citizen's step notices wait (Istanbul time; `NOTIFY_QUIET_HOURS`,
    default 22:00-08:00). A window may cross midnight."""

    start: dt_time = dt_time(22, 0)
    end: dt_time = dt_time(8, 0)

    @classmethod
    def parse(cls, text: str | None) -> QuietHours | None:
        """`"22:00-08:00"` → the window; `""` or `"off"` → None (nothing waits)."""
        if not text or text.strip().lower() in ("off", "none"):
            return None
        try:
            start, end = (dt_time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError as exc:
            raise ValueError(f"NOTIFY_QUIET_HOURS={text!r}: expected HH:MM-HH:MM") from exc
        if start == end:
            raise ValueError(f"NOTIFY_QUIET_HOURS={text!r}: an empty window; use 'off'")
        return cls(start, end)

    def until(self, now: datetime) -> datetime | None:
        """The end of the window `now` falls in (as UTC), or None outside it."""
        local = now.astimezone(ISTANBUL)
        at = local.time()
        crosses_midnight = self.start > self.end
        inside = (at >= self.start or at < self.end) if crosses_midnight \
            else self.start <= at < self.end
        if not inside:
            return None
        day = local.date() + timedelta(days=1) if at >= self.end else local.date()
        return datetime.combine(day, self.end, tzinfo=ISTANBUL).astimezone(UTC)


QUIET_HOURS = QuietHours()


def quiet_until(now: datetime) -> datetime | None:
    """The end of the default quiet hours `now` falls in (08:00 Istanbul, as UTC), or None."""
    return QUIET_HOURS.until(now)


def held_until(template: str, recipient: Recipient, cause: dict, now: datetime,
               quiet: QuietHours | None = QUIET_HOURS) -> datetime | None:
    """When a message that would go `now` may go instead, or None for now.

    The quiet hours hold a citizen's step notices (not staff alerts, not an answer to what
    the citizen just did, not an urgent case's).
    """
    if quiet is None or recipient.staff or template in IMMEDIATE:
        return None
    if (cause.get("data") or {}).get("priority") == "urgent":
        return None
    return quiet.until(now)


def suppressed(template: str, recipient: Recipient, opted_out: bool) -> bool:
    """True when an opt-out stops this message (everything to that citizen but the codes)."""
    return opted_out and not recipient.staff and template not in CODES


def retry_at(retries: int, now: datetime) -> datetime | None:
    """When to try a message again after `retries` earlier retries failed; None: give up."""
    if retries >= len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[retries]


# -- the mayor's office's morning digest ----------------------------------------------------

DIGEST_AT = dt_time(8, 0)  # Istanbul


def digest_day(now: datetime, at: dt_time = DIGEST_AT) -> date | None:
    """The Istanbul day whose morning digest is due by `now` (None before `at` that day)."""
    local = now.astimezone(ISTANBUL)
    return local.date() if local.time() >= at else None


def digest_cause(day: date, institution: str, items: list[dict], now: datetime) -> dict:
    """The cause of one institution's digest of `day`: an envelope like an event's, whose id
    names the day and institution, so that each digest goes once however many notify
    processes make it. Public codes only."""
    event_id = f"digest-{day.isoformat()}-{institution}"
    return {"event_id": event_id, "type": "mayor_digest", "version": 1,
            "occurred_at": now, "producer": "notify", "correlation_id": event_id,
            "application_id": f"digest-{institution}",
            "data": {"date": day.strftime("%d.%m.%Y"), "institution": institution,
                     "items": items}}


# -- administrators' overrides of the templates (issue 13) ----------------------------------
#
# An administrator may replace the text of a template file from the console; the file stays the
# default (and what a delete of the override goes back to). An override is admin input rendered
# for every citizen, so it is compiled and rendered in Jinja's sandbox only, and it may use only
# the variables its file versions are given: anything else would be an error at send time.

# What `Composer.context` gives every template but those rendered on a bare context.
COMMON_VARIABLES = frozenset({"language", "base_url", "application_id", "tracking_code_display",
                              "status_link", "console_link"})
BARE_CONTEXT = frozenset({"one_time_code"})  # rendered with its own variables only
# Source characters an override may have: an SMS template's text is a few segments at most.
OVERRIDE_LIMITS = {SMS: 640, EMAIL: 20000}


@dataclass(frozen=True)
class TemplateFile:
    """One template file: `templates/<channel>/<template>.<language>.j2`; `name` is
    `<template>.<language>`, as the admin API's paths name it."""

    channel: str
    template: str
    language: str

    @property
    def name(self) -> str:
        return f"{self.template}.{self.language}"

    @property
    def path(self) -> str:
        """The loader's name of the file, which keys its override too."""
        return f"{self.channel}/{self.name}.j2"


def template_files(directory: Path = TEMPLATE_DIR) -> list[TemplateFile]:
    """Every template file, by channel, template and language."""
    found = []
    for channel in CHANNELS:
        for path in sorted((directory / channel).glob("*.j2")):
            template, _, language = path.name[:-len(".j2")].rpartition(".")
            if template and language:
                found.append(TemplateFile(channel, template, language))
    return found


def sandboxed_environment() -> SandboxedEnvironment:
    """Where overrides are compiled and rendered: the files' settings, in Jinja's sandbox (no
    attribute of Python's internals is reachable from an administrator's text)."""
    return SandboxedEnvironment(undefined=StrictUndefined,
                                autoescape=False,  # plain text, never HTML
                                keep_trailing_newline=False)


def allowed_variables(environment: Environment, channel: str, template: str) -> frozenset[str]:
    """The variables an override of `template` on `channel` may use: those its file versions
    use (every language), the common ones unless it is rendered bare, Jinja's globals."""
    names: set[str] = set(environment.globals)
    if template not in BARE_CONTEXT:
        names |= COMMON_VARIABLES
    for language in LANGUAGES:
        path = f"{channel}/{template}.{language}.j2"
        try:
            source = environment.loader.get_source(environment, path)[0]  # type: ignore[union-attr]
        except TemplateNotFound:
            continue
        names |= meta.find_undeclared_variables(environment.parse(source))
    return frozenset(names)


def override_problems(text: str, channel: str, allowed: frozenset[str]) -> list[str]:
    """Why `text` cannot replace a template on `channel` (empty: it can): too long, a syntax
    error (with its line), a variable the template is not given, an e-mail without its subject
    line and blank line."""
    limit = OVERRIDE_LIMITS.get(channel, OVERRIDE_LIMITS[EMAIL])
    if len(text) > limit:
        return [f"at most {limit} characters on {channel}, not {len(text)}"]
    sandbox = sandboxed_environment()
    try:
        parsed = sandbox.parse(text)
    except TemplateSyntaxError as error:
        return [f"template syntax error on line {error.lineno}: {error.message}"]
    unknown = sorted(meta.find_undeclared_variables(parsed) - allowed)
    problems = []
    if unknown:
        problems.append(f"unknown variable(s): {', '.join(unknown)}; this template is given "
                        f"{', '.join(sorted(allowed - set(sandbox.globals)))}")
    if channel == EMAIL and "\n\n" not in text.strip():
        problems.append("an e-mail starts with its subject line, then a blank line, then the "
                        "body")
    return problems
