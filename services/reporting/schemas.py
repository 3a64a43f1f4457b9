"""Reporting's HTTP contracts: report periods and the summary answer."""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

MAX_PERIOD_DAYS = 5 * 366  # a bound on the work one request may ask for


class PeriodQuerySchema(Schema):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD`, both inclusive, in the report timezone."""

    class Meta:
        unknown = EXCLUDE

    # `from` is a Python keyword: the attribute is `first`, the query parameter `from`.
    first = fields.Date(
        data_key="from", load_default=None,
        metadata={"description": "first day (ISO date); default: the 30 days ending at `to`"},
    )
    last = fields.Date(data_key="to", load_default=None,
                       metadata={"description": "last day (ISO date), inclusive; default: today"})

    @validates_schema
    def _ordered(self, period: dict, **_: Any) -> None:
        first, last = period.get("first"), period.get("last")
        if first and last and last < first:
            raise ValidationError("`to` önce gelemez / `to` is before `from`.", "to")
        if span_days(period) >= MAX_PERIOD_DAYS:
            raise ValidationError(f"en çok {MAX_PERIOD_DAYS} gün / at most "
                                  f"{MAX_PERIOD_DAYS} days", "to" if last else "from")


def span_days(period: dict) -> int:
    """The days a period covers, less one, as `domain.resolve_period` will fill it in: a `from`
    alone runs to today (so `from=0001-01-01` is 740,000 days, not an open question); without
    `from` the default period is short. Today is the server's date: a day off at midnight in
    the report timezone does not matter to a bound."""
    first, last = period.get("first"), period.get("last")
    if first is None:
        return 0
    return ((last or max(date.today(), first)) - first).days


class ReportQuerySchema(PeriodQuerySchema):
    """The period, and filters within the caller's scope."""

    category = fields.String(load_default=None, validate=validate.Length(1, 80))
    district = fields.String(load_default=None, validate=validate.Length(1, 80))
    institution = fields.String(load_default=None, validate=validate.Length(1, 120))
    unit = fields.String(load_default=None, validate=validate.Length(1, 120))


MAX_DAILY_POINTS = 366  # a year of days in one chart; longer periods by week or month


class SeriesQuerySchema(ReportQuerySchema):
    granularity = fields.String(load_default="day",
                                validate=validate.OneOf(("day", "week", "month")))

    @validates_schema
    def _daily_points(self, data: dict, **_: object) -> None:
        # each day is its own set of reads: five years by day cost 3 s a request
        if data.get("granularity") == "day" and span_days(data) >= MAX_DAILY_POINTS:
            raise ValidationError(f"günlük en çok {MAX_DAILY_POINTS} gün; daha uzun dönem için "
                                  f"week ya da month / a daily series covers at most "
                                  f"{MAX_DAILY_POINTS} days: ask by week or month",
                                  "granularity")


class SeriesRowSchema(Schema):
    period = fields.String(required=True)  # 2026-12-02, 2026-W49 or 2026-12
    received = fields.Integer(required=True)
    concluded = fields.Integer(required=True)
    resolution_hours_median = fields.Integer(allow_none=True)  # whole hours, rounded up
    resolution_hours_p90 = fields.Integer(allow_none=True)


class SeriesSchema(Schema):
    """Received against concluded over time, and how long concluding took."""

    first = fields.Date(data_key="from", required=True)
    last = fields.Date(data_key="to", required=True)
    timezone = fields.String(required=True)
    granularity = fields.String(required=True)
    items = fields.List(fields.Nested(SeriesRowSchema), required=True)


class ExportQuerySchema(ReportQuerySchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "xlsx", "pdf")))


class FileQuerySchema(Schema):
    """A generated report's format: the workbook, or the printable PDF."""

    format = fields.String(load_default="xlsx", validate=validate.OneOf(("xlsx", "pdf")))


class CountSchema(Schema):
    key = fields.String(allow_none=True)  # None: the application did not say (e.g. no district)
    count = fields.Integer(required=True)


class UnitCountSchema(CountSchema):
    name = fields.String(allow_none=True)


class SlaRowSchema(Schema):
    """Read and resolve deadlines met and breached, and the share met, for one unit or topic."""

    key = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    read_met = fields.Integer()
    read_breached = fields.Integer()
    read_compliance = fields.Float(allow_none=True)
    resolve_met = fields.Integer()
    resolve_breached = fields.Integer()
    resolve_compliance = fields.Float(allow_none=True)


class SummarySchema(Schema):
    """Applications received in a period, counted by topic, channel, region, unit, status, the
    escalation level reached, the SLA outcomes and the citizen's rating."""

    first = fields.Date(data_key="from", required=True)
    last = fields.Date(data_key="to", required=True)
    timezone = fields.String(required=True)
    total = fields.Integer(required=True)
    by_category = fields.List(fields.Nested(CountSchema), required=True)
    by_channel = fields.List(fields.Nested(CountSchema), required=True)
    by_district = fields.List(fields.Nested(CountSchema), required=True)
    by_unit = fields.List(fields.Nested(UnitCountSchema), required=True)
    by_status = fields.List(fields.Nested(CountSchema), required=True)
    by_neighbourhood = fields.List(fields.Nested(CountSchema), required=True)
    by_level = fields.List(fields.Nested(CountSchema), required=True,
                           metadata={"description": "highest escalation level reached, 0-4"})
    by_satisfaction = fields.List(fields.Nested(CountSchema), required=True,
                                  metadata={"description": "the citizen's 1-5 rating"})
    by_read_sla = fields.List(fields.Nested(CountSchema), required=True,
                              metadata={"description": "read deadline: met / breached"})
    by_resolve_sla = fields.List(fields.Nested(CountSchema), required=True,
                                 metadata={"description": "resolve deadline: met / breached"})
    by_reopen_count = fields.List(fields.Nested(CountSchema), required=True,
                                  metadata={"description": "times reopened (the reopen rate)"})
    by_caller_type = fields.List(fields.Nested(CountSchema), required=True,
                                 metadata={"description": "citizen, muhtar (seed 003), …"})
    by_tier = fields.List(fields.Nested(CountSchema), required=True,
                          metadata={"description": "routing tier; outside: referred"})
    by_kind = fields.List(fields.Nested(CountSchema), required=True,
                          metadata={"description": "complaint, request, suggestion, information"})
    open = fields.Integer(required=True, metadata={"description": "of those, still open"})
    overdue = fields.Integer(required=True,
                             metadata={"description": "open, past the resolve deadline"})
    referred = fields.Integer(required=True,
                              metadata={"description": "referred to an outside institution"})
    escalated = fields.Integer(required=True, metadata={"description": "escalated at least once"})
    satisfaction_average = fields.Float(allow_none=True)
    concluded = fields.Integer(required=True, metadata={
        "description": "applications first concluded in the period (whenever received)"})
    resolution_hours_median = fields.Integer(allow_none=True, metadata={
        "description": "of those concluded, hours from receipt (whole hours, rounded up)"})
    resolution_hours_p90 = fields.Integer(allow_none=True)
    sla_by_unit = fields.List(fields.Nested(SlaRowSchema), required=True)
    sla_by_category = fields.List(fields.Nested(SlaRowSchema), required=True)


class BacklogSchema(Schema):
    """What is open now within the filters and the caller's scope, by age in days since
    receipt, and how much of it is overdue."""

    open = fields.Integer()
    overdue = fields.Integer()
    by_age = fields.List(fields.Nested(CountSchema))


_WEEK_FORM = re.compile(r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])")
WEEK_FORM_ERROR = "YYYY-Www, e.g. 2026-W49"
WEEK_YEARS = (2000, 2999)  # the service's lifetime, with room: year 0 or 9999 is a typo


def _week_exists(value: str) -> None:
    """A week of the calendar (2025 has no week 53, and the week before `0001-W01` is outside
    every calendar): both were a 500 once, now a 422 naming `week`."""
    if not _WEEK_FORM.fullmatch(value):
        if value.endswith("\n"):  # the pattern's `$` lets one trailing newline past it
            raise ValidationError(WEEK_FORM_ERROR)
        return  # marshmallow runs every validator: the pattern's own error says it
    year, number = int(value[:4]), int(value[6:])
    if not WEEK_YEARS[0] <= year <= WEEK_YEARS[1]:
        raise ValidationError(f"year {WEEK_YEARS[0]}–{WEEK_YEARS[1]}, e.g. 2026-W49")
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError as exc:
        raise ValidationError(f"{year} has no week {number}") from exc


# the form first (documented as the pattern in OpenAPI), then the calendar
WEEK = [validate.Regexp(rf"^{_WEEK_FORM.pattern}$", error=WEEK_FORM_ERROR), _week_exists]


class CallbackQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    week = fields.String(load_default=None, validate=WEEK,
                         metadata={"description": "ISO week (default: this week)"})


class ContactSchema(Schema):
    """The citizen's name and contact, asked from intake at read time (audited there)."""

    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class CallbackSchema(Schema):
    application_id = fields.String(required=True)
    tracking_code = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    unit_name = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    concluded_at = fields.AwareDateTime(allow_none=True)
    satisfaction = fields.Integer(allow_none=True)
    contact = fields.Nested(ContactSchema, allow_none=True)
    note = fields.String(allow_none=True)
    reached = fields.Boolean(allow_none=True)
    noted_by = fields.String(allow_none=True)
    noted_at = fields.AwareDateTime(allow_none=True)


class CallbackListSchema(Schema):
    """The mayor's weekly call-back list (seed 004)."""

    week = fields.String(required=True)
    concluded_from = fields.Date(required=True)
    concluded_to = fields.Date(required=True)
    candidates = fields.Integer(required=True)
    items = fields.List(fields.Nested(CallbackSchema), required=True)


class CallbackNoteSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    note = fields.String(load_default=None, validate=validate.Length(max=2000))
    reached = fields.Boolean(required=True)


class ReportFileSchema(Schema):
    """A generated report, listed for download (`GET /api/v1/reports/files/<id>`)."""

    id = fields.String(attribute="_id", required=True)
    kind = fields.String(required=True)  # weekly | monthly
    period = fields.String(required=True)  # 2026-W48 | 2026-11
    scope_type = fields.String(required=True)  # unit | institution
    scope = fields.String(required=True)
    total = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)


class ReportFileListSchema(Schema):
    items = fields.List(fields.Nested(ReportFileSchema), required=True)
