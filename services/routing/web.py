"""Routing's HTTP API: the category catalogue, the directory and its admin, case work.

The app is built on the parts of routing's composition root (`bootstrap`), the same object the
nameko side of the process holds: one database client, one in-memory directory, one relay, so an
admin change answered here is what the next routing decision uses, and a case action's events
reach the relay at once. Blueprints: `web_directory` (catalogue, directory, dry-run decision),
`web_cases` (inbox, case view, case actions).
"""
from __future__ import annotations

from typing import NoReturn

from flask import Flask, g
from flask_smorest import abort

from services.common.audit import audit_blueprint
from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.routing.access import Actor, Denied
from services.routing.admin import ChangeRefused
from services.routing.bootstrap import RoutingParts

PREFIXES = ("/api/v1/cases", "/api/v1/directory", "/api/v1/categories")


def current_actor() -> Actor:
    """The staff member of the request (after `staff_required`)."""
    staff = g.staff
    return Actor(staff.user, staff.role, staff.unit, staff.institution)


def deny(exc: Denied) -> NoReturn:
    """403 in the shared error shape, naming what was wrong (role, unit, inst …)."""
    abort(403, message=exc.message, errors={exc.field: [exc.message]})


def refuse(exc: ChangeRefused) -> NoReturn:
    """A refused directory change in the shared error shape, with the status it means."""
    abort(exc.status, message=exc.message, errors=exc.errors or None)


def create_app(parts: RoutingParts) -> Flask:
    """Routing's Flask app on `parts` (shared with the nameko side of the process)."""
    # imported here: the blueprint modules use this module's helpers
    from services.routing.web_cases import cases_blueprint
    from services.routing.web_directory import categories_blueprint, directory_blueprint

    store, cache = parts.store, parts.organisation
    return create_service_app(
        "routing", parts.config,
        [categories_blueprint(cache), directory_blueprint(store, cache),
         audit_blueprint("routing", "/api/v1/cases", lambda: store.audit_log),
         cases_blueprint(store, cache)],
        title="Açık Kapı — Routing",
        description="Organisation directory and its admin, category catalogue, routing "
                    "decisions and case work.",
        health_checks=[mongo_check(parts.db)],
    )
