"""SLA's HTTP API: a case's deadlines, the overdue / at-risk / mayor's lists (staff, scoped
by the token), and the policy rules and calendars (administrators).

Scopes (design §8, as routing's access rules): expert, supervisor and director see their
token's unit; deputy mayor, mayor and governor their token's institution and the institutions
under it (a clock keeps the chain above its institution, from routing's directory); a
coordinator or administrator everything, or what is under the institution their token names.
A case outside the caller's scope is answered as unknown.
"""
from __future__ import annotations

import re

from flask import Flask, g
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.sla.bootstrap import SlaParts
from services.sla.policy import InvalidPolicy
from services.sla.schemas import (
    CalendarListSchema,
    CalendarSchema,
    ClockListSchema,
    ClockSchema,
    EffectiveQuerySchema,
    EffectiveSchema,
    ListQuerySchema,
    RuleListSchema,
    RuleSchema,
)

PREFIXES = ("/api/v1/sla",)
UNIT_ROLES = ("expert", "supervisor", "director")
INSTITUTION_ROLES = ("deputy_mayor", "mayor", "governor")
CENTRAL_ROLES = ("coordinator", "admin")
LIST_ROLES = (*UNIT_ROLES, *INSTITUTION_ROLES, *CENTRAL_ROLES)
MAYOR_LIST_ROLES = (*INSTITUTION_ROLES, *CENTRAL_ROLES)
STAFF = {"security": [{"staffToken": []}]}
OWNER = re.compile(r"^[a-z0-9_.-]{1,120}$")


def _scope() -> dict:
    """What the caller's token allows: `{unit}`, `{within}` (an institution and those under
    it) or everything."""
    staff = g.staff
    if staff.role in UNIT_ROLES:
        if not staff.unit:
            abort(403, message="a unit role needs a unit in its token",
                  errors={"token": {"unit": ["missing"]}})
        return {"unit": staff.unit}
    if staff.role in INSTITUTION_ROLES or (staff.role in CENTRAL_ROLES and staff.institution):
        if not staff.institution:
            abort(403, message="an institution role needs an institution in its token",
                  errors={"token": {"inst": ["missing"]}})
        return {"within": staff.institution}
    if staff.role in CENTRAL_ROLES:
        return {}
    abort(403, message=f"role {staff.role} has no SLA lists",
          errors={"role": [f"one of {', '.join(LIST_ROLES)} required"]})
    raise AssertionError("unreachable")


def _in_scope(clock: dict, scope: dict) -> bool:
    if "unit" in scope:
        return clock.get("unit") == scope["unit"]
    if "within" in scope:
        return scope["within"] in (clock.get("institutions") or [clock.get("institution")])
    return True


def _narrowed(args: dict) -> dict:
    """The query's unit / institution within the caller's scope (403 naming the field)."""
    scope = _scope()
    if "unit" in scope and args.get("unit") and args["unit"] != scope["unit"]:
        abort(403, message=f"your token limits you to unit {scope['unit']}",
              errors={"query": {"unit": [f"must be {scope['unit']}"]}})
    return {"unit": scope.get("unit") or args.get("unit"),
            "institution": args.get("institution"), "within": scope.get("within")}


def _owner(owner: str) -> str:
    """An institution or unit code from the path, or a 422 naming it."""
    if not OWNER.match(owner):
        abort(422, message="owner must be an institution or unit code",
              errors={"path": {"owner": ["letters, digits and _ . - only, at most 120"]}})
    return owner


def _admin_institution(scope: dict) -> None:
    """An administrator whose token names an institution edits only that institution's."""
    inst = g.staff.institution
    if g.staff.role != "admin" or (inst and scope.get("institution") != inst):
        abort(403, message="only an administrator may change SLA policies and calendars, "
              "and one bound to an institution only its own",
              errors={"scope": {"institution": [f"must be {inst}" if inst else "admin only"]}})


def create_app(parts: SlaParts) -> Flask:
    """SLA's Flask app, on the same parts (store, deadlines) as the process's nameko side."""
    deadlines = parts.deadlines

    sla = Blueprint("sla", __name__, url_prefix="/api/v1/sla",
                    description="Süreler, gecikenler, politikalar / deadlines, late cases, "
                                "policies")

    @sla.route("/cases/<application_id>", methods=["GET"])
    @staff_required(*LIST_ROLES)
    @sla.response(200, ClockSchema)
    @sla.alt_response(404, description="no clock for this application")
    @sla.doc(**STAFF)
    def get_clock(application_id: str):
        """A case's deadlines: when read and resolve fall (working time), how much is used,
        the 48-hour notice, the escalation steps and the outcomes."""
        view = deadlines.clock_view(application_id)
        if view is None or not _in_scope(view, _scope()):
            abort(404, message="no clock for this application")
        return view

    def listing(kind: str, args: dict) -> dict:
        where = _narrowed(args)
        return deadlines.lists(kind, limit=args["limit"], **where)

    @sla.route("/overdue", methods=["GET"])
    @staff_required(*LIST_ROLES)  # outermost: without a token nothing, not even a 422
    @sla.arguments(ListQuerySchema, location="query")
    @sla.response(200, ClockListSchema)
    @sla.doc(**STAFF)
    def list_overdue(args: dict):
        """Running cases past their read or resolve deadline, the earliest due first."""
        return listing("overdue", args)

    @sla.route("/at-risk", methods=["GET"])
    @staff_required(*LIST_ROLES)
    @sla.arguments(ListQuerySchema, location="query")
    @sla.response(200, ClockListSchema)
    @sla.doc(**STAFF)
    def list_at_risk(args: dict):
        """Running cases past their first warning and not yet due."""
        return listing("at_risk", args)

    @sla.route("/mayor", methods=["GET"])
    @staff_required(*MAYOR_LIST_ROLES)
    @sla.arguments(ListQuerySchema, location="query")
    @sla.response(200, ClockListSchema)
    @sla.doc(**STAFF)
    def list_mayor(args: dict):
        """Everything that reached the top of the ladder, with how long it waited at each
        step (seed 000: the mayor's profile)."""
        return listing("mayor", args)

    # -- policies -------------------------------------------------------------------------------

    @sla.route("/policies", methods=["GET"])
    @staff_required(*CENTRAL_ROLES)
    @sla.response(200, RuleListSchema)
    @sla.doc(**STAFF)
    def list_rules():
        """Every policy rule; the catalogue's hours apply where none matches."""
        return {"items": parts.store.rules.all()}

    @sla.route("/policies", methods=["PUT"])
    @staff_required("admin")
    @sla.arguments(RuleSchema)
    @sla.response(200, RuleSchema)
    @sla.doc(**STAFF)
    def put_rule(body: dict):
        """Create or replace the rule of a scope (category, priority, institution; none is the
        default rule). Applies to cases routed, moved or reopened from now on."""
        _admin_institution(body["scope"])
        try:
            return deadlines.save_rule(body["scope"], body["settings"])
        except InvalidPolicy as exc:
            abort(422, message=str(exc), errors={"json": {"settings": {exc.field: [exc.message]}}})
            raise AssertionError("unreachable") from exc

    @sla.route("/policies/<rule>", methods=["DELETE"])
    @staff_required("admin")
    @sla.response(204)
    @sla.doc(**STAFF)
    def delete_rule(rule: str):
        """Remove a rule."""
        found = parts.store.rules.get(rule)
        if found is None:
            abort(404, message=f"no rule {rule}")
        _admin_institution(found["scope"])
        deadlines.delete_rule(rule)

    @sla.route("/policies/effective", methods=["GET"])
    @staff_required(*CENTRAL_ROLES)
    @sla.arguments(EffectiveQuerySchema, location="query")
    @sla.response(200, EffectiveSchema)
    @sla.doc(**STAFF)
    def effective(args: dict):
        """The policy and calendar a case of this category, priority and institution would
        run by, with the rules that made it."""
        policy, calendar = deadlines.policy_for(**args)
        return {"policy": policy.to_dict(), "calendar": calendar}

    # -- calendars ------------------------------------------------------------------------------

    @sla.route("/calendars", methods=["GET"])
    @staff_required(*CENTRAL_ROLES)
    @sla.response(200, CalendarListSchema)
    @sla.doc(**STAFF)
    def list_calendars():
        """Working hours set per institution or unit (the rest: Mon–Fri 08:30–17:30)."""
        return {"items": [dict(c, owner=c["_id"]) for c in parts.store.calendars.all()]}

    @sla.route("/calendars/<owner>", methods=["PUT"])
    @staff_required("admin")
    @sla.arguments(CalendarSchema)
    @sla.response(200, CalendarSchema)
    @sla.doc(**STAFF)
    def put_calendar(body: dict, owner: str):
        """Set the working hours of an institution or a unit (by its code)."""
        _admin_institution({"institution": _owner(owner).split(".")[0]})
        try:
            return deadlines.save_calendar(owner, body)
        except InvalidPolicy as exc:
            abort(422, message=str(exc), errors={"json": {exc.field: [exc.message]}})
            raise AssertionError("unreachable") from exc

    @sla.route("/calendars/<owner>", methods=["DELETE"])
    @staff_required("admin")
    @sla.response(204)
    @sla.doc(**STAFF)
    def delete_calendar(owner: str):
        """Back to the default working hours."""
        _admin_institution({"institution": _owner(owner).split(".")[0]})
        if not parts.store.calendars.delete(owner):
            abort(404, message=f"no calendar for {owner}")

    return create_service_app(
        "sla", parts.config, [sla],
        title="Açık Kapı — SLA",
        description="Deadlines in working time, escalation, late-case lists and SLA policies.",
        health_checks=[mongo_check(parts.db)],
    )


