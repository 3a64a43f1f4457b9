"""The Flask app factory every service uses: one JSON error shape, OpenAPI, health, metrics.

Errors are always `{code, status, message, errors}`: validation problems name the field under
`errors` (`{"json": {"citizen": {"tckn": [...]}}}`), malformed JSON is a 400, and anything
unexpected is a 500 in the same shape without internals. The database out of reach is a 503 with
`Retry-After`: the request was fine, and a retry with the same `Idempotency-Key` is never filed
twice. Each app publishes its OpenAPI document
at `/openapi.json` and serves `/health` and `/metrics`.

Probes for an orchestrator: `/health/live` answers 200 while the process serves requests and
checks nothing else (restarting a process because the broker is away would not bring the broker
back); `/health/ready` answers 200 only when the store answers (the service's `health_checks`),
the broker answers and the service's queues are declared, else 503 naming what failed, so that
no traffic is sent to a replica that cannot do its work. `/health` keeps its old meaning (the
`health_checks` alone).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api, Blueprint
from kombu import Connection
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common import metrics, topology

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


def _logged_path() -> str:
    """The request's route as declared (`/t/<token>`), not as asked: a path may carry a
    secret (a signed link, a password reset token) that must not reach the logs."""
    return request.url_rule.rule if request.url_rule is not None else "(no route)"


def _unexpected_error(exc: Exception):
    log.exception("unhandled error", extra={"path": _logged_path()})
    err = InternalServerError()
    return jsonify(error_body(500, err.name, "internal error; nothing was changed")), 500


def _database_away(exc: ConnectionFailure):
    log.warning("database away", extra={"path": _logged_path(), "error": type(exc).__name__})
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
    ready_checks = [*checks, broker_check(config, service_name)]

    def report(probes: list[HealthCheck]):
        failures = {}
        for check in probes:
            try:
                check()
            except QueuesMissing as exc:
                failures["queues"] = f"not declared: {exc}"
            except Exception as exc:  # a health probe reports, it never raises
                # the class only: a message could carry a connection string with its password
                failures[getattr(check, "__name__", "check")] = type(exc).__name__
        status = 503 if failures else 200
        return jsonify({"service": service_name, "status": "fail" if failures else "ok",
                        "failures": failures}), status

    @app.get("/health")
    def health():
        return report(checks)

    @app.get("/health/live")
    def health_live():
        return jsonify({"service": service_name, "status": "ok"})

    @app.get("/health/ready")
    def health_ready():
        return report(ready_checks)

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


class QueuesMissing(Exception):
    """A queue the service consumes from is not declared on the broker."""


def broker_check(config: dict, service_name: str) -> HealthCheck:
    """A readiness check: the broker answers and `service_name`'s queues are declared.

    It opens a short-lived connection and declares each queue passively (a declaration that
    only asks whether the queue exists), plus the retry and dead-letter queues every service
    republishes to. A connection per probe costs a few milliseconds every few seconds; one
    kept open would report ready on a socket the broker had already dropped.
    """
    uri = config.get("AMQP_URI", "")
    timeout = float(config.get("READY_TIMEOUT_SECONDS", 3))
    names = [*topology.service_queue_names(service_name), topology.RETRY_QUEUE,
             topology.DEAD_LETTER_QUEUE]

    def broker():
        with Connection(uri, connect_timeout=timeout) as conn:
            conn.connect()  # one attempt: a probe reports, the orchestrator retries
            missing = []
            channel = conn.channel()
            for name in names:
                try:
                    channel.queue_declare(queue=name, passive=True)
                except conn.channel_errors:
                    missing.append(name)  # the broker closed the channel: open another
                    channel = conn.channel()
            channel.close()
        if missing:
            log.warning("queues not declared", extra={"queues": missing})
            raise QueuesMissing(", ".join(missing))

    return broker


def mongo_check(db) -> HealthCheck:
    """A health check that pings the service's database."""

    def mongo():
        db.command("ping")

    return mongo
