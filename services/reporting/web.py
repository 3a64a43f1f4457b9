"""Reporting's HTTP API: staff reports over applications received in a period."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

from services.common.auth import staff_required
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.reporting.bootstrap import ReportingParts
from services.reporting.schemas import PeriodQuerySchema, SummarySchema

PREFIXES = ("/api/v1/reports",)
REPORT_ROLES = ("coordinator", "director", "deputy_mayor", "mayor", "governor", "admin")


def create_app(parts: ReportingParts) -> Flask:
    """Reporting's Flask app, on the same parts (store, reports) as the process's nameko side."""
    reporting = parts.reports

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
        return reporting.summary(period.get("first"), period.get("last"))

    return create_service_app(
        "reporting", parts.config, [reports],
        title="Açık Kapı — Reporting",
        description="Aggregates built from events: reports by topic, unit, region and time.",
        health_checks=[mongo_check(parts.db)],
    )
