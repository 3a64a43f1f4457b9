"""The citizens' pages: look an application up, follow it, reopen it, rate the result.

Server-rendered Jinja2 (Turkish first, English beside it), usable without JavaScript, mobile
first, with labels, visible focus and error summaries (WCAG 2.1 AA basics). Codes go in POST
bodies only. A successful lookup — or a valid signed SMS link `/t/<token>` — puts the application
id in the signed session cookie for a short while and sends the browser on to the status page
(a lookup by 303; the link by an immediate refresh from a small page, see `signed_link`), so
neither codes nor the link token stay in the address bar, and reloading never re-posts codes.
From the status page the citizen can rate the result (1–5) and ask to reopen it: a link from the
SMS is enough, no code is typed.

Every form carries a CSRF token bound to the session (synchronizer token); the session cookie is
HttpOnly and SameSite=Strict.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, render_template, request, session
from marshmallow import ValidationError

from services.common.links import read_link_token
from services.tracking import domain
from services.tracking.lookup import Opened, Tracker
from services.tracking.ratelimit import Blocked, client_address
from services.tracking.schemas import TEXT_MAX, TrackRequestSchema

VIEW_SECONDS = 30 * 60  # how long a lookup keeps the status page open
TEMPLATE_FOLDER = "templates"


def session_key(link_secret: str) -> str:
    """The Flask session key, derived from `LINK_SECRET` (one secret fewer to configure)."""
    return hmac.new(link_secret.encode(), b"acikkapi.tracking.session",
                    hashlib.sha256).hexdigest()


# -- shared by the pages and the muhtar portal --------------------------------------------------

def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok() -> bool:
    """Whether the posted form carries the session's CSRF token."""
    expected = session.get("csrf") or ""
    given = request.form.get("csrf_token") or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def page(template: str, status: int = 200, **context) -> Response:
    """Render a page with the CSRF token, uncached (every page here is someone's own)."""
    response = Response(render_template(template, csrf_token=csrf_token(), **context),
                        status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    # A signed link's token must not leak to another site through the Referer header.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def expired_form() -> Response:
    return page("message.html", 400, title_tr="Formun süresi doldu",
                title_en="The form expired",
                text_tr="Lütfen sayfayı yenileyip tekrar deneyin.",
                text_en="Please reload the page and try again.")


def limited(blocked: Blocked) -> Response:
    response = page("message.html", 429, title_tr="Çok fazla deneme",
                    title_en="Too many attempts",
                    text_tr=f"Lütfen {max(1, blocked.retry_after // 60)} dakika sonra tekrar "
                            "deneyin.",
                    text_en="Please try again later.")
    response.headers["Retry-After"] = str(blocked.retry_after)
    return response


_REQUIRED = "Missing data for required field."
_REQUIRED_TEXT = "Bu alan zorunludur. / This field is required."


def field_errors(messages: dict) -> dict[str, str]:
    """marshmallow's messages as one line per field, for the form (Turkish first)."""
    out = {}
    for field, value in messages.items():
        if isinstance(value, dict):
            value = [msg for msgs in value.values() for msg in msgs]
        items = value if isinstance(value, list) else [value]
        out[field] = " ".join(_REQUIRED_TEXT if v == _REQUIRED else str(v) for v in items)
    return out


def date_filter(zone: ZoneInfo):
    """A Jinja filter: an ISO time (or datetime) as `14.03.2025 09:15` in local time."""

    def tarih(value) -> str:
        if not value:
            return ""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(zone).strftime("%d.%m.%Y %H:%M")

    return tarih


# -- the citizens' pages ------------------------------------------------------------------------

def blueprint(tracker: Tracker, config: dict) -> Blueprint:
    """`/`, `/takip…` and `/t/<token>`."""
    pages = Blueprint("pages", __name__, template_folder=TEMPLATE_FOLDER)
    link_secret = config["LINK_SECRET"]
    zone = ZoneInfo(config.get("REPORT_TIMEZONE") or "Europe/Istanbul")
    schema = TrackRequestSchema()

    @pages.app_template_filter("tarih")
    def _tarih(value) -> str:
        return date_filter(zone)(value)

    def client() -> str:
        return client_address(request.environ, tracker.trusted_hops)

    def remember(application_id: str) -> None:
        session["view"] = {"id": application_id, "until": int(time.time()) + VIEW_SECONDS}

    def viewed() -> dict | None:
        """The application this browser may see now (from a lookup or a signed link)."""
        entry = session.get("view") or {}
        if not entry or entry.get("until", 0) < time.time():
            return None
        return tracker.doc(entry["id"])

    @pages.get("/")
    def home():
        """The citizens' front door: apply, follow, muhtar portal."""
        return page("home.html")

    @pages.get("/takip")
    def track_form():
        """The lookup form: tracking code and security code."""
        return page("track_form.html")

    @pages.post("/takip")
    def track():
        if not csrf_ok():
            return expired_form()
        # One clock read (the limiter's): the client and the code are counted in one window.
        now = tracker.limiter.clock()
        blocked = tracker.gate(client(), now=now)
        if blocked is not None:
            return limited(blocked)
        typed = {"tracking_code": request.form.get("tracking_code", ""),
                 "security_code": request.form.get("security_code", "")}
        try:
            payload = schema.load({k: v for k, v in typed.items() if v.strip()})
        except ValidationError as exc:
            return page("track_form.html", 422, errors=field_errors(exc.messages),
                        tracking_code=typed["tracking_code"][:32])
        outcome = tracker.open(payload["tracking_code"], payload["security_code"], client(),
                               now=now)
        if isinstance(outcome, Blocked):
            return limited(outcome)
        if not isinstance(outcome, Opened):
            return page("track_form.html", 404, not_found=True,
                        tracking_code=typed["tracking_code"][:32])
        remember(outcome.application_id)
        return redirect("/takip/basvuru", code=303)

    @pages.get("/t/<token>")
    def signed_link(token: str):
        """The link sent by SMS: the status without typing the codes."""
        blocked = tracker.gate(client())
        if blocked is not None:
            return limited(blocked)
        application_id = read_link_token(link_secret, token)
        doc = tracker.store.get(application_id) if application_id else None
        if not domain.is_visible(doc):
            return page("message.html", 404, title_tr="Bağlantı geçersiz",
                        title_en="The link is not valid",
                        text_tr="Bağlantının süresi dolmuş ya da bağlantı hatalı. Başvurunuzu "
                                "takip kodu ve güvenlik kodunuzla sorgulayabilirsiniz.",
                        text_en="The link has expired or is damaged. You can look your "
                                "application up with its tracking and security codes.",
                        link="/takip")
        remember(application_id)
        # Not a 303 to the status page: a link followed from another site (webmail, a
        # messaging app's web page) is a cross-site navigation, and the browser does not send
        # the SameSite=Strict session cookie on a redirect that continues it (measured in
        # Chromium) — the status page would find no session and ask for the codes. A refresh
        # from our own page is a same-site navigation, which does carry it.
        return page("link_opened.html", next="/takip/basvuru")

    @pages.get("/takip/basvuru")
    def status():
        """The status page of the application this browser opened."""
        doc = viewed()
        if doc is None:
            return redirect("/takip", code=303)
        return page("status.html", view=tracker.view(doc), reason_max=TEXT_MAX)

    def acting_on_viewed():
        """(the application on screen, None), or (None, the answer refusing the form)."""
        if not csrf_ok():
            return None, expired_form()
        doc = viewed()
        if doc is None:
            return None, redirect("/takip", code=303)
        blocked = tracker.gate(client())
        if blocked is not None:
            return None, limited(blocked)
        return doc, None

    @pages.post("/takip/yeniden-ac")
    def reopen():
        doc, refused_form = acting_on_viewed()
        if refused_form is not None:
            return refused_form
        reason = (request.form.get("reason") or "").strip()
        if not 3 <= len(reason) <= TEXT_MAX:
            return page("status.html", 422, view=tracker.view(doc), reason_max=TEXT_MAX,
                        errors={"reason": "Lütfen yeniden açma nedeninizi yazın (en az 3 "
                                          "karakter). / Please say why (at least 3 characters)."})
        try:
            tracker.reopen(doc, reason)
        except domain.NotAllowed as refused:
            return page("status.html", 409, view=tracker.view(doc), reason_max=TEXT_MAX,
                        errors={"reason": refused.message})
        flash("Yeniden açma talebiniz alındı. / Your request to reopen was received.")
        return redirect("/takip/basvuru", code=303)

    @pages.post("/takip/memnuniyet")
    def rate():
        doc, refused_form = acting_on_viewed()
        if refused_form is not None:
            return refused_form
        try:
            score = int(request.form.get("score") or 0)
        except ValueError:
            score = 0
        comment = (request.form.get("comment") or "").strip()[:TEXT_MAX] or None
        if not 1 <= score <= 5:
            return page("status.html", 422, view=tracker.view(doc), reason_max=TEXT_MAX,
                        errors={"score": "Lütfen 1 ile 5 arasında bir puan seçin. / Please "
                                         "choose a score from 1 to 5."})
        try:
            tracker.rate(doc, score, comment)
        except domain.NotAllowed as refused:
            return page("status.html", 409, view=tracker.view(doc), reason_max=TEXT_MAX,
                        errors={"score": refused.message})
        flash("Değerlendirmeniz için teşekkür ederiz. / Thank you for your rating.")
        return redirect("/takip/basvuru", code=303)

    @pages.post("/takip/kapat")
    def forget():
        """Close the status page on this browser (a shared computer)."""
        if csrf_ok():
            session.pop("view", None)
        return redirect("/takip", code=303)

    return pages
