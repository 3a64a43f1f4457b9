"""SLA's HTTP API (staff): one case's deadlines and the overdue list."""
from __future__ import annotations

from flask import Flask, g
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.events import utcnow
from services.common.mongo import get_database
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.sla.schemas import OverdueListSchema, OverdueQuerySchema, TimerSetSchema
from services.sla.store import SlaStore

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


def create_app(config: dict) -> Flask:
    """SLA's Flask app, sharing the service's database."""
    store = SlaStore(get_database(config, "sla"))
    store.ensure_indexes()

    sla = Blueprint("sla", __name__, url_prefix="/api/v1/sla",
                    description="Süreler ve gecikenler / deadlines and overdue cases")

    @sla.route("/cases/<application_id>", methods=["GET"])
    @staff_required()
    @sla.response(200, TimerSetSchema)
    @sla.alt_response(404, description="no timer set for this application")
    @sla.doc(security=[{"staffToken": []}])
    def get_timer_set(application_id: str):
        """A case's deadlines (read, warn, resolve, 48-hour notice) and escalation level."""
        timer_set = store.get_timers(application_id)
        staff = g.staff
        if timer_set is not None and staff.role in UNIT_SCOPED_ROLES and (
            timer_set["unit"] != staff.unit
        ):
            timer_set = None  # another unit's case: answer as if unknown
        if timer_set is None:
            abort(404, message="no timer set for this application")
        return dict(timer_set, application_id=timer_set["_id"])

    @sla.route("/overdue", methods=["GET"])
    @staff_required()  # outermost: a caller without a token learns nothing, not even 422s
    @sla.arguments(OverdueQuerySchema, location="query")
    @sla.response(200, OverdueListSchema)
    @sla.doc(security=[{"staffToken": []}])
    def list_overdue(args: dict):
        """Open cases with a deadline in the past, the longest overdue first."""
        now = utcnow()
        unit = _scoped_unit(args["unit"])
        items = [dict(doc, application_id=doc["_id"])
                 for doc in store.overdue(now, unit=unit, limit=args["limit"])]
        return {"as_of": now, "count": len(items), "items": items}

    return create_service_app(
        "sla", config, [sla],
        title="Açık Kapı — SLA", description="Deadlines, timer sets and overdue cases.",
        health_checks=[mongo_check(store.db)],
    )
