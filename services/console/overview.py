"""Three console pages that read other services' figures for the signed-in user (issue 13):

- `sorgu`: the desk's and call centre's lookup by tracking code (seed 001: a caller reads out
  their code on the phone). The form POSTs the code (never in a URL) to tracking's staff lookup
  with the user's token; the page shows the application's status, category, unit, received
  time and timeline, and links to the case page. A code that cannot be one is a 422 naming
  `tracking_code` before anyone is asked; an unknown one is tracking's 404.
- `birim`: a supervisor's (and every role above's) unit overview: reporting's open backlog by
  age with the overdue count, SLA's at-risk and overdue cases, and the weekly and monthly
  report files, each a `Kit.section` of its own (a service away fails its section only);
  `birim/rapor/<id>` streams one file from reporting with its content type, scoped as
  reporting scopes it (another unit's file is reporting's 404).
- `pano`: the mayor's headline dashboard in the console (no pasted token): reporting's last 30
  days' summary and its daily received-against-concluded series, as tables with plain CSS bars
  (the CSP allows no inline style, so a bar's length is one of the classes `w0` … `w100`).

The console checks the role for the page (`domain.LOOKUP_ROLES`, `UNIT_OVERVIEW_ROLES`,
`DASHBOARD_ROLES`); the services decide every call again with the user's token.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from services.common.codes import normalise_tracking_code
from services.console import domain
from services.console.clients import ServiceRefused, ServiceUnavailable
from services.console.kit import Kit, secured

FILE_FORMATS = ("xlsx", "pdf")
TOP_CATEGORIES = 10


def bar_class(value: float | int | None, maximum: float | int | None) -> str:
    """The CSS class of a bar `value / maximum` long, in steps of 5 % (`w0` … `w100`); a
    value above nothing is at least `w5`, so it never looks like zero."""
    if not value or not maximum or value <= 0 or maximum <= 0:
        return "w0"
    share = min(1.0, float(value) / float(maximum))
    return f"w{max(5, round(share * 20) * 5)}"


def percent(share: float | None) -> str:
    """`0.8766` → `%87,7` as Turkish writes it; `—` for no share."""
    if share is None:
        return "—"
    return "%" + f"{share * 100:.1f}".replace(".", ",")


def top(counts: list[dict], size: int = TOP_CATEGORIES) -> list[dict]:
    """The `size` largest counts, largest first (ties by key, so the order is stable)."""
    return sorted(counts, key=lambda row: (-row["count"], str(row.get("key"))))[:size]


def register(pages: Blueprint, kit: Kit) -> None:
    """The lookup, unit overview and dashboard pages, on the console's blueprint."""
    parts = kit.parts
    page, member, section = kit.page, kit.member, kit.section

    def lookup_session() -> dict | Response:
        return member(domain.LOOKUP_ROLES.__contains__,
                      "Takip kodu sorgusu yok / no lookup by tracking code",
                      "{role} rolü takip koduyla sorgulama yapmaz. / "
                      "The role {role} does not look applications up by tracking code.")

    def lookup_page(session: dict, status: int = 200, **context) -> Response:
        return page("console/lookup.html", status, session=session, **context)

    @pages.get("/sorgu")
    def lookup_form():
        session = lookup_session()
        return session if isinstance(session, Response) else lookup_page(session)

    @pages.post("/sorgu")
    def lookup():
        session = lookup_session()
        if isinstance(session, Response):
            return session
        typed = request.form.get("tracking_code", "").strip()[:64]
        if normalise_tracking_code(typed) is None:  # tracking checks again; no call for this
            return lookup_page(session, 422, typed=typed, field="tracking_code",
                               error="Takip kodu geçersiz: 9 karakter, XXX-XXX-XXX; harfleri "
                                     "ve rakamları yeniden sorun. / Not a tracking code: 9 "
                                     "characters, XXX-XXX-XXX; ask for it again.")
        try:
            found = parts.tracking.look_up(session, typed)
        except ServiceUnavailable:
            return lookup_page(session, 503, typed=typed,
                               error="Takip servisi yanıt vermiyor; biraz sonra yeniden "
                                     "deneyin. / The tracking service is not answering; try "
                                     "again shortly.")
        except ServiceRefused as refused:
            if refused.status == 404:
                return lookup_page(session, 404, typed=typed, field="tracking_code",
                                   error="Bu takip koduyla başvuru bulunamadı; kodu vatandaşa "
                                         "yeniden okutun. / No application has this tracking "
                                         "code; ask the caller to read it again.")
            status = refused.status if refused.status in (401, 403) else 422
            return lookup_page(session, status, typed=typed, error=refused.message,
                               field=refused.field or "tracking_code")
        return lookup_page(session, typed=typed, found=found)

    def unit_session() -> dict | Response:
        return member(domain.UNIT_OVERVIEW_ROLES.__contains__,
                      "Birim özeti yok / no unit overview",
                      "{role} rolü birim özetini görmez; gelen kutusunu kullanın. / "
                      "The role {role} has no unit overview: use the inbox.")

    @pages.get("/birim")
    def unit_overview():
        session = unit_session()
        if isinstance(session, Response):
            return session
        backlog = section(lambda: parts.reporting.backlog(session))
        at_risk = section(lambda: parts.sla.at_risk(session))
        overdue = section(lambda: parts.sla.overdue(session))
        files = section(lambda: parts.reporting.files(session))
        return page("console/unit.html", session=session, backlog=backlog, at_risk=at_risk,
                    overdue=overdue, files=files, bar=bar_class)

    @pages.get("/birim/rapor/<string(maxlength=300):file_id>")
    def unit_report(file_id: str):
        session = unit_session()
        if isinstance(session, Response):
            return session
        fmt = request.args.get("bicim", "xlsx")
        if fmt not in FILE_FORMATS:
            return page("console/message.html", 422, session=session,
                        title="Biçim geçersiz / unknown format",
                        message="format: xlsx ya da pdf olmalı / must be xlsx or pdf")
        try:
            content, mimetype, disposition = parts.reporting.file(session, file_id, fmt)
        except ServiceUnavailable:
            return page("console/message.html", 503, session=session,
                        title="Rapor servisi yanıt vermiyor / reporting is not answering",
                        message="Rapor şu anda indirilemiyor; biraz sonra yeniden deneyin. / "
                                "The report cannot be downloaded now; try again shortly.")
        except ServiceRefused as refused:
            status = refused.status if refused.status in (401, 403, 404) else 422
            return page("console/message.html", status, session=session,
                        title="Rapor indirilemiyor / cannot download the report",
                        message=refused.message)
        return secured(Response(content, mimetype=mimetype,
                                headers={"Content-Disposition": disposition}))

    @pages.get("/pano")
    def dashboard():
        session = member(domain.DASHBOARD_ROLES.__contains__,
                         "Başkanlık panosu yok / no headline dashboard",
                         "{role} rolü başkanlık panosunu görmez. / "
                         "The role {role} does not see the headline dashboard.")
        if isinstance(session, Response):
            return session
        summary = section(lambda: parts.reporting.summary(session))
        series = section(lambda: parts.reporting.series(session, "day"))
        return page("console/dashboard.html", session=session, summary=summary,
                    series=series, bar=bar_class, percent=percent, top=top)
