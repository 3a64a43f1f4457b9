"""The console's Flask app: the staff pages (`pages`) under `/console/`, on the shared factory
(errors, OpenAPI, `/health` pinging the console's database, `/metrics`)."""
from __future__ import annotations

from flask import Flask

from services.common.web import create_app as create_service_app
from services.common.web import mongo_check
from services.console import pages
from services.console.bootstrap import ConsoleParts

PREFIXES = ("/console",)


def create_app(parts: ConsoleParts) -> Flask:
    """The console's Flask app on the same parts as the process's nameko side."""
    app = create_service_app(
        "console", parts.config, [],
        title="Açık Kapı — Staff console",
        description="Server-rendered staff pages: login, sessions, the unit's inbox. The pages "
                    "call the services' staff APIs with short-lived tokens for the user.",
        health_checks=[mongo_check(parts.db)],
    )
    app.register_blueprint(pages.blueprint(parts))
    return app
