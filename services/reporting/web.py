"""Reporting's HTTP API: staff reports over applications received in a period, scoped by the
staff token (`domain.report_scope`), as JSON and as CSV / XLSX files."""
from __future__ import annotations

from flask import Flask, Response, g
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.reporting import domain, exports
from services.reporting.bootstrap import ReportingParts
from services.reporting.schemas import (
    ExportQuerySchema,
    ReportQuerySchema,
    SeriesQuerySchema,
    SeriesSchema,
    SummarySchema,
)

PREFIXES = ("/api/v1/reports",)


def create_app(parts: ReportingParts) -> Flask:
    """Reporting's Flask app, on the same parts (store, reports) as the process's nameko side."""
    reporting = parts.reports

    reports = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                        description="Raporlar / reports")

    def scoped(args: dict) -> dict:
        """The caller's filter, or a 403 naming what is outside their scope (a 503 when the
        directory cannot say which institutions are under theirs)."""
        staff = g.staff
        try:
            return domain.report_scope(staff.role, staff.unit, staff.institution, args,
                                       parts.family)
        except domain.OutOfScope as refused:
            abort(403, message=refused.message,
                  errors={"query": {refused.field: [refused.message]}})
        except Exception:
            abort(503, message="the directory is unavailable; try again shortly",
                  errors={"query": {"institution": ["directory unavailable"]}})
        raise AssertionError("unreachable")

    @reports.route("/summary", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    # Above `arguments`: who is asking is checked before what is asked.
    @staff_required(*domain.REPORT_ROLES)
    @reports.arguments(ReportQuerySchema, location="query")
    @reports.response(200, SummarySchema)
    @reports.alt_response(401, description="no valid staff token")
    @reports.alt_response(403, description="the role may not read reports")
    @reports.alt_response(422, description="a date is wrong; `errors` names it")
    def summary(args: dict):
        """Applications received in a period, counted by topic, channel, region, unit, status.

        `from` and `to` are inclusive dates in the report timezone (default: the last 30 days).
        `by_unit` counts routed applications only; `by_status` is their current status.
        Filters (`category`, `district`, `institution`, `unit`) apply within the caller's
        scope: a unit role sees its unit, an institution role its institution and those under
        it, the coordination centre everything; asking outside that is a 403.
        """
        return reporting.summary(args.get("first"), args.get("last"), scoped(args))

    @reports.route("/series", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.REPORT_ROLES)
    @reports.arguments(SeriesQuerySchema, location="query")
    @reports.response(200, SeriesSchema)
    @reports.alt_response(403, description="a filter is outside the caller's scope")
    @reports.alt_response(422, description="a parameter is wrong; `errors` names it")
    def series(args: dict):
        """Received against concluded per `day`, ISO `week` or `month` (local time), with the
        resolution time's median and p90 in hours; the same filters and scope as the summary.
        """
        return reporting.series(args.get("first"), args.get("last"), args["granularity"],
                                scoped(args))

    @reports.route("/summary/export", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.REPORT_ROLES)
    @reports.arguments(ExportQuerySchema, location="query")
    @reports.alt_response(200, description="the summary as CSV or XLSX")
    @reports.alt_response(403, description="a filter is outside the caller's scope")
    @reports.alt_response(422, description="a parameter is wrong; `errors` names it")
    def export(args: dict):
        """The summary as a file: `format=csv` (UTF-8, for Excel too) or `format=xlsx`, with
        the same period, filters and scope as the JSON summary."""
        summary = reporting.summary(args.get("first"), args.get("last"), scoped(args))
        fmt = args["format"]
        name = f"ozet-{summary['first'].isoformat()}-{summary['last'].isoformat()}.{fmt}"
        return Response(exports.render(summary, fmt), mimetype=exports.FORMATS[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return create_service_app(
        "reporting", parts.config, [reports],
        title="Açık Kapı — Reporting",
        description="Aggregates built from events: reports by topic, unit, region and time.",
        health_checks=[mongo_check(parts.db)],
    )
