"""Tracking's HTTP API: the public lookup of an application by its tracking and security codes.

Both codes travel in a JSON body, never in a URL (URLs end up in logs and browser history), and
nothing here logs them. "No such code" and "wrong security code" get the same answer after the
same work (design §9).
"""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint, abort

from services.common.catalogue import load_categories
from services.common.codes import new_security_code, security_digest
from services.common.mongo import get_database
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.tracking import domain
from services.tracking.schemas import TrackingAnswerSchema, TrackRequestSchema
from services.tracking.store import TrackingStore

PREFIXES = ("/api/v1/track", "/open311/v2", "/t/", "/takip")
NOT_FOUND = "Takip kodu veya güvenlik kodu hatalı / tracking or security code is wrong"


def create_app(config: dict) -> Flask:
    """Tracking's Flask app, sharing the service's database."""
    store = TrackingStore(get_database(config, "tracking"))
    store.ensure_indexes()
    pepper = config["CODE_PEPPER"]
    # Compared against when there is nothing to compare with: the digest of a random code
    # nobody was given, so the unknown-code path does the same work as the wrong-code path.
    dummy_digest = security_digest(pepper, new_security_code())
    category_names = {
        code: (category.name_tr, category.name_en)
        for code, category in load_categories(config["CATALOGUE_PATH"]).items()
    }

    track = Blueprint("track", __name__, url_prefix="/api/v1/track",
                      description="Başvuru takibi / application tracking")

    @track.route("", methods=["POST"])
    @track.arguments(TrackRequestSchema)
    @track.response(200, TrackingAnswerSchema)
    @track.alt_response(404, description="unknown tracking code or wrong security code")
    @track.alt_response(422, description="a field is wrong; `errors` names it")
    def lookup(payload: dict):
        """An application's status and timeline, for the holder of both codes."""
        given = security_digest(pepper, payload["security_code"])
        doc = store.find_by_code(payload["tracking_code"])
        if not domain.may_answer(doc, given, dummy_digest):
            abort(404, message=NOT_FOUND)
        # Confidential applications answer here too: the holder of both codes is the applicant.
        return domain.public_view(doc, category_names)

    return create_service_app(
        "tracking", config, [track],
        title="Açık Kapı — Tracking",
        description="Public status and timeline of applications, by tracking and security code.",
        health_checks=[mongo_check(store.db)],
    )
