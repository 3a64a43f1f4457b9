"""SLA's HTTP contracts: timer sets and the overdue list."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from services.sla.domain import TIMER_KINDS

OVERDUE_LIMIT_MAX = 500


class TimerSchema(Schema):
    kind = fields.String(validate=validate.OneOf(TIMER_KINDS))
    due_at = fields.AwareDateTime()
    fired_at = fields.AwareDateTime(allow_none=True)


class TimerSetSchema(Schema):
    """One case's deadlines and escalation level."""

    application_id = fields.String()
    tracking_code = fields.String()
    institution = fields.String()
    unit = fields.String()
    category = fields.String()
    priority = fields.String()
    level = fields.Integer()
    state = fields.String()
    started_at = fields.AwareDateTime()
    routed_at = fields.AwareDateTime()
    read_hours = fields.Float()
    resolve_hours = fields.Float()
    next_due_at = fields.AwareDateTime(allow_none=True)
    timers = fields.List(fields.Nested(TimerSchema))


class OverdueQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    unit = fields.String(load_default=None, validate=validate.Length(1, 120))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, OVERDUE_LIMIT_MAX))


class OverdueListSchema(Schema):
    as_of = fields.AwareDateTime()
    count = fields.Integer()
    items = fields.List(fields.Nested(TimerSetSchema))
