"""Reporting's HTTP API: staff reports over applications received in a period."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

from services.common.auth import staff_required
from services.common.events import utcnow
from services.common.mongo import get_database
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.reporting import domain
from services.reporting.schemas import PeriodQuerySchema, SummarySchema
from services.reporting.store import ReportingStore

PREFIXES = ("/api/v1/reports",)
REPORT_ROLES = ("coordinator", "director", "deputy_mayor", "mayor", "governor", "admin")


def create_app(config: dict) -> Flask:
    """Reporting's Flask app, sharing the service's database."""
    store = ReportingStore(get_database(config, "reporting"))
    store.ensure_indexes()
    tz_name = config.get("REPORT_TIMEZONE") or domain.DEFAULT_TIMEZONE
    tz = domain.report_timezone(tz_name)

    reports = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                        description="Raporlar / reports")

    @reports.route("/summary", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    # Above `arguments`: who is asking is checked before what is asked.
    @staff_required(*REPORT_ROLES)
    @reports.arguments(PeriodQuerySchema, location="query")
    @reports.response(200, SummarySchema)
    @reports.alt_response(401, description="no valid staff token")
    @reports.alt_response(403, description="the role may not read reports")
    @reports.alt_response(422, description="a date is wrong; `errors` names it")
    def summary(period: dict):
        """Applications received in a period, counted by topic, channel, region, unit, status.

        `from` and `to` are inclusive dates in the report timezone (default: the last 30 days).
        `by_unit` counts routed applications only; `by_status` is their current status.
        """
        first, last = domain.resolve_period(period.get("first"), period.get("last"),
                                            today=utcnow().astimezone(tz).date())
        start, end = domain.period_bounds(first, last, tz)
        counts = store.received_counts(start, end)
        return {
            "first": first,
            "last": last,
            "timezone": tz_name,
            "total": counts["total"],
            **{name: domain.ranked(counts[name])
               for name in ("by_category", "by_channel", "by_district", "by_unit", "by_status")},
        }

    return create_service_app(
        "reporting", config, [reports],
        title="Açık Kapı — Reporting",
        description="Aggregates built from events: reports by topic, unit, region and time.",
        health_checks=[mongo_check(store.db)],
    )
