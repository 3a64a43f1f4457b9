"""SLA's HTTP API (staff): one case's deadlines and the overdue list."""
from __future__ import annotations

from flask import Flask, g
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.sla.bootstrap import SlaParts
from services.sla.schemas import OverdueListSchema, OverdueQuerySchema, TimerSetSchema

PREFIXES = ("/api/v1/sla",)
# Design §8: a unit expert sees only the unit's cases.
UNIT_SCOPED_ROLES = ("expert",)


def _scoped_unit(requested: str | None) -> str | None:
    staff = g.staff
    if staff.role in UNIT_SCOPED_ROLES:
        if not staff.unit or (requested and requested != staff.unit):
            abort(403, message="an expert sees only the unit's own cases",
                  errors={"query": {"unit": [f"must be {staff.unit}"]}})
        return staff.unit
    return requested


def _may_see(timer_set: dict) -> bool:
    staff = g.staff
    return staff.role not in UNIT_SCOPED_ROLES or timer_set["unit"] == staff.unit


def create_app(parts: SlaParts) -> Flask:
    """SLA's Flask app, on the same parts (store, deadlines) as the process's nameko side."""
    deadlines = parts.deadlines

    sla = Blueprint("sla", __name__, url_prefix="/api/v1/sla",
                    description="Süreler ve gecikenler / deadlines and overdue cases")

    @sla.route("/cases/<application_id>", methods=["GET"])
    @staff_required()
    @sla.response(200, TimerSetSchema)
    @sla.alt_response(404, description="no timer set for this application")
    @sla.doc(security=[{"staffToken": []}])
    def get_timer_set(application_id: str):
        """A case's deadlines (read, warn, resolve, 48-hour notice) and escalation level."""
        timer_set = deadlines.timer_set(application_id)
        # Another unit's case is answered as if unknown: an expert learns nothing of it.
        if timer_set is None or not _may_see(timer_set):
            abort(404, message="no timer set for this application")
        return timer_set

    @sla.route("/overdue", methods=["GET"])
    @staff_required()  # outermost: a caller without a token learns nothing, not even 422s
    @sla.arguments(OverdueQuerySchema, location="query")
    @sla.response(200, OverdueListSchema)
    @sla.doc(security=[{"staffToken": []}])
    def list_overdue(args: dict):
        """Open cases with a deadline in the past, the longest overdue first."""
        return deadlines.overdue(_scoped_unit(args["unit"]), limit=args["limit"])

    return create_service_app(
        "sla", parts.config, [sla],
        title="Açık Kapı — SLA", description="Deadlines, timer sets and overdue cases.",
        health_checks=[mongo_check(parts.db)],
    )
