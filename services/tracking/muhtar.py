"""The muhtar portal (seed 003) over HTTP: login with a one-time code, the lists, a new request.

The muhtar registry lives in intake: `intake.identify_muhtar(tckn, first_name, last_name)` names
the muhtar's pseudonymous ref (or None), notify's `send_one_time_code(ref, code)` sends the code
to the registered phone, and `intake.submit_application(payload)` files a new request. All three
are RPCs through the process's `RpcPool` (`TrackingParts.rpc`). The TCKN and names pass through
to intake and are kept nowhere here; the session cookie carries only a random id of a server-side
session.

Whether or not the details match a muhtar, the answer and the next step are the same ("if the
details are right, a code was sent"), so the portal cannot be used to find out who is a muhtar.
"""
from __future__ import annotations

import logging

import eventlet
from flask import Blueprint, Response, redirect, request, session
from marshmallow import ValidationError
from nameko.exceptions import RemoteError

from services.common.catalogue_cache import CatalogueCache
from services.common.events import KINDS, utcnow
from services.common.refusals import SubmissionRefused
from services.common.rpc import RpcPool
from services.tracking import domain, portal
from services.tracking.lookup import Tracker
from services.tracking.organisation import Organisation
from services.tracking.pages import csrf_ok, expired_form, field_errors, limited, page
from services.tracking.ratelimit import client_address
from services.tracking.schemas import MuhtarCodeSchema, MuhtarLoginSchema, MuhtarRequestSchema
from services.tracking.store import TrackingStore

log = logging.getLogger(__name__)

LISTS = (("pending", "Bekleyen Taleplerim", "Pending"),
         ("forwarded", "Yönlendirilen Taleplerim", "Forwarded"),
         ("concluded", "Sonuçlanan Taleplerim", "Concluded"))


def unavailable() -> Response:
    return page("message.html", 503, title_tr="Hizmet şu anda yanıt vermiyor",
                title_en="The service is not answering right now",
                text_tr="Lütfen birkaç dakika sonra tekrar deneyin.",
                text_en="Please try again in a few minutes.", link="/muhtar")


def blueprint(tracker: Tracker, store: TrackingStore, rpc: RpcPool,
              catalogue: CatalogueCache, organisation: Organisation,
              config: dict) -> Blueprint:
    """`/muhtar…`: login, code, lists, new request, logout."""
    bp = Blueprint("muhtar", __name__, url_prefix="/muhtar")
    key = portal.portal_key(config["CODE_PEPPER"])
    login_schema, code_schema, request_schema = (MuhtarLoginSchema(), MuhtarCodeSchema(),
                                                 MuhtarRequestSchema())
    sorted_for: list = [None, []]  # (catalogue, muhtar categories first), rebuilt on change

    def categories() -> list:
        current = catalogue.get()
        if sorted_for[0] is not current:
            sorted_for[:] = [current, sorted(current.values(),
                                             key=lambda c: (not c.muhtar, c.name_tr))]
        return sorted_for[1]

    def client() -> str:
        return client_address(request.environ, tracker.trusted_hops)

    def current_ref() -> str | None:
        session_id = session.get("muhtar")
        entry = store.get_login(session_id) if session_id else None
        return entry["citizen_ref"] if portal.session_valid(entry, utcnow()) else None

    def login_page(status: int = 200, **context) -> Response:
        question_tr, question_en, answer = portal.new_challenge()
        expires_at = utcnow() + portal.CAPTCHA_TTL
        captcha_id = portal.new_id(expires_at)
        store.save_captcha(captcha_id, portal.digest(key, captcha_id, answer), expires_at)
        return page("muhtar/login.html", status, captcha_id=captcha_id,
                    question_tr=question_tr, question_en=question_en, **context)

    def new_request_page(status: int = 200, **context) -> Response:
        return page("muhtar/new.html", status, kinds=[(k, *domain.KIND_NAMES[k]) for k in KINDS],
                    categories=categories(), places=organisation.places, **context)

    @bp.get("")
    def start():
        """The login form, or the lists for a muhtar already in."""
        if current_ref():
            return redirect("/muhtar/talepler", code=303)
        return login_page()

    @bp.post("/giris")
    def login():
        """TCKN + name + challenge → a one-time code to the registered phone."""
        if not csrf_ok():
            return expired_form()
        blocked = tracker.gate(client(), "portal")
        if blocked is not None:
            return limited(blocked)
        typed = {k: (request.form.get(k) or "").strip() for k in login_schema.fields}
        try:
            form = login_schema.load({k: v for k, v in typed.items() if v})
        except ValidationError as exc:
            return login_page(422, errors=field_errors(exc.messages),
                              first_name=typed["first_name"], last_name=typed["last_name"])
        challenge = store.take_captcha(form["captcha_id"])
        now = utcnow()
        if (challenge is None or challenge["expires_at"] <= now
                or challenge["digest"] != portal.digest(key, form["captcha_id"],
                                                        form["captcha_answer"])):
            return login_page(422, errors={"captcha_answer": "Cevap hatalı ya da süresi doldu; "
                                           "yeni soruyu cevaplayın. / Wrong or expired answer; "
                                           "please answer the new question."},
                              first_name=typed["first_name"], last_name=typed["last_name"])
        try:
            citizen_ref = rpc.call("intake", "identify_muhtar", form["tckn"],
                                   form["first_name"], form["last_name"])
        except Exception as exc:
            log.warning("muhtar lookup failed", extra={"error": type(exc).__name__})
            return unavailable()
        code = portal.new_one_time_code()
        login_entry = portal.new_login(key, citizen_ref or None, code, now)
        store.save_login(login_entry)
        if citizen_ref:
            # Not waited for: the answer must not take longer for a real muhtar than for
            # anyone else. A failed send shows up as a code that never arrives (and a log line).
            eventlet.spawn_n(send_code, citizen_ref, code)
        session.pop("muhtar", None)
        session["muhtar_login"] = login_entry["_id"]
        return redirect("/muhtar/dogrula", code=303)

    def send_code(citizen_ref: str, code: str) -> None:
        try:
            sent = rpc.call("notify", "send_one_time_code", citizen_ref, code)
        except Exception as exc:
            log.warning("one-time code not sent", extra={"error": type(exc).__name__})
            return
        if not sent:
            log.warning("one-time code not sent", extra={"error": "no phone"})

    @bp.get("/dogrula")
    def code_form():
        if not session.get("muhtar_login"):
            return redirect("/muhtar", code=303)
        return page("muhtar/code.html")

    @bp.post("/dogrula")
    def verify():
        """The one-time code → a fresh server-side session."""
        if not csrf_ok():
            return expired_form()
        blocked = tracker.gate(client(), "portal")
        if blocked is not None:
            return limited(blocked)
        login_id = session.get("muhtar_login")
        if not login_id:
            return redirect("/muhtar", code=303)
        try:
            form = code_schema.load({"code": (request.form.get("code") or "").strip()})
        except ValidationError as exc:
            return page("muhtar/code.html", 422, errors=field_errors(exc.messages))
        now = utcnow()
        # Each attempt wins its own numbered slot: concurrent guesses are all counted.
        entry = store.count_login_attempt(login_id, portal.CODE_ATTEMPTS)
        # The login is spent by the one delete that removes it: two right answers sent at once
        # make one session, and the other is refused below (its login is gone).
        matched = portal.code_matches(key, entry, form["code"], now)
        if matched and store.drop_login(login_id):
            active = portal.new_session(entry["citizen_ref"], now)
            store.save_login(active)
            session.clear()  # a new session after login: nothing carried over
            session.permanent = True
            session["muhtar"] = active["_id"]
            return redirect("/muhtar/talepler", code=303)
        if matched or entry is None or entry["attempts"] >= portal.CODE_ATTEMPTS or (
                entry["expires_at"] <= now):
            if entry is not None:
                store.drop_login(login_id)
            session.pop("muhtar_login", None)
            return page("message.html", 422, title_tr="Kod geçersiz",
                        title_en="The code is not valid",
                        text_tr="Kodun süresi doldu ya da çok fazla deneme yapıldı. Lütfen "
                                "yeniden giriş yapın.",
                        text_en="The code expired or was tried too often. Please log in again.",
                        link="/muhtar")
        return page("muhtar/code.html", 422,
                    errors={"code": "Kod hatalı. / The code is wrong."})

    @bp.get("/talepler")
    def lists():
        """Pending / Forwarded / Concluded, with date, subject, place and movements."""
        citizen_ref = current_ref()
        if citizen_ref is None:
            return redirect("/muhtar", code=303)
        groups = portal.group_requests(store.muhtar_applications(citizen_ref),
                                       tracker.category_names)
        return page("muhtar/lists.html", groups=groups, lists=LISTS)

    @bp.get("/yeni")
    def new_request_form():
        if current_ref() is None:
            return redirect("/muhtar", code=303)
        return new_request_page()

    @bp.post("/yeni")
    def new_request():
        """File a request through intake; its codes are shown once."""
        if not csrf_ok():
            return expired_form()
        citizen_ref = current_ref()
        if citizen_ref is None:
            return redirect("/muhtar", code=303)
        typed = {k: (request.form.get(k) or "").strip() for k in request_schema.fields}
        typed["confidential"] = "true" if request.form.get("confidential") else "false"
        try:
            form = request_schema.load({k: v for k, v in typed.items() if v})
        except ValidationError as exc:
            return new_request_page(422, errors=field_errors(exc.messages), form=typed)
        province, _, district = form["district"].partition("/")
        payload = {
            "kind": form["kind"], "category": form["category"], "channel": "muhtar",
            "caller_type": "muhtar", "citizen_ref": citizen_ref,
            "description": form["description"], "confidential": form["confidential"],
            "location": {"province": province, "district": district or None,
                         "neighbourhood": form["neighbourhood"]},
        }
        try:
            created = rpc.call("intake", "submit_application", payload)
        except SubmissionRefused as refused:  # crosses RPC as itself: its fields, as named
            return new_request_page(422, errors=field_errors(refused.errors), form=typed)
        except RemoteError as error:
            log.warning("muhtar request failed", extra={"error": error.exc_type})
            return unavailable()
        except Exception as exc:
            log.warning("muhtar request failed", extra={"error": type(exc).__name__})
            return unavailable()
        return page("muhtar/created.html", 201, created=created)

    @bp.post("/cikis")
    def logout():
        if csrf_ok():
            session_id = session.get("muhtar")
            if session_id:
                store.drop_login(session_id)
            session.clear()
        return redirect("/muhtar", code=303)

    return bp
