"""Notify's HTTP API (staff): the delivery log of an application, and a citizen's opt-out
(recorded by the desk on the citizen's request; the citizen's own way is the "IPTAL" SMS).

The delivery log is shown within the application's scope as routing decides it (issue 13):
routing's `may_read` is asked first (the coordination centre and system-wide administrators are
not asked); a refusal is a 403 naming `application_id` and an entry of notify's audit log,
searched by administrators at `GET /api/v1/notifications/audit`.

Administrators manage the message templates (issue 13): `GET /templates` lists every template
file with its override, `PUT /templates/<channel>/<name>` stores an override (422 naming `text`
when it does not parse in Jinja's sandbox or uses a variable the template is not given),
`DELETE` removes it; an unknown channel or name is a 404. The templates are the whole
system's: an administrator bound to an institution may read them, not change them (403).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import Flask, g, request
from flask_smorest import Blueprint, abort

from services.common.audit import audit_blueprint
from services.common.auth import staff_required
from services.common.events import utcnow
from services.common.scope import ScopeUnavailable
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.notify.bootstrap import NotifyParts
from services.notify.overrides import TemplateRefused, UnknownTemplate
from services.notify.schemas import (
    DeliveryLogQuerySchema,
    DeliveryLogSchema,
    OptOutSchema,
    TemplateListSchema,
    TemplateOverrideSchema,
    TemplateSchema,
)

PREFIXES = ("/api/v1/notifications",)
# Who records a citizen's choice for them: the coordination centre (desk and call centre work
# under it until the console's own roles, issue 13) and administrators.
DESK_ROLES = ("coordinator", "admin")
SCOPE_RETRY_AFTER = "5"  # seconds; a read refused because routing did not answer

log = logging.getLogger(__name__)


def create_app(parts: NotifyParts) -> Flask:
    """Notify's Flask app, on the process's notify parts (shared with the nameko side)."""
    deliveries = parts.deliveries

    def within_scope(application_id: str) -> None:
        """Go on only if routing says the caller may read `application_id`: otherwise a 403
        naming it (audited), a 503 when routing cannot say."""
        staff = g.staff
        try:
            verdict = parts.read_scope.check(application_id, staff)
        except ScopeUnavailable as unavailable:
            log.warning("read scope unknown", extra={"application_id": application_id,
                                                     "error": str(unavailable)})
            abort(503, message="who holds the application cannot be checked now; try again "
                               "shortly",
                  errors={"query": {"application_id": ["routing unavailable"]}},
                  headers={"Retry-After": SCOPE_RETRY_AFTER})
        if verdict is None or verdict.allowed:
            return
        # KVKK: an attempt to read out of scope is an access an administrator must find;
        # codes and ids only
        parts.store.audit({"at": utcnow(), "staff": staff.user, "role": staff.role,
                           "unit": staff.unit, "institution": staff.institution,
                           "action": "notifications.read.refused",
                           "application_id": application_id, "citizen_id": None,
                           "case_unit": verdict.unit, "case_institution": verdict.institution,
                           "path": request.path})
        message = f"application {application_id} is outside what {staff.user} may read"
        abort(403, message=message, errors={"query": {"application_id": [message]}})

    notifications = Blueprint(
        "notifications", __name__, url_prefix="/api/v1/notifications",
        description="Bildirim kayıtları / delivery log",
    )

    @notifications.route("", methods=["GET"])
    @staff_required()  # outermost: a caller without a token learns nothing, not even 422s
    @notifications.arguments(DeliveryLogQuerySchema, location="query")
    @notifications.response(200, DeliveryLogSchema)
    @notifications.doc(security=[{"staffToken": []}])
    @notifications.alt_response(403, description="routing holds the application's case outside "
                                "the caller's unit or institution (`errors.query.application_id`;"
                                " the refusal is audited)")
    @notifications.alt_response(503, description="routing could not say who holds the "
                                "application; retry after `Retry-After`")
    def delivery_log(args: dict):
        """Every message sent (or not) about an application, oldest first, masked; for those
        whose scope routing says holds the application."""
        within_scope(args["application_id"])
        return deliveries.log_for(args["application_id"])

    @notifications.route("/opt-outs/<string(maxlength=80):citizen_ref>", methods=["GET"])
    @staff_required(*DESK_ROLES)
    @notifications.response(200, OptOutSchema)
    @notifications.doc(security=[{"staffToken": []}])
    def get_opt_out(citizen_ref: str):
        """Whether the citizen opted out of everything but the codes."""
        return deliveries.opt_out_of(citizen_ref)

    @notifications.route("/opt-outs/<string(maxlength=80):citizen_ref>", methods=["PUT"])
    @staff_required(*DESK_ROLES)
    @notifications.arguments(OptOutSchema)
    @notifications.response(200, OptOutSchema)
    @notifications.doc(security=[{"staffToken": []}])
    def put_opt_out(payload: dict, citizen_ref: str):
        """Record the citizen's choice, given at the desk or the call centre."""
        deliveries.set_opt_out(citizen_ref, payload["opted_out"], f"staff:{g.staff.user}")
        return deliveries.opt_out_of(citizen_ref)

    templates = parts.templates

    def system_wide(view: Callable) -> Callable:
        """Go on only for a token without an institution (after `staff_required`, before the
        body is read): a template's text reaches every institution's citizens."""

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if g.staff.institution is not None:
                message = (f"only a system-wide admin may change the templates, not an admin "
                           f"of {g.staff.institution}")
                abort(403, message=message, errors={"institution": [message]})
            return view(*args, **kwargs)

        return wrapper

    template_path = "/templates/<string(maxlength=10):channel>/<string(maxlength=100):name>"

    def template_or_404(call, channel: str, name: str) -> dict:
        try:
            return call()
        except UnknownTemplate as unknown:
            abort(404, message=str(unknown),
                  errors={"path": {"name": [f"no {channel} template {name}"]}})
        except TemplateRefused as refused:
            abort(422, message=f"the text cannot replace {channel}/{name}: {refused}",
                  errors={"json": {"text": refused.problems}})
        raise AssertionError("unreachable")  # abort raises

    @notifications.route("/templates", methods=["GET"])
    @staff_required("admin")
    @notifications.response(200, TemplateListSchema)
    @notifications.doc(security=[{"staffToken": []}])
    def list_templates():
        """Every SMS and e-mail template: the file's text and the override, if any."""
        return templates.listing()

    @notifications.route(template_path, methods=["PUT"])
    @staff_required("admin")  # outermost: a caller without the role learns nothing of the body
    @system_wide
    @notifications.arguments(TemplateOverrideSchema)
    @notifications.response(200, TemplateSchema)
    @notifications.doc(security=[{"staffToken": []}])
    @notifications.alt_response(404, description="no such channel or template")
    def put_template(payload: dict, channel: str, name: str):
        """Send `text` instead of the template file (422 naming `text` when it does not parse
        or uses a variable the template is not given)."""
        return template_or_404(
            lambda: templates.put(channel, name, payload["text"], f"staff:{g.staff.user}"),
            channel, name)

    @notifications.route(template_path, methods=["DELETE"])
    @staff_required("admin")
    @system_wide
    @notifications.response(200, TemplateSchema)
    @notifications.doc(security=[{"staffToken": []}])
    @notifications.alt_response(404, description="no such channel or template")
    def delete_template(channel: str, name: str):
        """Remove the override: the file's text is sent again."""
        return template_or_404(lambda: templates.delete(channel, name, f"staff:{g.staff.user}"),
                               channel, name)

    return create_service_app(
        "notify", parts.config,
        [notifications,
         audit_blueprint("notify", "/api/v1/notifications", lambda: parts.store.audit_log)],
        title="Açık Kapı — Notify", description="Citizen notifications and their delivery log.",
        health_checks=[mongo_check(parts.db)],
    )
