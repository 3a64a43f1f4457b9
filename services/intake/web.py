"""Intake's HTTP API: application submission."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint, abort

from services.common.catalogue import load_categories
from services.common.mongo import get_database
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.intake import domain, submission
from services.intake.schemas import ApplicationCreatedSchema, CreateApplicationSchema
from services.intake.store import IntakeStore

PREFIXES = ("/api/v1/applications", "/api/v1/channels", "/api/v1/citizens", "/basvuru")


def create_app(config: dict) -> Flask:
    """Intake's Flask app, sharing the service's database."""
    store = IntakeStore(get_database(config, "intake"))
    store.ensure_indexes()
    catalogue = load_categories(config["CATALOGUE_PATH"])

    applications = Blueprint(
        "applications", __name__, url_prefix="/api/v1/applications",
        description="Başvuru kabulü / application intake",
    )

    @applications.route("", methods=["POST"])
    @applications.arguments(CreateApplicationSchema)
    @applications.response(201, ApplicationCreatedSchema)
    @applications.alt_response(422, description="a field is wrong; `errors` names it")
    def submit(payload: dict):
        """Submit an application; the answer carries the tracking and security codes once."""
        try:
            return submission.submit(store, catalogue, payload, config)
        except domain.Rejected as rejected:
            abort(422, errors={"json": rejected.errors})
        except submission.NoTrackingCode:
            abort(503, message="could not allocate a tracking code; please retry")

    return create_service_app(
        "intake", config, [applications],
        title="Açık Kapı — Intake", description="Citizens, applications and tracking codes.",
        health_checks=[mongo_check(store.db)],
    )
