"""Notify's HTTP API (staff): the delivery log of an application, and a citizen's opt-out
(recorded by the desk on the citizen's request; the citizen's own way is the "IPTAL" SMS)."""
from __future__ import annotations

from flask import Flask, g
from flask_smorest import Blueprint

from services.common.auth import staff_required
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.notify.bootstrap import NotifyParts
from services.notify.schemas import DeliveryLogQuerySchema, DeliveryLogSchema, OptOutSchema

PREFIXES = ("/api/v1/notifications",)
# Who records a citizen's choice for them: the coordination centre (desk and call centre work
# under it until the console's own roles, issue 13) and administrators.
DESK_ROLES = ("coordinator", "admin")


def create_app(parts: NotifyParts) -> Flask:
    """Notify's Flask app, on the process's notify parts (shared with the nameko side)."""
    deliveries = parts.deliveries

    notifications = Blueprint(
        "notifications", __name__, url_prefix="/api/v1/notifications",
        description="Bildirim kayıtları / delivery log",
    )

    @notifications.route("", methods=["GET"])
    @staff_required()  # outermost: a caller without a token learns nothing, not even 422s
    @notifications.arguments(DeliveryLogQuerySchema, location="query")
    @notifications.response(200, DeliveryLogSchema)
    @notifications.doc(security=[{"staffToken": []}])
    def delivery_log(args: dict):
        """Every message sent (or not) about an application, oldest first, masked."""
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

    return create_service_app(
        "notify", parts.config, [notifications],
        title="Açık Kapı — Notify", description="Citizen notifications and their delivery log.",
        health_checks=[mongo_check(parts.db)],
    )
