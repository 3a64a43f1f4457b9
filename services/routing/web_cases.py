"""Case work over HTTP (design §4): the unit inbox, a case with its history, and the actions.

`POST /api/v1/cases/<id>/<action>` for acknowledge, start, transfer, return, wait, resume,
resolve, approve, reject, close and forward (muhtar requests at the ministry desk). Who may act
is checked first (403), then the state (409 with the current state), then the parameters (422
naming the field); the new state and its event are stored in one write.
"""
from __future__ import annotations

import functools
import logging

from flask import request
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.events import utcnow
from services.routing import cases
from services.routing.access import (
    ACTIONS_OF_ROLE,
    CENTRAL_ROLES,
    Denied,
    check_case_action,
    coordination_units,
    in_scope,
    inbox_holders,
    inbox_scope,
)
from services.routing.domain import Organisation
from services.routing.organisation import OrganisationCache
from services.routing.schemas import (
    ACTION_SCHEMAS,
    CaseSchema,
    CoordinationQuerySchema,
    InboxQuerySchema,
    InboxSchema,
)
from services.routing.store import RoutingStore
from services.routing.web import current_actor, deny

ACTION_DOCS = {
    "acknowledge": "The unit has read the case: records the read time (the SLA read deadline).",
    "start": "Work on the case has started.",
    "transfer": "Hand the case to another unit, with the reason.",
    "return": "Misrouted: back to the coordination centre (a muhtar request: the ministry desk).",
    "wait": "Waiting for the citizen: the clock pauses until `resume`.",
    "resume": "The citizen answered: back to the state the case paused in.",
    "resolve": "The result (and optionally a photo reference); goes for approval.",
    "approve": "The supervisor (or above) approves the resolution (seed 002).",
    "reject": "The supervisor sends the resolution back to the unit, with the reason.",
    "close": "The coordination centre closes an approved resolution; the citizen is told.",
    "forward": "The ministry desk forwards a muhtar request to the governorship or a "
               "municipality (seed 003); without `institution` the rules' suggestion.",
}

log = logging.getLogger(__name__)


def present(case: dict, org: Organisation) -> dict:
    """A case as staff see it: codes plus the names of who holds it."""
    directory = org.directory
    unit = directory.units.get(case.get("unit") or "")
    inst = directory.institutions.get(case.get("institution") or "")
    return dict(case, application_id=case.get("_id") or case.get("application_id"),
                unit_name=unit.name_tr if unit else None,
                institution_name=inst.name_tr if inst else None)


def cases_blueprint(store: RoutingStore, cache: OrganisationCache) -> Blueprint:
    blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases",
                    description="Vaka işlemleri / case work")

    @blp.route("", methods=["GET"])
    @staff_required()
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, InboxSchema)
    @blp.doc(security=[{"staffToken": []}])
    def inbox(query: dict):
        """The inbox: open cases of the caller's units (primary and backup experts alike).

        Filters: `unit`, `institution`, `state` (repeatable; default every open state),
        `category`, `received_from` / `received_to`; paged by `page` and `per_page`, oldest
        first.
        """
        org = cache.current()
        try:
            units, institutions = inbox_scope(current_actor(), org.directory,
                                              query.get("unit"), query.get("institution"))
        except Denied as exc:
            deny(exc)
        page, per_page = query["page"], query["per_page"]
        items, total = store.inbox(
            units=units, institutions=institutions,
            holders=inbox_holders(units, institutions, org.directory),
            states=query.get("state") or list(cases.OPEN_STATES),
            category=query.get("category"), received_from=query.get("received_from"),
            received_to=query.get("received_to"), skip=(page - 1) * per_page, limit=per_page)
        return {"items": [present(item, org) for item in items], "total": total,
                "page": page, "per_page": per_page}

    @blp.route("/coordination", methods=["GET"])
    @staff_required(*CENTRAL_ROLES)  # the role before the query: no 422 for another role
    @blp.arguments(CoordinationQuerySchema, location="query")
    @blp.response(200, InboxSchema)
    @blp.doc(security=[{"staffToken": []}])
    def coordination_queue(query: dict):
        """The coordination queue: the open cases held by the coordination units (where a
        case no rule matched lands: an unknown or coordination-tier category, one unmapped in
        its institution), for coordinators and administrators only; an `inst` token: its
        institution's and those under it. `state` (repeatable) defaults to the states a case
        can be transferred from; paged as the inbox, oldest first."""
        org = cache.current()
        try:
            units = coordination_units(current_actor(), org.directory)
        except Denied as exc:
            deny(exc)
        page, per_page = query["page"], query["per_page"]
        items, total = store.inbox(
            units=units, institutions=None, holders=units,
            states=query.get("state") or list(cases.OPEN_WORK), category=None,
            received_from=None, received_to=None, skip=(page - 1) * per_page, limit=per_page)
        return {"items": [present(item, org) for item in items], "total": total,
                "page": page, "per_page": per_page}

    @blp.route("/<application_id>", methods=["GET"])
    @staff_required()
    @blp.response(200, CaseSchema)
    @blp.doc(security=[{"staffToken": []}])
    def get_case(application_id: str):
        """A case's work state, the routing rule that matched, and its history, for those it is
        within the scope of (as the inbox and the actions): another unit's case is a 403."""
        case = store.get_case(application_id)
        if case is None:
            abort(404, message="no such case")
        org = cache.current()
        actor = current_actor()
        if not in_scope(actor, case, org.directory):
            log.warning("case read refused", extra={"user": actor.user, "role": actor.role,
                                                    "application_id": application_id})
            # KVKK: an attempt to read a case out of scope is an access an administrator
            # must be able to find; only codes and ids, no citizen data
            store.audit({"at": utcnow(), "staff": actor.user, "role": actor.role,
                         "unit": actor.unit, "institution": actor.institution,
                         "action": "case.read.refused", "application_id": application_id,
                         "case_unit": case.get("unit"), "citizen_id": None,
                         "path": request.path})
            deny(Denied(f"case {application_id} is held by {case.get('unit')}, outside what "
                        f"{actor.user} may read", "unit"))
        return present(case, org)

    for action, schema in ACTION_SCHEMAS.items():
        _add_action(blp, store, cache, action, schema)
    return blp


def _add_action(blp: Blueprint, store: RoutingStore, cache: OrganisationCache, action: str,
                schema) -> None:
    def view(params: dict, application_id: str):
        actor = current_actor()
        org = cache.current()

        def step(case: dict):
            check_case_action(actor, action, case, org.directory)
            return cases.act(case, action, params, actor.user, org, utcnow())

        try:
            new = store.change_case(application_id, step)
        except Denied as exc:
            deny(exc)
        except cases.InvalidTransition as exc:
            abort(409, message=f"{exc.message} (current state: {exc.state})",
                  errors={"state": [exc.state]})
        except cases.BadRequest as exc:
            abort(422, message=f"{exc.field}: {exc.message}",
                  errors={"json": {exc.field: [exc.message]}})
        if new is None:
            abort(404, message="no such case")
        return present(new, org)

    view.__name__ = f"case_{action}"
    view.__doc__ = ACTION_DOCS[action]
    decorated = blp.doc(security=[{"staffToken": []}])(
        blp.response(200, CaseSchema)(blp.arguments(schema)(view)))
    blp.route(f"/<application_id>/{action}", methods=["POST"], endpoint=f"case_{action}")(
        staff_required()(_role_first(action, decorated)))


def _role_first(action: str, view):
    """`view` behind the role's part of `check_case_action`, checked before the body is read:
    a role that may never take `action` gets its 403 (the same message) whatever it sent, not a
    422 about a schema it has no business with. The case's scope is checked in the view."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        actor = current_actor()
        if action not in ACTIONS_OF_ROLE.get(actor.role, frozenset()):
            deny(Denied(f"role {actor.role} may not {action} a case"))
        return view(*args, **kwargs)

    return checked
