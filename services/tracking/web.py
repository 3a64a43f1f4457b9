"""Tracking's HTTP surface: the JSON lookup API, the citizens' pages, the muhtar portal, Open311.

Codes travel in request bodies, never in a URL (URLs end up in logs and browser history), and
nothing here logs them. "No such code" and "wrong security code" get the same answer after the
same work (design §9; `lookup.Tracker`).

`POST /api/v1/track` is the hot path (thousands per second): `FastLookup` answers it as a plain
WSGI handler in front of Flask — same schema, same error shape, same metrics — because Flask's
request machinery alone costs more than the whole lookup. The flask-smorest view of the same
route stays registered so the OpenAPI document describes it; it is reached only when the app is
served without the fast path, and answers the same: both load the body with `TrackRequestSchema`
and run `look_up`.

`create_app(parts)` takes the process's `bootstrap.TrackingParts` (its store, catalogue, RPC
pools, `Tracker`): the nameko side works on the same objects.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, Response, request
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError

from services.common.fastpath import Answer, FastRoute, read_body
from services.common.web import create_app as create_service_app
from services.common.web import error_body, mongo_check, summary
from services.tracking import domain, muhtar, open311, pages, staff
from services.tracking.bootstrap import TrackingParts
from services.tracking.lookup import NotFound, Opened, Tracker, dumps
from services.tracking.ratelimit import Blocked, client_address
from services.tracking.schemas import (
    ReopenRequestSchema,
    SatisfactionRequestSchema,
    TrackingAnswerSchema,
    TrackRequestSchema,
    load_track_request,
)

PREFIXES = ("/api/v1/track", "/open311/v2", "/t/", "/takip", "/muhtar")
TRACK = "/api/v1/track"
NOT_FOUND = "Takip kodu veya güvenlik kodu hatalı / tracking or security code is wrong"
LIMITED = ("Çok fazla deneme yapıldı; lütfen daha sonra tekrar deneyin / too many attempts; "
           "please try again later")
BODY_MAX = 4096  # a lookup is two short codes; anything larger is not one


def refusal(outcome: NotFound | Blocked) -> tuple[int, dict, list[tuple[str, str]]]:
    """The status, error body and headers of a refused lookup."""
    if isinstance(outcome, Blocked):
        return 429, error_body(429, "Too Many Requests", LIMITED), [
            ("Retry-After", str(outcome.retry_after))]
    return 404, error_body(404, "Not Found", NOT_FOUND), []


def look_up(tracker: Tracker, payload: dict, address: str, now: datetime) -> Answer:
    """The lookup use case, as both `POST /api/v1/track` routes answer it: the client and the
    code counted together with the attempt (`Tracker.lookup`), the public view rendered once
    per read-model version (`Tracker.view_json`), or the refusal."""
    outcome = tracker.lookup(payload["tracking_code"], payload["security_code"], address,
                             now=now)
    if isinstance(outcome, Opened):
        # Confidential applications answer here too: the holder of both codes is the applicant.
        body = tracker.view_json(outcome.application_id)
        if body is not None:
            return 200, body, []
        outcome = NotFound()
    return refusal(outcome)


class FastLookup(FastRoute):
    """`POST /api/v1/track` as plain WSGI; everything else goes to Flask."""

    def __init__(self, app: Callable, tracker: Tracker):
        super().__init__(app, "tracking", "POST", TRACK)
        self.tracker = tracker

    def answer(self, environ: dict) -> Answer:
        tracker = self.tracker
        address = client_address(environ, tracker.trusted_hops)
        now = tracker.limiter.clock()  # one clock read for both gates
        blocked = tracker.limiter.known_blocked(address, "lookup", now)
        if blocked is not None:
            return refusal(blocked)
        payload = self.payload(environ)
        if isinstance(payload, tuple):
            # Counted all the same: a client over its limit is refused whatever it sends.
            blocked = tracker.gate(address, now=now)
            return refusal(blocked) if blocked is not None else payload
        # The client is counted together with the lookup (`Tracker.lookup`).
        return look_up(tracker, payload, address, now)

    @staticmethod
    def payload(environ: dict) -> dict | tuple[int, dict, list[tuple[str, str]]]:
        """The lookup's payload, or the answer refusing the body (413, 400 or 422)."""
        raw = read_body(environ, BODY_MAX)
        if raw is None:
            return 413, error_body(413, "Content Too Large", "request body too large"), []
        data: object = {}
        if "json" in (environ.get("CONTENT_TYPE") or "") and raw:
            try:
                data = json.loads(raw)
            except ValueError:
                message = "Invalid JSON body."
                return 400, error_body(400, "Bad Request", message, {"json": [message]}), []
        try:
            return load_track_request(data)
        except ValidationError as exc:
            errors = {"json": exc.messages}
            return 422, error_body(422, "Unprocessable Entity", summary(errors), errors), []


def _json(view: dict, status: int) -> Response:
    """The view as built (`domain.public_view` is JSON-ready; the schema documents it)."""
    return Response(dumps(view), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


def _opened(tracker: Tracker, payload: dict) -> dict:
    """Gate, open and return the read model, or abort with the refusal (for the siblings)."""
    address = client_address(request.environ, tracker.trusted_hops)
    # One clock read: the client and the code are counted in the same windows.
    now = tracker.limiter.clock()
    blocked = tracker.gate(address, now=now)
    outcome = blocked or tracker.open(payload["tracking_code"], payload["security_code"],
                                      address, now=now)
    if isinstance(outcome, Opened):
        doc = tracker.doc(outcome.application_id)
        if doc is not None:
            return doc
        outcome = NotFound()
    status, body, headers = refusal(outcome)
    abort(status, message=body["message"], headers=dict(headers))
    raise AssertionError("unreachable")  # abort raises


def api_blueprint(tracker: Tracker) -> Blueprint:
    """`POST /api/v1/track` and its siblings `/reopen` and `/satisfaction`."""
    track = Blueprint("track", __name__, url_prefix=TRACK,
                      description="Başvuru takibi / application tracking")

    @track.route("", methods=["POST"])
    @track.arguments(TrackRequestSchema)
    @track.response(200, TrackingAnswerSchema)
    @track.alt_response(404, description="unknown tracking code or wrong security code")
    @track.alt_response(422, description="a field is wrong; `errors` names it")
    @track.alt_response(429, description="too many attempts from this client or on this code")
    def lookup(payload: dict):
        """An application's status and timeline, for the holder of both codes."""
        # What `FastLookup` answers, when the app is served without it.
        address = client_address(request.environ, tracker.trusted_hops)
        status, body, headers = look_up(tracker, payload, address, tracker.limiter.clock())
        if status != 200:  # with the headers the fast path sends (`FastRoute`)
            abort(status, message=body["message"],
                  headers={"Cache-Control": "no-store", **dict(headers)})
        return Response(body, status=status, mimetype="application/json",
                        headers={"Cache-Control": "no-store"})

    @track.route("/reopen", methods=["POST"])
    @track.arguments(ReopenRequestSchema)
    @track.response(202, TrackingAnswerSchema)
    @track.alt_response(404, description="unknown tracking code or wrong security code")
    @track.alt_response(409, description="the application cannot be reopened now; says why")
    @track.alt_response(429, description="too many attempts")
    def reopen(payload: dict):
        """Ask to reopen a concluded application (within the category's period), with a reason.

        Answered at once with "reopen requested"; routing decides, and the timeline shows it.
        """
        doc = _opened(tracker, payload)
        try:
            return _json(tracker.view(tracker.reopen(doc, payload["reason"])), 202)
        except domain.NotAllowed as refused:
            abort(409, message=refused.message, errors={"json": {"reason": [refused.code]}})

    @track.route("/satisfaction", methods=["POST"])
    @track.arguments(SatisfactionRequestSchema)
    @track.response(201, TrackingAnswerSchema)
    @track.alt_response(404, description="unknown tracking code or wrong security code")
    @track.alt_response(409, description="nothing to rate yet, or already rated")
    @track.alt_response(429, description="too many attempts")
    def satisfaction(payload: dict):
        """Rate the result of a concluded application, once per result."""
        doc = _opened(tracker, payload)
        try:
            return _json(tracker.view(tracker.rate(doc, payload["score"],
                                                   payload.get("comment"))), 201)
        except domain.NotAllowed as refused:
            abort(409, message=refused.message, errors={"json": {"score": [refused.code]}})

    return track


def create_app(parts: TrackingParts) -> Flask:
    """Tracking's Flask app over the process's parts (the objects its nameko side uses)."""
    config, tracker = parts.config, parts.tracker
    app = create_service_app(
        "tracking", config, [api_blueprint(tracker), staff.blueprint(tracker)],
        title="Açık Kapı — Tracking",
        description="Public status and timeline of applications, by tracking and security code. "
                    "Citizen pages at /takip, the muhtar portal at /muhtar, Open311 GeoReport v2 "
                    "at /open311/v2/discovery.xml.",
        health_checks=[mongo_check(parts.store.db)],
    )
    app.config.update(
        SESSION_COOKIE_NAME="ak_oturum",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config["PUBLIC_BASE_URL"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
    )
    app.secret_key = pages.session_key(config["LINK_SECRET"])
    app.register_blueprint(pages.blueprint(tracker, config))
    app.register_blueprint(muhtar.blueprint(tracker, parts.store, parts.rpc, parts.catalogue,
                                            parts.organisation, config))
    app.register_blueprint(open311.blueprint(tracker, parts.store, parts.rpc, parts.catalogue,
                                             parts.organisation, parts.listing, config))
    app.wsgi_app = FastLookup(app.wsgi_app, tracker)  # type: ignore[method-assign]
    return app
