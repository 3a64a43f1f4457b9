"""The Flask app factory every service uses: one JSON error shape, OpenAPI, health, metrics.

Errors are always `{code, status, message, errors}`: validation problems name the field under
`errors` (`{"json": {"citizen": {"tckn": [...]}}}`), malformed JSON is a 400, and anything
unexpected is a 500 in the same shape without internals. The database out of reach is a 503 with
`Retry-After`: the request was fine, and a retry with the same `Idempotency-Key` is never filed
twice. Each app publishes its OpenAPI document
at `/openapi.json` and serves `/health` and `/metrics`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api, Blueprint
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common import metrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], None]
DATABASE_RETRY_AFTER = 5  # seconds: a restarted server is found again within a few


def error_body(code: int, status: str, message: str, errors: dict | None = None) -> dict:
    """The one error shape of every service."""
    return {"code": code, "status": status, "message": message, "errors": errors or {}}


def _http_error(exc: HTTPException):
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages") or {}
    message = data.get("message") or summary(errors) or exc.description or exc.name
    response = jsonify(error_body(exc.code or 500, exc.name, message, errors))
    response.status_code = exc.code or 500
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def summary(errors: dict, prefix: str = "") -> str:
    """'citizen.tckn: Invalid TC Kimlik No.' for the first error, so the message names the field."""
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix and key not in ("json", "form", "query") else (
            prefix or ("" if key in ("json", "form", "query") else str(key)))
        if isinstance(value, dict):
            found = summary(value, path)
            if found:
                return found
        elif isinstance(value, list) and value:
            return f"{path}: {value[0]}" if path else str(value[0])
    return ""


def _unexpected_error(exc: Exception):
    log.exception("unhandled error", extra={"path": request.path})
    err = InternalServerError()
    return jsonify(error_body(500, err.name, "internal error; nothing was changed")), 500


def _database_away(exc: ConnectionFailure):
    log.warning("database away", extra={"path": request.path, "error": type(exc).__name__})
    body = error_body(503, "Service Unavailable",
                      "the database is out of reach for a moment; retry in a few seconds "
                      "(with the same Idempotency-Key a retry is never filed twice)")
    return jsonify(body), 503, {"Retry-After": str(DATABASE_RETRY_AFTER)}


def create_app(
    service_name: str,
    config: dict,
    blueprints: Iterable[Blueprint],
    *,
    title: str,
    description: str = "",
    health_checks: Iterable[HealthCheck] = (),
    import_name: str | None = None,
) -> Flask:
    """Build a service's Flask app with its blueprints registered on a flask-smorest Api."""
    app = Flask(import_name or f"services.{service_name}")
    app.config.update(
        ACIKKAPI=config,
        SERVICE_NAME=service_name,
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": description}},
        MAX_CONTENT_LENGTH=int(config.get("MAX_CONTENT_LENGTH", 25 * 1024 * 1024)),
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    hops = int(config.get("PROXY_HOPS", 0))
    if hops:
        # Behind the reverse proxy: trust exactly its X-Forwarded-For hop, so rate limits see
        # the citizen's address, and nothing a client adds in front of it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    api = Api(app)
    api.spec.components.security_scheme(
        "staffToken", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ConnectionFailure, _database_away)
    app.register_error_handler(Exception, _unexpected_error)
    checks = list(health_checks)

    @app.get("/health")
    def health():
        failures = {}
        for check in checks:
            try:
                check()
            except Exception as exc:  # a health probe reports, it never raises
                failures[getattr(check, "__name__", "check")] = type(exc).__name__
        status = 503 if failures else 200
        return jsonify({"service": service_name, "status": "fail" if failures else "ok",
                        "failures": failures}), status

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _record(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.HTTP_REQUESTS.labels(service_name, request.method, route,
                                     str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(service_name, request.method, route).observe(elapsed)
        return response

    return app


def mongo_check(db) -> HealthCheck:
    """A health check that pings the service's database."""

    def mongo():
        db.command("ping")

    return mongo
