"""Notify's HTTP API (staff): the delivery log of an application."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

from services.common.auth import staff_required
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.notify.bootstrap import NotifyParts
from services.notify.schemas import DeliveryLogQuerySchema, DeliveryLogSchema

PREFIXES = ("/api/v1/notifications",)


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

    return create_service_app(
        "notify", parts.config, [notifications],
        title="Açık Kapı — Notify", description="Citizen notifications and their delivery log.",
        health_checks=[mongo_check(parts.db)],
    )
