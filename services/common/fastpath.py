"""Plain-WSGI handlers for the few hot routes, in front of a service's Flask app.

Flask's request machinery (request context, URL map, webargs, flask-smorest's response wrappers)
costs more CPU than a tracking lookup or an application's whole acceptance. A `FastRoute`
answers one method and path itself — same schema, same error shape, same metrics — and hands
everything else to Flask. The flask-smorest view of the same route stays registered: the
OpenAPI document describes it, and a fast route may give a request back to it (`DELEGATE`), for
example to produce the canonical answer to anything unusual.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus

from services.common import metrics
from services.common.web import error_body

log = logging.getLogger(__name__)

Answer = tuple[int, "dict | bytes", list[tuple[str, str]]]
DELEGATE = None  # `answer` returns this to let Flask handle the request


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, as the Flask apps answer."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def read_body(environ: dict, limit: int) -> bytes | None:
    """The request body, or None when it is missing a length or is longer than `limit`.

    The body read is put back as `wsgi.input`, so the request can still be delegated to Flask.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length > limit:
        return None
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


@functools.lru_cache(maxsize=64)
def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class FastRoute:
    """Answers `method path` with `answer(environ)`; every other request goes to `app`."""

    def __init__(self, app: Callable, service: str, method: str, path: str):
        self.app = app
        self.service = service
        self.method = method
        self.path = path
        self._counters: dict[int, object] = {}
        self._latency = metrics.HTTP_LATENCY.labels(service, method, path)

    def answer(self, environ: dict) -> Answer | None:
        """The status, JSON body (a dict or encoded bytes) and extra headers; or `DELEGATE`."""
        raise NotImplementedError

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != self.method:
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            result = self.answer(environ)
        except Exception:
            log.exception("unhandled error", extra={"path": self.path})
            result = 500, error_body(500, "Internal Server Error",
                                     "internal error; nothing was changed"), []
        if result is DELEGATE:
            return self.app(environ, start_response)
        status, payload, headers = result
        body = payload if isinstance(payload, bytes) else dumps(payload)
        start_response(_status_line(status), [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"), *headers])
        counted = self._counters.get(status)
        if counted is None:  # labelled children are looked up once, not per request
            counted = self._counters[status] = metrics.HTTP_REQUESTS.labels(
                self.service, self.method, self.path, str(status))
        counted.inc()
        self._latency.observe(time.perf_counter() - started)
        return [body]
