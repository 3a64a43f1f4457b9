"""What every console page is made with: the session of the request and the role check,
rendering with the security headers, cookies, redirects, CSRF, and how a service that is away
or refuses is shown.

`pages.blueprint` builds one `Kit` over the console's parts and hands it to each area of pages
(`pages` itself, `coordination`, …), which register their routes on the one blueprint.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Response, make_response, redirect, render_template, request

from services.common.codes import display_tracking_code
from services.console import domain
from services.console.bootstrap import ConsoleParts
from services.console.clients import ServiceRefused, ServiceUnavailable
from services.console.routing_client import RoutingRefused, RoutingUnavailable

SESSION_COOKIE = "acikkapi_console"
PENDING_COOKIE = "acikkapi_console_2fa"
LOGIN_CSRF_COOKIE = "acikkapi_console_csrf"
PATH = "/console"
CSP = ("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
STATES_TR = {
    "received": "alındı", "assigned": "atandı", "acknowledged": "okundu",
    "in_progress": "çalışılıyor", "waiting_citizen": "vatandaş bekleniyor",
    "resolved": "çözüldü, onay bekliyor", "closed": "kapatıldı", "referred": "yönlendirildi",
    "answered": "yanıtlandı", "merged": "birleştirildi",
}


def secured(response: Response) -> Response:
    """`response` with the console's security headers (CSP, no sniffing, no framing, no
    referrer, never cached)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


class Kit:
    """The page helpers over one console's parts (its logins, settings and time zone)."""

    def __init__(self, parts: ConsoleParts):
        self.parts = parts
        self.logins = parts.logins
        self.secure_setting = str(parts.config.get("CONSOLE_SECURE_COOKIES", "auto")).lower()
        self.zone = ZoneInfo(parts.config.get("REPORT_TIMEZONE") or "Europe/Istanbul")

    def local(self, at: datetime | str | None) -> str:
        """A moment as staff read it: `dd.mm.yyyy HH:MM` in the console's time zone."""
        if not at:
            return "—"
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        return at.astimezone(self.zone).strftime("%d.%m.%Y %H:%M")

    def page(self, template: str, status: int = 200, **context) -> Response:
        return secured(make_response(render_template(
            template, local=self.local, states=STATES_TR, code=display_tracking_code,
            **context), status))

    def cookie(self, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True,
                            samesite="Strict",
                            secure=domain.secure_cookie(request.host, self.secure_setting))

    def forget(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path=PATH, httponly=True, samesite="Strict",
                               secure=domain.secure_cookie(request.host, self.secure_setting))

    def to(self, path: str) -> Response:
        """A 303 to `path` (after a POST: the browser GETs it)."""
        return secured(redirect(path, code=303))

    def current(self) -> dict | None:
        return self.logins.session(request.cookies.get(SESSION_COOKIE))

    def member(self, allowed: Callable[[str], bool], title: str,
               refusal: str) -> dict | Response:
        """The signed-in session when its role may see the page (`allowed(role)`); else the
        sign-in page, or a 403 page with `title` and `refusal` (`{role}` is the role). A POST
        must also carry the session's CSRF token (403 otherwise, nothing changed)."""
        session = self.current()
        if session is None:
            return self.signed_out()
        if not allowed(session["role"]):
            return self.page("console/message.html", 403, session=session, title=title,
                             message=refusal.format(role=session["role"]))
        if request.method == "POST" and not self.same(session["csrf"],
                                                      request.form.get("csrf")):
            return self.csrf_refused(session)
        return session

    def signed_out(self) -> Response:
        answer = self.to(f"{PATH}/giris")
        if request.cookies.get(SESSION_COOKIE):
            self.forget(answer, SESSION_COOKIE)
        return answer

    def csrf_refused(self, session: dict | None = None) -> Response:
        return self.page("console/message.html", 403, session=session,
                         title="Güvenlik anahtarı geçersiz / security token refused",
                         message="Formun güvenlik anahtarı (csrf) eksik ya da yanlış; hiçbir "
                                 "şey değiştirilmedi. Sayfayı yenileyip yeniden deneyin. / The "
                                 "form's security token (csrf) is missing or wrong; nothing was "
                                 "changed. Reload the page and try again.")

    @staticmethod
    def same(expected: str | None, given: str | None) -> bool:
        """Two secrets equal, compared in constant time (neither may be empty)."""
        return bool(expected) and bool(given) and hmac.compare_digest(
            str(expected).encode(), str(given).encode())

    def unavailable(self, session: dict) -> Response:
        return self.page("console/message.html", 503, session=session,
                         title="Vaka servisi yanıt vermiyor / the case service is not answering",
                         message="Vakalar şu anda okunamıyor ya da değiştirilemiyor; biraz "
                                 "sonra yeniden deneyin. / The cases cannot be read or changed "
                                 "right now; try again shortly.")

    def from_routing(self, session: dict, call: Callable) -> Response | dict:
        """`call()`'s answer, or the page saying why routing did not give it."""
        try:
            return call()
        except RoutingUnavailable:
            return self.unavailable(session)
        except RoutingRefused as refused:
            status = refused.status if refused.status in (401, 403, 404) else 422
            return self.page("console/message.html", status, session=session,
                             title="Gösterilemiyor / cannot be shown", message=refused.message)

    @staticmethod
    def section(call: Callable) -> dict:
        """One part of a page from one service: its answer, or why it is missing (the rest of
        the page is still shown)."""
        try:
            return {"data": call()}
        except ServiceUnavailable:
            return {"error": "Servis yanıt vermiyor; biraz sonra yeniden deneyin. / The "
                             "service is not answering; try again shortly.", "status": 503}
        except ServiceRefused as refused:
            return {"error": refused.message, "status": refused.status}
