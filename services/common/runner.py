"""Runs services: each one's nameko service and its Flask app in one process.

`python -m services.<name>` runs one service on `HTTP_PORT`; `python -m services.all` runs all seven
in one process and serves all HTTP on one port, dispatching by the path prefixes of design §8
(`/_/<service>/…` reaches a service's own `/health`, `/openapi.json` and so on). Callers must have
applied `eventlet.monkey_patch()` before importing anything else.
"""
from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
from collections.abc import Callable, Mapping

import eventlet
import eventlet.wsgi
from flask import Flask
from nameko.runners import ServiceRunner

from services.common import metrics, topology
from services.common.bootstrap import Parts, parts_of
from services.common.config import load_config
from services.common.logs import configure_logging

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)
SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")


def service_class(name: str) -> type:
    """The nameko service class of service `name` (`services.<name>.service.SERVICE`)."""
    return importlib.import_module(f"services.{name}.service").SERVICE


def app_factory(name: str) -> Callable[[Parts], Flask]:
    """The Flask app factory of service `name` (`services.<name>.web.create_app(parts)`)."""
    return importlib.import_module(f"services.{name}.web").create_app


def url_prefixes(name: str) -> tuple[str, ...]:
    """The public path prefixes service `name` answers (`services.<name>.web.PREFIXES`)."""
    return importlib.import_module(f"services.{name}.web").PREFIXES


class PrefixDispatcher:
    """One WSGI app in front of several: longest matching path prefix wins."""

    def __init__(self, apps: dict[str, Flask]):
        self.apps = apps
        self.routes = sorted(
            ((prefix, name) for name in apps for prefix in url_prefixes(name)),
            key=lambda route: len(route[0]),
            reverse=True,
        )

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        if path.startswith("/_/"):
            name, _, rest = path[3:].partition("/")
            if name in self.apps:
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/_/{name}"
                environ["PATH_INFO"] = "/" + rest
                return self.apps[name](environ, start_response)
        if path == "/metrics":
            body = metrics.exposition()
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [body]
        if path in ("/health", "/health/live", "/health/ready"):
            # the process is ready (or healthy) when every service in it is
            return self._health(environ, start_response, path)
        for prefix, name in self.routes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/") or (
                prefix.endswith("/") and path.startswith(prefix)
            ):
                return self.apps[name](environ, start_response)
        # Anything else is the citizens' site (tracking owns the public pages) or a clean 404.
        fallback = self.apps.get("tracking") or next(iter(self.apps.values()))
        return fallback(environ, start_response)

    def _health(self, environ, start_response, path: str = "/health"):
        import json

        statuses = {}
        for name, app in self.apps.items():
            with app.test_client() as client:
                statuses[name] = client.get(path).status_code
        ok = all(code == 200 for code in statuses.values())
        body = json.dumps({"status": "ok" if ok else "fail", "services": statuses}).encode()
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "application/json")])
        return [body]


def build_wsgi(runner: ServiceRunner, names: list[str]):
    """The WSGI app serving `names` from the started `runner`: each service's Flask app gets
    the parts its nameko container built (one composition per service and process); one
    service is served as is, several through a prefix dispatcher."""
    apps = {name: app_factory(name)(parts_of(runner.service_map[name])) for name in names}
    return apps[names[0]] if len(apps) == 1 else PrefixDispatcher(apps)


def served_here(config: dict, names: list[str], env: Mapping[str, str]) -> dict:
    """`config` with the console calling the services of this process on its own port, unless
    the environment says where each is: the default (`:8000`) is wrong for a process started on
    another port, as the tests and a second local run do."""
    if "console" not in names:
        return config
    own = f"http://127.0.0.1:{config['HTTP_PORT']}"
    return {**config, **{f"CONSOLE_{name.upper()}_URL": own for name in names
                         if f"CONSOLE_{name.upper()}_URL" in config
                         and f"CONSOLE_{name.upper()}_URL" not in env}}


def run(names: list[str]) -> None:
    """Start the nameko services and the HTTP server, and block until SIGTERM / SIGINT."""
    config = served_here(load_config(), names, os.environ)
    configure_logging(config["LOG_LEVEL"])
    topology.declare(config["AMQP_URI"], int(config["EVENT_RETRY_DELAY_MS"]),
                     config["AMQP_QUEUE_TYPE"])
    runner = ServiceRunner(config)
    for name in names:
        runner.add_service(service_class(name))
    runner.start()
    wsgi = build_wsgi(runner, names)
    # What start-up built (modules, schemas, apps, indexes) lives as long as the process:
    # frozen, the cyclic collector stops re-scanning it, and with a higher first threshold it
    # runs less often — most of a request's objects are freed by reference counting before.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    listener = eventlet.listen((config["HTTP_HOST"], int(config["HTTP_PORT"])))
    server = eventlet.spawn(eventlet.wsgi.server, listener, wsgi, log_output=False,
                            max_size=2000, keepalive=True)
    log.info("started", extra={"services": names, "port": int(config["HTTP_PORT"])})

    def shutdown(signum, frame):
        log.info("stopping", extra={"signal": signum})
        server.kill()
        eventlet.spawn(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.wait()
