"""The coordination centre's page (`/console/koordinasyon`, issue 13): what the centre watches
and dispatches, on one page of sections, each from one service (one that is away shows its
section's error; the rest of the page is still there).

- **Gelenler / incoming**: the cases waiting at the coordination centres in the caller's scope
  (routing's `GET /api/v1/cases/coordination`: what no rule matched, an unknown or
  coordination-tier category, one unmapped in its institution), oldest first, each with a
  dispatch form: a unit from routing's directory and a reason, sent as routing's `transfer`
  (`koordinasyon/<id>/yonlendir`, POST). For the roles routing gives that queue
  (`domain.may_dispatch`: coordinator, admin).
- **Gecikenler / late**: SLA's overdue and at-risk lists in the caller's scope: which deadline,
  when it falls, how late (or how long is left). The same roles.
- **Muhtar masası / the muhtar desk** (seed 003): the muhtar requests waiting at the ministry
  desk, each with a forward form (an institution, or none: the rules' suggestion), sent as
  routing's `forward` (`koordinasyon/<id>/ilet`, POST). For the roles routing lets forward
  (`domain.may_forward`: ministry_officer, coordinator, admin); a ministry officer sees only
  this section.

The console checks the role first (403 page) and the session's CSRF token on every POST (403,
nothing changed); routing and SLA decide every call again with the user's token. A refusal
(403, 404, 409, 422) comes back as the page with routing's message and the field it names.
"""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from flask import Blueprint, Response, request

from services.console import domain
from services.console.kit import PATH, Kit
from services.console.routing_client import RoutingRefused, RoutingUnavailable
from services.routing.directory import ROUTABLE_TYPES

TITLE = "Koordinasyon sayfası yok / no coordination page"
DEADLINES_TR = {"read": ("Okuma", "read"), "resolve": ("Çözüm", "resolve")}
# what each POST of the page carries to routing, by the page's action
FIELDS = {"dispatch": ("unit", "reason"), "forward": ("institution", "reason")}


def _moment(value: datetime | str | None) -> datetime | None:
    if not value:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def deadline_row(clock: dict, as_of: datetime, kind: str) -> dict:
    """One row of the late board from an SLA clock: the deadline it is about (overdue: the
    earliest that passed; at risk: resolve), when it falls, and the hours past it (overdue) or
    left (at risk), rounded to a tenth."""
    dues = {name: _moment(clock.get(f"{name}_due_at")) for name in DEADLINES_TR}
    if kind == "overdue":
        passed = [(due, name) for name, due in dues.items() if due and due <= as_of]
        due, deadline = min(passed) if passed else (dues["resolve"], "resolve")
    else:
        due, deadline = dues["resolve"], "resolve"
    hours = None if due is None else round(abs((as_of - due).total_seconds()) / 3600, 1)
    return {"application_id": clock.get("application_id"),
            "tracking_code": clock.get("tracking_code"), "unit": clock.get("unit"),
            "category": clock.get("category"), "level": clock.get("level"),
            "deadline": deadline, "due_at": due, "hours": hours}


def board(listing: dict, kind: str) -> dict:
    """SLA's `overdue` or `at_risk` answer as the board's rows."""
    as_of = _moment(listing.get("as_of")) or datetime.now().astimezone()
    return {"as_of": as_of,
            "rows": [deadline_row(clock, as_of, kind) for clock in listing.get("items") or []]}


def forward_targets(institutions: list[dict]) -> list[dict]:
    """The institutions a muhtar request can be forwarded to (the governorship and the
    municipalities: routing's routable types)."""
    return [inst for inst in institutions if inst.get("type") in ROUTABLE_TYPES]


def register(pages: Blueprint, kit: Kit) -> None:
    """The coordination page's routes on the console's blueprint."""
    routing, sla, section = kit.parts.routing, kit.parts.sla, kit.section

    def coordination_page(session: dict, status: int = 200,
                          refused: RoutingRefused | None = None, tried: str | None = None,
                          action: str | None = None, form: dict | None = None) -> Response:
        role = session["role"]
        dispatching, forwarding = domain.may_dispatch(role), domain.may_forward(role)
        queue = section(lambda: routing.coordination_queue(session)) if dispatching else None
        units = section(lambda: routing.units(session)) if dispatching else None
        overdue = section(lambda: board(sla.overdue(session), "overdue")) \
            if dispatching else None
        at_risk = section(lambda: board(sla.at_risk(session), "at_risk")) \
            if dispatching else None
        desk = section(lambda: routing.muhtar_pending(session)) if forwarding else None
        targets = section(lambda: forward_targets(routing.institutions(session))) \
            if forwarding else None
        done = request.args.get("tamam")
        return kit.page("console/coordination.html", status, session=session, queue=queue,
                        units=units, overdue=overdue, at_risk=at_risk, desk=desk,
                        targets=targets, refused=refused, tried=tried, action=action,
                        form=form or {}, deadlines=DEADLINES_TR,
                        done=done if done in FIELDS else None,
                        done_case=request.args.get("vaka"))

    def act(application_id: str, action: str, allowed, refusal: str) -> Response:
        """POST one of the page's forms to routing: `dispatch` is routing's `transfer`."""
        session = kit.member(allowed, TITLE, refusal)
        if isinstance(session, Response):
            return session
        form = {name: request.form.get(name, "").strip() for name in FIELDS[action]}
        fields = {name: value for name, value in form.items() if value}
        try:
            routing.act(session, application_id,
                        "transfer" if action == "dispatch" else action, fields)
        except RoutingUnavailable:
            return kit.unavailable(session)
        except RoutingRefused as refused:
            status = refused.status if refused.status in (401, 403, 404, 409) else 422
            return coordination_page(session, status, refused, application_id, action, form)
        anchor = "gelenler" if action == "dispatch" else "muhtar"
        return kit.to(f"{PATH}/koordinasyon?tamam={action}&vaka="
                      f"{quote(application_id, safe='')}#{anchor}")

    @pages.get("/koordinasyon")
    def coordination():
        session = kit.member(domain.may_coordinate, TITLE,
                             "{role} rolü koordinasyon merkezinde çalışmaz. / "
                             "The role {role} does not work at the coordination centre.")
        return session if isinstance(session, Response) else coordination_page(session)

    @pages.post("/koordinasyon/<string(maxlength=64):application_id>/yonlendir")
    def dispatch(application_id: str):
        return act(application_id, "dispatch", domain.may_dispatch,
                   "{role} rolü gelenleri birimlere yönlendirmez. / "
                   "The role {role} does not dispatch incoming cases.")

    @pages.post("/koordinasyon/<string(maxlength=64):application_id>/ilet")
    def forward(application_id: str):
        return act(application_id, "forward", domain.may_forward,
                   "{role} rolü muhtar taleplerini iletmez. / "
                   "The role {role} does not forward muhtar requests.")
