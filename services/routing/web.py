"""Routing's HTTP API: the category catalogue and (staff) case lookups."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.catalogue import load_categories
from services.common.mongo import get_database
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.routing.schemas import CaseSchema, CategoryListSchema
from services.routing.store import RoutingStore

PREFIXES = ("/api/v1/cases", "/api/v1/directory", "/api/v1/categories")


def create_app(config: dict) -> Flask:
    """Routing's Flask app, sharing the service's database."""
    store = RoutingStore(get_database(config, "routing"))
    store.ensure_indexes()
    catalogue = load_categories(config["CATALOGUE_PATH"])
    listing = {"items": [c.to_dict() for c in catalogue.values()], "total": len(catalogue)}

    categories = Blueprint("categories", __name__, url_prefix="/api/v1/categories",
                           description="Kategori kataloğu / category catalogue")

    @categories.route("", methods=["GET"])
    @categories.response(200, CategoryListSchema)
    def list_categories():
        """Every category: code, Turkish and English names, kinds, tier and SLA."""
        return listing

    cases = Blueprint("cases", __name__, url_prefix="/api/v1/cases",
                      description="Vaka işlemleri / case work")

    @cases.route("/<application_id>", methods=["GET"])
    @cases.response(200, CaseSchema)
    @cases.doc(security=[{"staffToken": []}])
    @staff_required()
    def get_case(application_id: str):
        """A case's work state and the routing rule that matched."""
        case = store.get_case(application_id)
        if case is None:
            abort(404, message="no such case")
        return dict(case, application_id=case["_id"])

    return create_service_app(
        "routing", config, [categories, cases],
        title="Açık Kapı — Routing", description="Directory, catalogue, routing and case work.",
        health_checks=[mongo_check(store.db)],
    )
