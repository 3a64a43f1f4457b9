"""Notify's HTTP API (staff): the delivery log of an application."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint

from services.common.auth import staff_required
from services.common.mongo import get_database
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.notify.schemas import DeliveryLogQuerySchema, DeliveryLogSchema
from services.notify.store import NotifyStore

PREFIXES = ("/api/v1/notifications",)


def create_app(config: dict) -> Flask:
    """Notify's Flask app, sharing the service's database."""
    store = NotifyStore(get_database(config, "notify"))
    store.ensure_indexes()

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
        items = store.log_for(args["application_id"])
        return {"application_id": args["application_id"], "count": len(items), "items": items}

    return create_service_app(
        "notify", config, [notifications],
        title="Açık Kapı — Notify", description="Citizen notifications and their delivery log.",
        health_checks=[mongo_check(store.db)],
    )
