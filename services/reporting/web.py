"""Reporting's HTTP API: staff reports over applications received in a period, scoped by the
staff token (`domain.report_scope`), as JSON and as CSV / XLSX files; the dashboard page
(`pages`) and the business gauges at `/metrics`."""
from __future__ import annotations

from flask import Flask, Response, g
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError

from services.common import metrics
from services.common.audit import audit_blueprint
from services.common.auth import staff_required
from services.common.events import utcnow
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.reporting import domain, exports, pages
from services.reporting.bootstrap import ReportingParts
from services.reporting.schemas import (
    BacklogSchema,
    CallbackListSchema,
    CallbackNoteSchema,
    CallbackQuerySchema,
    CallbackSchema,
    ExportQuerySchema,
    FileQuerySchema,
    ReportFileListSchema,
    ReportQuerySchema,
    SeriesQuerySchema,
    SeriesSchema,
    SummarySchema,
)

PREFIXES = ("/api/v1/reports", "/raporlar")


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

    @reports.route("/backlog", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.REPORT_ROLES)
    @reports.arguments(ReportQuerySchema, location="query")
    @reports.response(200, BacklogSchema)
    @reports.alt_response(403, description="a filter is outside the caller's scope")
    def backlog(args: dict):
        """What is open now in the caller's scope, by age band (days since received), and how
        much of it is past its resolve deadline. The period is ignored: it is now."""
        return reporting.backlog(scoped(args))

    def contact_of(application_id: str) -> dict | None:
        """The citizen's contact from intake, for the caller (audited by intake); None when
        intake cannot say now (the list still shows the case)."""
        try:
            return parts.rpc.call("intake", "get_callback_contact", application_id,
                                  g.staff.user, g.staff.role)
        except Exception:
            return None

    @reports.route("/callbacks", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.CALLBACK_ROLES)
    @reports.arguments(CallbackQuerySchema, location="query")
    @reports.response(200, CallbackListSchema)
    @reports.alt_response(403, description="only the mayor's office and the coordination centre")
    @reports.alt_response(422, description="a parameter is wrong; `errors` names it")
    def callbacks(args: dict):
        """The week's call-back list (seed 004): 4 applications first concluded the week
        before, drawn reproducibly (seeded by the week) across the caller's units, with the
        citizen's contact read from intake now. Every read is audited, here and in intake."""
        answer = reporting.callbacks(args.get("week"), scoped({}), contact_of)
        parts.store.audit({"at": utcnow(), "staff": g.staff.user, "role": g.staff.role,
                           "action": "callbacks.read", "week": answer["week"],
                           "applications": [item["application_id"] for item in answer["items"]]})
        return answer

    @reports.route("/callbacks/<string:week>/<string(maxlength=64):application_id>",
                   methods=["PUT"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.CALLBACK_ROLES)
    @reports.arguments(CallbackNoteSchema)
    @reports.response(200, CallbackSchema)
    @reports.alt_response(404, description="not on that week's list")
    @reports.alt_response(422, description="a field is wrong; `errors` names it")
    def note_callback(payload: dict, week: str, application_id: str):
        """Record how the call went (reached or not, and a note); it goes back to the desk
        with the list."""
        errors = {}
        try:
            CallbackQuerySchema().load({"week": week})
        except ValidationError as exc:
            errors = exc.messages
        if errors:
            abort(422, message="the week is wrong", errors={"path": errors})
        listed = reporting.callbacks(week, scoped({}), lambda _: None)
        if application_id not in {item["application_id"] for item in listed["items"]}:
            abort(404, message="not on that week's call-back list",
                  errors={"path": {"application_id": ["not on the list"]}})
        return reporting.note_callback(week, application_id, payload.get("note"),
                                       payload["reached"], g.staff.user)

    @reports.route("/files", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.REPORT_ROLES)
    @reports.response(200, ReportFileListSchema)
    def files():
        """The weekly and monthly reports generated for the caller's scope, newest first: a
        unit's own, an institution's and its units', or (the coordination centre) all."""
        return {"items": parts.store.list_files(scoped({}))}

    @reports.route("/files/<string(maxlength=300):file_id>", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.REPORT_ROLES)
    @reports.arguments(FileQuerySchema, location="query")
    @reports.alt_response(200, description="the report as XLSX (charts included) or PDF")
    @reports.alt_response(404, description="no such report in the caller's scope")
    @reports.alt_response(422, description="an unknown format; `errors` names it")
    def download(args: dict, file_id: str):
        """One generated report: `format=xlsx` (default) or `format=pdf`."""
        found = parts.store.get_file(file_id, scoped({}))
        fmt = args["format"]
        content = found and found.get("content" if fmt == "xlsx" else "pdf")
        if content is None:  # older files were generated without a PDF
            abort(404, message="no such report", errors={"path": {"file_id": ["unknown"]}})
        name = f"{file_id.replace('|', '-')}.{fmt}"
        return Response(bytes(content), mimetype=exports.FORMATS[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @reports.route("/summary/export", methods=["GET"])
    @reports.doc(security=[{"staffToken": []}])
    @staff_required(*domain.REPORT_ROLES)
    @reports.arguments(ExportQuerySchema, location="query")
    @reports.alt_response(200, description="the summary as CSV, XLSX or PDF")
    @reports.alt_response(403, description="a filter is outside the caller's scope")
    @reports.alt_response(422, description="a parameter is wrong; `errors` names it")
    def export(args: dict):
        """The summary as a file: `format=csv` (UTF-8, for Excel too), `format=xlsx` (with
        charts) or `format=pdf`, with the same period, filters and scope as the JSON summary."""
        summary = reporting.summary(args.get("first"), args.get("last"), scoped(args))
        fmt = args["format"]
        name = f"ozet-{summary['first'].isoformat()}-{summary['last'].isoformat()}.{fmt}"
        return Response(exports.render(summary, fmt), mimetype=exports.FORMATS[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    metrics.register_institution_gauges(reporting.institution_gauges)
    app = create_service_app(
        "reporting", parts.config,
        [reports, audit_blueprint("reporting", "/api/v1/reports",
                                  lambda: parts.store.audit_log)],
        title="Açık Kapı — Reporting",
        description="Aggregates built from events: reports by topic, unit, region and time.",
        health_checks=[mongo_check(parts.db)],
    )
    app.register_blueprint(pages.blueprint(reporting, parts.config["STAFF_TOKEN_SECRET"],
                                           parts.family))
    return app
