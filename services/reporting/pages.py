"""Reporting's dashboard page (`/raporlar/`): staff only, server-rendered, in Turkish with English
beside it, with charts drawn by Chart.js (vendored, pinned, served from here: no CDN).

It shows, within the caller's scope (`domain.report_scope`, as the API):
- the headline figures of the period (received, concluded, open, overdue, satisfaction, the
  resolution time);
- received against concluded over time;
- the top categories;
- neighbourhoods by volume, as a heat table;
- SLA compliance by unit;
- the backlog by age.

Every chart has its numbers in a table beside it (readable without the script, and by screen
readers); the script only draws what the page already says. The numbers come from the same
`Reports` calls as the API, so the page and the API cannot disagree.

Until the staff console (issue 13) brings accounts, a staff member opens the page with the
staff token they use for the API: pasted once at `/raporlar/giris`, kept in an HttpOnly,
SameSite=Strict cookie (Secure over HTTPS) for the token's own lifetime.
"""
from __future__ import annotations

from collections.abc import Callable

import jwt
from flask import Blueprint, Response, make_response, redirect, render_template, request
from marshmallow import ValidationError

from services.common.auth import Staff, verify_token
from services.reporting import domain
from services.reporting.reports import Reports
from services.reporting.schemas import SeriesQuerySchema

COOKIE = "acikkapi_staff"
TOP_CATEGORIES = 10
TOP_NEIGHBOURHOODS = 20
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'")


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(template: str, status: int = 200, **context) -> Response:
    return _secured(make_response(render_template(template, **context), status))


def blueprint(reports: Reports, secret: str,
              family: Callable[[str], list[str]]) -> Blueprint:
    """The dashboard's routes on `reports`, tokens checked with `secret`, institution scopes
    through `family` (routing's directory)."""
    pages = Blueprint("report_pages", __name__, url_prefix="/raporlar",
                      template_folder="templates", static_folder="static")

    def staff() -> Staff | None:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else \
            request.cookies.get(COOKIE, "")
        if not token:
            return None
        try:
            return verify_token(secret, token)
        except jwt.InvalidTokenError:
            return None

    @pages.get("/giris")
    def sign_in_form():
        return _page("reporting/sign_in.html", errors={})

    @pages.post("/giris")
    def sign_in():
        token = (request.form.get("token") or "").strip()
        try:
            who = verify_token(secret, token)
        except jwt.InvalidTokenError:
            return _page("reporting/sign_in.html", 422, errors={
                "token": "Geçersiz ya da süresi dolmuş anahtar / invalid or expired token"})
        if who.role not in domain.REPORT_ROLES:
            return _page("reporting/sign_in.html", 403, errors={
                "token": f"{who.role} rolü raporları göremez / role {who.role} has no reports"})
        answer = redirect("/raporlar/", code=303)
        answer.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                          secure=request.is_secure, path="/raporlar")
        return _secured(answer)

    @pages.post("/cikis")
    def sign_out():
        answer = redirect("/raporlar/giris", code=303)
        answer.delete_cookie(COOKIE, path="/raporlar")
        return _secured(answer)

    @pages.get("/")
    def dashboard():
        who = staff()
        if who is None:
            return _secured(redirect("/raporlar/giris", code=303))
        if who.role not in domain.REPORT_ROLES:
            return _page("reporting/refused.html", 403, message=f"{who.role}: raporlar yok")
        try:
            asked = SeriesQuerySchema().load(request.args)
        except ValidationError as error:
            return _page("reporting/refused.html", 422, message="; ".join(
                f"{field}: {' '.join(map(str, problems))}"
                for field, problems in error.messages.items()))
        try:
            match = domain.report_scope(who.role, who.unit, who.institution, asked, family)
        except domain.OutOfScope as refused:
            return _page("reporting/refused.html", 403,
                         message=f"{refused.field}: {refused.message}")
        summary = reports.summary(asked.get("first"), asked.get("last"), match)
        series = reports.series(summary["first"], summary["last"], asked["granularity"], match)
        backlog = reports.backlog(match)
        neighbourhoods = summary["by_neighbourhood"][:TOP_NEIGHBOURHOODS]
        busiest = max((row["count"] for row in neighbourhoods), default=0)
        data = {
            "trend": {"labels": [row["period"] for row in series["items"]],
                      "received": [row["received"] for row in series["items"]],
                      "concluded": [row["concluded"] for row in series["items"]]},
            "categories": {"labels": [row["key"] or "—" for row in
                                      summary["by_category"][:TOP_CATEGORIES]],
                           "counts": [row["count"] for row in
                                      summary["by_category"][:TOP_CATEGORIES]]},
            "sla": {"labels": [row.get("name") or row["key"] for row in summary["sla_by_unit"]],
                    "read": [_percent(row["read_compliance"]) for row in summary["sla_by_unit"]],
                    "resolve": [_percent(row["resolve_compliance"])
                                for row in summary["sla_by_unit"]]},
            "backlog": {"labels": [row["key"] for row in backlog["by_age"] or []],
                        "counts": [row["count"] for row in backlog["by_age"] or []]},
        }
        return _page("reporting/dashboard.html", who=who, asked=asked, summary=summary,
                     series=series, backlog=backlog, data=data, neighbourhoods=neighbourhoods,
                     heat=lambda count: round(count / busiest, 2) if busiest else 0,
                     percent=_percent, scope=_scope_text(who))

    return pages


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def _scope_text(who: Staff) -> str:
    if who.role in domain.UNIT_ROLES:
        return f"birim / unit {who.unit}"
    if who.institution:
        return f"kurum / institution {who.institution}"
    return "tümü / everything"
