"""SLA's HTTP contracts: a case's clock, the staff lists, policy rules and calendars."""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates

from services.common.events import PRIORITIES
from services.sla.policy import CALENDARS, MAX_LEVEL, ON_REOPEN, ON_TRANSFER

LIST_LIMIT_MAX = 500
CODE = validate.Regexp(r"^[a-z0-9_.:-]{1,120}$", error="letters, digits and _ . : - only")
HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="must be HH:MM")


class LedgerSchema(Schema):
    hours = fields.Float()
    spent = fields.Float(metadata={"description": "working seconds used in earlier stretches"})
    since = fields.AwareDateTime(allow_none=True)
    done_at = fields.AwareDateTime(allow_none=True)


class StepSchema(Schema):
    from_level = fields.Integer()
    to_level = fields.Integer()
    to_role = fields.String()
    to_staff = fields.String(allow_none=True)
    deadline = fields.String()
    at = fields.AwareDateTime()
    waited_hours = fields.Float()


class OutcomeSchema(Schema):
    deadline = fields.String()
    outcome = fields.String()
    due_at = fields.AwareDateTime(allow_none=True)
    completed_at = fields.AwareDateTime()
    hours = fields.Float()
    used_hours = fields.Float()
    overrun_hours = fields.Float()
    attempt = fields.Integer()
    level = fields.Integer()


class ClockSchema(Schema):
    """One case's clock: when each deadline falls, how much is used, how high it climbed."""

    application_id = fields.String()
    tracking_code = fields.String()
    institution = fields.String()
    institutions = fields.List(fields.String(), metadata={
        "description": "the institution and those above it (who may see the case)"})
    unit = fields.String()
    category = fields.String()
    priority = fields.String()
    case_state = fields.String()
    clock = fields.String(metadata={"description": "running, paused (waiting for the citizen) "
                                                   "or stopped"})
    level = fields.Integer()
    started_at = fields.AwareDateTime()
    read_due_at = fields.AwareDateTime(allow_none=True)
    resolve_due_at = fields.AwareDateTime(allow_none=True)
    next_due_at = fields.AwareDateTime(allow_none=True)
    notice_due_at = fields.AwareDateTime(allow_none=True)
    notice_sent_at = fields.AwareDateTime(allow_none=True)
    read_percent_used = fields.Float()
    resolve_percent_used = fields.Float()
    read = fields.Nested(LedgerSchema)
    resolve = fields.Nested(LedgerSchema)
    policy = fields.Dict()
    calendar = fields.Dict()
    escalations = fields.List(fields.Nested(StepSchema))
    outcomes = fields.Dict(keys=fields.String(), values=fields.Nested(OutcomeSchema))
    attempt = fields.Integer()


class ListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    unit = fields.String(load_default=None, validate=CODE)
    institution = fields.String(load_default=None, validate=CODE)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, LIST_LIMIT_MAX))


class ClockListSchema(Schema):
    as_of = fields.AwareDateTime()
    count = fields.Integer()
    items = fields.List(fields.Nested(ClockSchema))


class ScopeSchema(Schema):
    class Meta:
        unknown = RAISE

    category = fields.String(load_default=None, allow_none=True, validate=CODE)
    priority = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(PRIORITIES))
    institution = fields.String(load_default=None, allow_none=True, validate=CODE)


class SettingsSchema(Schema):
    """The settings a rule overrides; what it leaves out comes from less specific rules."""

    class Meta:
        unknown = RAISE

    read_hours = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=8784))
    resolve_hours = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=8784))
    warn_at = fields.List(fields.Integer(validate=validate.Range(1, 99)),
                          validate=validate.Length(max=5))
    delay_notice_hours = fields.Float(
        validate=validate.Range(min=0, min_inclusive=False, max=8784))
    ladder_hours = fields.List(fields.Float(validate=validate.Range(min=0, max=8784)),
                               validate=validate.Length(equal=MAX_LEVEL))
    unread_to_mayor = fields.Boolean()
    calendar = fields.String(validate=validate.OneOf(CALENDARS))
    on_transfer = fields.String(validate=validate.OneOf(ON_TRANSFER))
    on_reopen = fields.String(validate=validate.OneOf(ON_REOPEN))

    @validates("warn_at")
    def _ascending(self, value: list[int], **_: object) -> None:
        if value != sorted(set(value)):
            raise ValidationError("ascending percentages without repeats")


class RuleSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(dump_only=True, attribute="_id")
    scope = fields.Nested(ScopeSchema, load_default=dict)
    settings = fields.Nested(SettingsSchema, required=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class RuleListSchema(Schema):
    items = fields.List(fields.Nested(RuleSchema))


class EffectiveQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    category = fields.String(required=True, validate=CODE)
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    institution = fields.String(required=True, validate=CODE)
    unit = fields.String(load_default=None, validate=CODE)
    read_hours = fields.Float(load_default=8, validate=validate.Range(min=0, min_inclusive=False,
                                                                      max=8784))
    resolve_hours = fields.Float(load_default=72, validate=validate.Range(
        min=0, min_inclusive=False, max=8784))


class EffectiveSchema(Schema):
    policy = fields.Dict()
    calendar = fields.Dict()


class CalendarSchema(Schema):
    """Working hours of an institution or a unit (its code is the path's `owner`)."""

    class Meta:
        unknown = RAISE

    owner = fields.String(dump_only=True)
    opens = fields.String(load_default="08:30", validate=HHMM)
    closes = fields.String(load_default="17:30", validate=HHMM)
    lunch = fields.List(fields.String(validate=HHMM), load_default=None, allow_none=True,
                        validate=validate.Length(equal=2))
    weekdays = fields.List(fields.Integer(validate=validate.Range(0, 6)),
                           load_default=lambda: [0, 1, 2, 3, 4],
                           validate=validate.Length(min=1, max=7))
    timezone = fields.String(load_default="Europe/Istanbul",
                             validate=validate.OneOf(("Europe/Istanbul",)))
    holidays = fields.Boolean(load_default=True)
    round_the_clock = fields.Boolean(load_default=False)


class CalendarListSchema(Schema):
    items = fields.List(fields.Nested(CalendarSchema))
