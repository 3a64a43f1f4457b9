"""The event contract of the bus: the envelope and a versioned schema for every event (design §5).

Events are facts in the past tense. Every payload travelling on the bus is an `Envelope`; its
`data` is validated by the schema registered for `(type, version)`. No national ID number, full
name, phone number or e-mail address appears in any schema here: consumers that need a citizen's
destination resolve `citizen_ref` at send time.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema
from ulid import ULID

from services.common.fastload import Loader, Unsure, compile_schema

KINDS = ("complaint", "request", "suggestion", "information", "thanks")
CHANNELS = (
    "desk", "call_centre", "web", "sms", "email", "whatsapp", "social", "field_team",
    "neighbourhood_meeting", "post", "mayor_office", "muhtar", "cimer",
)
PRIORITIES = ("low", "normal", "high", "urgent")
CASE_STATES = (
    "received", "assigned", "acknowledged", "in_progress", "waiting_citizen", "resolved",
    "closed", "referred", "answered", "merged",
)


class LocationRef(Schema):
    """Where an application is about: administrative area only, never a street address."""

    class Meta:
        unknown = EXCLUDE

    province = fields.String(required=True)
    district = fields.String(load_default=None, allow_none=True)
    neighbourhood = fields.String(load_default=None, allow_none=True)


class ApplicationReceived(Schema):
    tracking_code = fields.String(required=True)
    security_digest = fields.String(required=True)  # keyed hash; the code itself never travels
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    category = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    confidential = fields.Boolean(load_default=False)
    caller_type = fields.String(load_default="citizen")
    location = fields.Nested(LocationRef, required=True)
    citizen_ref = fields.String(load_default=None, allow_none=True)  # opaque; intake resolves it
    received_at = fields.AwareDateTime(required=True)
    # Information requests answered at first contact (seed 004): routing closes them "answered".
    answered = fields.Boolean(load_default=False)
    answer = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000))  # the answer; no personal data


class ApplicationMerged(Schema):
    original_application_id = fields.String(required=True)
    original_tracking_code = fields.String(required=True)


class InboundRejected(Schema):
    """A message that came in on a channel that can be answered (SMS, e-mail) and was refused.

    The sender's address stays in intake (`inbound_id`); notify resolves it at send time.
    The envelope's `application_id` is the inbound id: no application exists.
    """

    inbound_id = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    reason = fields.String(required=True, validate=validate.Length(1, 60))  # a code, not text


class Routed(Schema):
    tracking_code = fields.String(required=True)
    category = fields.String(required=True)
    tier = fields.String(required=True)
    institution = fields.String(required=True)
    institution_name = fields.String(required=True)
    unit = fields.String(required=True)
    unit_name = fields.String(required=True)
    rule = fields.String(required=True)  # which rule matched, for staff to see
    category_name = fields.String(load_default=None, allow_none=True)  # for staff alerts
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    read_hours = fields.Float(required=True)
    resolve_hours = fields.Float(required=True)


class Referred(Schema):
    tracking_code = fields.String(required=True)
    category = fields.String(required=True)
    institution = fields.String(required=True)
    institution_name = fields.String(required=True)
    contact = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    rule = fields.String(required=True)


class CaseChanged(Schema):
    """Every case transition: the state it reached, who acted and why."""

    state = fields.String(required=True, validate=validate.OneOf(CASE_STATES))
    unit = fields.String(load_default=None, allow_none=True)
    unit_name = fields.String(load_default=None, allow_none=True)
    by = fields.String(load_default=None, allow_none=True)  # staff code, never a name
    reason = fields.String(load_default=None, allow_none=True)
    result = fields.String(load_default=None, allow_none=True)
    # Optional, added by routing's case work (issue 4); absent in older events.
    tracking_code = fields.String(load_default=None, allow_none=True)  # public, not personal
    institution = fields.String(load_default=None, allow_none=True)  # who holds it afterwards
    institution_name = fields.String(load_default=None, allow_none=True)
    from_unit = fields.String(load_default=None, allow_none=True)  # transfer / return: from where
    photo = fields.String(load_default=None, allow_none=True)  # a reference, never the image


class SlaCaseFields(Schema):
    """What every sla event says about the case: public codes only, never the citizen."""

    tracking_code = fields.String(load_default=None, allow_none=True)
    unit = fields.String(load_default=None, allow_none=True)
    institution = fields.String(load_default=None, allow_none=True)
    category = fields.String(load_default=None, allow_none=True)
    priority = fields.String(load_default=None, allow_none=True)


DEADLINE_KINDS = ("read", "resolve")


class SlaWarned(SlaCaseFields):
    deadline = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    percent_used = fields.Integer(required=True)
    due_at = fields.AwareDateTime(required=True)


class SlaBreached(SlaCaseFields):
    deadline = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    due_at = fields.AwareDateTime(required=True)


class CaseEscalated(SlaCaseFields):
    from_level = fields.Integer(required=True, validate=validate.Range(0, 4))
    to_level = fields.Integer(required=True, validate=validate.Range(0, 4))
    to_role = fields.String(required=True)
    to_staff = fields.String(load_default=None, allow_none=True)  # a staff code, not a name
    deadline = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(DEADLINE_KINDS))


class DelayNoticeDue(Schema):
    hours_open = fields.Integer(required=True)
    tracking_code = fields.String(load_default=None, allow_none=True)


class DeadlinePlanned(SlaCaseFields):
    """When the case's deadlines fall now (working time), for the citizen's page and the staff
    case: sent when they move (routed, moved, paused, resumed, resolved, reopened). None while
    the clock is paused or stopped."""

    resolve_due_at = fields.AwareDateTime(load_default=None, allow_none=True)
    read_due_at = fields.AwareDateTime(load_default=None, allow_none=True)
    clock = fields.String(required=True, validate=validate.OneOf(
        ("running", "paused", "stopped")))


class SlaOutcomeRecorded(SlaCaseFields):
    """A deadline met or missed, for reporting: one per case, deadline and attempt (a reopened
    or rejected case has another attempt; consumers keep the latest by `occurred_at`)."""

    deadline = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    outcome = fields.String(required=True, validate=validate.OneOf(("met", "breached")))
    due_at = fields.AwareDateTime(load_default=None, allow_none=True)  # None: stopped paused
    completed_at = fields.AwareDateTime(required=True)
    hours = fields.Float(required=True)
    used_hours = fields.Float(required=True)  # working hours
    overrun_hours = fields.Float(required=True)
    attempt = fields.Integer(load_default=1)
    level = fields.Integer(load_default=0, validate=validate.Range(0, 4))


class NotificationOutcome(Schema):
    # message_id is notify's message-log id (it exists for failures too), not the provider's.
    channel = fields.String(required=True, validate=validate.OneOf(("sms", "email")))
    template = fields.String(required=True)
    message_id = fields.String(required=True)
    provider = fields.String(required=True)
    cause_event_id = fields.String(required=True)
    error = fields.String(load_default=None, allow_none=True)
    # who was told: the citizen (their timeline shows it) or a staff member (it does not)
    audience = fields.String(load_default="citizen",
                             validate=validate.OneOf(("citizen", "staff")))


class ReopenRequested(Schema):
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


SATISFACTION_SOURCES = ("web", "sms")


class SatisfactionRecorded(Schema):
    """A citizen's 1–5 rating of a result: on the tracking pages / API (`web`) or as an SMS
    reply to the survey (`sms`). `source` was added later: an event without it was `web`."""

    score = fields.Integer(required=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True)
    source = fields.String(load_default="web", validate=validate.OneOf(SATISFACTION_SOURCES))


class ReportGenerated(Schema):
    """A scheduled report file is ready (reporting): notify tells whom it is for. The
    envelope's `application_id` is `report:<file id>`: no application exists."""

    file_id = fields.String(required=True, validate=validate.Length(1, 300))
    kind = fields.String(required=True, validate=validate.OneOf(("weekly", "monthly")))
    period = fields.String(required=True)
    scope_type = fields.String(required=True, validate=validate.OneOf(("unit", "institution")))
    scope = fields.String(required=True)
    total = fields.Integer(required=True)


class StaffPasswordResetRequested(Schema):
    """A staff member asked the console for a password reset link (issue 13): notify e-mails
    it. Neither the address nor the link travels: notify asks the console for both at send
    time (`console.password_reset_message(reset_id)`), and the console answers only while the
    reset is unused and unexpired. The envelope's `application_id` is `reset:<reset id>`: no
    application exists."""

    staff = fields.String(required=True, validate=validate.Length(1, 64))  # the staff code
    reset_id = fields.String(required=True, validate=validate.Length(16, 64))  # opaque


class CategorySaved(Schema):
    """A category an admin created, changed or removed through routing's API: its public
    definition, exactly `Category.to_dict()` (no personal data). The envelope's
    `application_id` is `category:<code>`: no application exists. Consumers keep the latest
    by `occurred_at`."""

    code = fields.String(required=True, validate=validate.Length(1, 80))
    name_tr = fields.String(required=True)
    name_en = fields.String(required=True)
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), required=True)
    tier = fields.String(required=True)  # routing checked it against the catalogue's tiers
    institution = fields.String(load_default=None, allow_none=True)
    read_hours = fields.Float(required=True)
    resolve_hours = fields.Float(required=True)
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    reopen_days = fields.Integer(required=True)
    first_contact = fields.Boolean(load_default=False)
    muhtar = fields.Boolean(load_default=False)
    removed = fields.Boolean(load_default=False)  # deleted: the definition it last had


CASE_EVENTS = (
    "case_acknowledged", "case_started", "case_transferred", "case_returned", "case_waiting",
    "case_resumed", "case_resolved", "case_approved", "case_rejected", "case_closed",
    "case_reopened", "case_reopen_refused",
)

# (type, version) -> (producer, data schema). Adding a version keeps the old one readable.
EVENT_SCHEMAS: dict[tuple[str, int], tuple[str, type[Schema]]] = {
    ("application_received", 1): ("intake", ApplicationReceived),
    ("application_merged", 1): ("intake", ApplicationMerged),
    ("inbound_rejected", 1): ("intake", InboundRejected),
    ("application_routed", 1): ("routing", Routed),
    ("application_referred", 1): ("routing", Referred),
    ("category_saved", 1): ("routing", CategorySaved),
    **{(name, 1): ("routing", CaseChanged) for name in CASE_EVENTS},
    ("sla_warned", 1): ("sla", SlaWarned),
    ("sla_breached", 1): ("sla", SlaBreached),
    ("case_escalated", 1): ("sla", CaseEscalated),
    ("delay_notice_due", 1): ("sla", DelayNoticeDue),
    ("sla_outcome_recorded", 1): ("sla", SlaOutcomeRecorded),
    ("deadline_planned", 1): ("sla", DeadlinePlanned),
    ("notification_sent", 1): ("notify", NotificationOutcome),
    ("notification_failed", 1): ("notify", NotificationOutcome),
    ("reopen_requested", 1): ("tracking", ReopenRequested),
    ("satisfaction_recorded", 1): ("tracking", SatisfactionRecorded),
    ("report_generated", 1): ("reporting", ReportGenerated),
    ("staff_password_reset_requested", 1): ("console", StaffPasswordResetRequested),
}
LATEST_VERSION = {
    etype: max(v for t, v in EVENT_SCHEMAS if t == etype) for etype, _ in EVENT_SCHEMAS
}


_SCHEMA_INSTANCES: dict[tuple[str, int], Schema] = {}


def _data_schema(key: tuple[str, int]) -> Schema:
    """One instance per (type, version): schemas are stateless, building one costs more than
    using it (measured: half of `make_event`)."""
    schema = _SCHEMA_INSTANCES.get(key)
    if schema is None:
        schema = _SCHEMA_INSTANCES[key] = EVENT_SCHEMAS[key][1]()
    return schema


_PLAIN_LOADERS: dict[tuple[str, int], Loader | None] = {}


def _plain_loader(key: tuple[str, int]) -> Loader | None:
    """The compiled loader of a data schema (`services.common.fastload`), None if it has none."""
    if key not in _PLAIN_LOADERS:
        _PLAIN_LOADERS[key] = compile_schema(_data_schema(key))
    return _PLAIN_LOADERS[key]


def producer_of(event_type: str) -> str:
    """The service that owns (publishes) `event_type`."""
    return EVENT_SCHEMAS[(event_type, LATEST_VERSION[event_type])][0]


class EnvelopeSchema(Schema):
    """The envelope every event travels in (its `data` is loaded by `load_event`)."""

    class Meta:
        unknown = RAISE

    event_id = fields.String(required=True, validate=validate.Length(equal=26))
    type = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True)
    producer = fields.String(required=True)
    correlation_id = fields.String(required=True)
    application_id = fields.String(required=True)
    data = fields.Dict(required=True)

    @validates_schema
    def _known_type(self, envelope: dict, **_: Any) -> None:
        # `data` itself is loaded once, by load_event, against the schema of this type.
        key = (envelope["type"], envelope["version"])
        if key not in EVENT_SCHEMAS:
            raise ValidationError(f"unknown event {key[0]} v{key[1]}", "type")
        producer, _ = EVENT_SCHEMAS[key]
        if envelope["producer"] != producer:
            raise ValidationError(f"{key[0]} is produced by {producer}", "producer")


_envelope = EnvelopeSchema()
# its fields alone: `_load_plain` checks the type and producer as `_known_type` does
_plain_envelope = compile_schema(_envelope, hooks=False)


def new_event_id() -> str:
    """A ULID: unique, sortable by time."""
    return str(ULID())


def utcnow() -> datetime:
    """Now, timezone-aware UTC, in whole milliseconds: the only clock events are stamped with.

    MongoDB keeps milliseconds; stamping at that precision means a time read back from the
    store compares equal to the one in the event ("latest wins" rules depend on it).
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def make_event(
    event_type: str,
    application_id: str,
    data: dict,
    *,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict:
    """Build and validate an envelope; returns the JSON-ready dict that goes on the bus."""
    version = LATEST_VERSION[event_type]
    producer, _ = EVENT_SCHEMAS[(event_type, version)]
    schema = _data_schema((event_type, version))
    # Loading the dumped data refuses what a consumer would refuse to read (and applies the
    # defaults); the envelope around it is built right here, so it needs no second check.
    dumped = schema.dump(data)
    loaded = schema.load(dumped)
    data = schema.dump(loaded) if _adds_keys(loaded, dumped) else dumped
    return {
        "event_id": new_event_id(),
        "type": event_type,
        "version": version,
        "occurred_at": (occurred_at or utcnow()).isoformat(),
        "producer": producer,
        "correlation_id": correlation_id or application_id,
        "application_id": application_id,
        "data": data,
    }


def _adds_keys(loaded: dict, dumped: dict) -> bool:
    """Whether loading filled in defaults `dumped` lacks (else dumping again changes nothing)."""
    for key, value in loaded.items():
        if key not in dumped:
            return True
        if type(value) is dict and type(dumped[key]) is dict and _adds_keys(value, dumped[key]):
            return True
    return False


def load_event(payload: Any) -> dict:
    """Validate a received envelope; returns it with `data` loaded (datetimes parsed).

    Raises `ValidationError` for anything that is not a well-formed known event.
    """
    if not isinstance(payload, dict):
        raise ValidationError("an event must be a JSON object")
    try:
        return _load_plain(payload)
    except Unsure:
        pass  # marshmallow loads it, or says what is wrong with it
    envelope = _envelope.load(payload)
    try:
        envelope["data"] = _data_schema((envelope["type"], envelope["version"])).load(
            envelope["data"])
    except ValidationError as exc:
        raise ValidationError({"data": exc.messages}) from None
    return envelope


def _load_plain(payload: dict) -> dict:
    """`load_event` of a plain envelope by the compiled loaders (a fifth of the CPU): exactly
    what marshmallow gives, or `Unsure`."""
    if _plain_envelope is None:
        raise Unsure
    envelope = _plain_envelope(payload)
    key = (envelope["type"], envelope["version"])
    known = EVENT_SCHEMAS.get(key)
    loader = _plain_loader(key) if known is not None else None
    if loader is None or known[0] != envelope["producer"]:
        raise Unsure
    envelope["data"] = loader(envelope["data"])
    return envelope
