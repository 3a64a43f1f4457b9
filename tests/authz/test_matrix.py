"""The authorisation matrix (issue 13): every staff endpoint × every role, as
`docs/authorisation.md` documents it.

The document is the single source of truth: this module parses its two tables (the matrix and
the routes that are not staff endpoints), and

- checks that every route of the seven apps' `url_map` is in exactly one of them, and that every
  row of the matrix is a real route (a route added without a row fails here);
- calls every row without credentials (401, or the console's and the dashboard's redirect to
  their sign-in page);
- calls every row as every role, with a token minted as the console would for that role (or,
  for the console, a session signed in through its own login use cases): "no" must be a 403,
  "yes" must get past authorisation (any status but 401 / 403 / a 5xx; a 404, 409 or 422 for a
  minimal request is fine), "unit" / "inst" must be allowed within the token's unit /
  institution and refused (403, or 404 where the service answers as unknown) for another's,
  wherever the endpoint names a case, a clock, a file, or takes a unit or institution filter.

Every app is built once for the module on the real store and broker; case rows open fresh cases
per test (their actions really run), so the order of the tests does not matter.
"""
from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher

from services.common import topology
from services.common.auth import ROLES
from services.common.config import load_config
from services.common.events import load_event, make_event, new_event_id
from services.routing.access import read_verdict
from tests.support import bearer, serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorisation.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
CELLS = ("yes", "no", "unit", "inst")

OWN_UNIT, OWN_INST = "mezitli_bld.works", "mezitli_bld"
OTHER_UNIT = "mezitli_bld.cleaning"  # same institution, another unit
OTHER_INST_UNIT, OTHER_INST = "toroslar_bld.works", "toroslar_bld"
DESK_UNIT = "magm.muhtar_desk"  # the ministry desk (seed 003)
# The columns: every role, then the coordinator and the administrator bound to an institution.
BOUND = ("coordinator (inst)", "admin (inst)")
COLUMNS = (*ROLES, *BOUND)
# The tokens the columns stand for (docs/authorisation.md, "Reading the table").
TOKEN_SCOPE: dict[str, dict[str, str | None]] = {
    **{role: {"unit": OWN_UNIT, "institution": OWN_INST}
       for role in ("expert", "supervisor", "director")},
    **{role: {"unit": None, "institution": OWN_INST}
       for role in ("deputy_mayor", "mayor", "governor")},
    "ministry_officer": {"unit": DESK_UNIT, "institution": None},
    "coordinator": {"unit": None, "institution": None},
    "admin": {"unit": None, "institution": None},
    **{column: {"unit": None, "institution": OWN_INST} for column in BOUND},
}


def role_of(column: str) -> str:
    """The role a column's token carries ("coordinator (inst)" → coordinator)."""
    return column.split(" ", 1)[0]


def user_of(column: str) -> str:
    """The staff code of a column's test account."""
    return "authz-" + column.replace(" (inst)", "-inst")
PASSWORD = "authz-matrix-parola"  # a test account's
# The pages with a sign-in of their own: no (or an unknown) session is a redirect to it.
LOGIN_PAGES = {"/console/": "/console/giris", "/raporlar/": "/raporlar/giris"}


# -- the document ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the matrix: a route (or a variant of it with a query) and a cell per role."""

    service: str
    method: str
    path: str
    query: str
    cells: dict[str, str] = field(hash=False, compare=False)

    @property
    def route(self) -> tuple[str, str, str]:
        return self.service, self.method, self.path

    @property
    def name(self) -> str:
        return f"{self.service} {self.method} {self.path}" + (f"?{self.query}" if self.query
                                                                else "")


@dataclass(frozen=True)
class Exclusion:
    """A route pattern that is not a staff endpoint (`*` matches any service or method)."""

    service: str
    method: str
    pattern: str

    def matches(self, service: str, method: str, path: str) -> bool:
        return (self.service in ("*", service) and self.method in ("*", method)
                and fnmatch.fnmatchcase(path, self.pattern))


def _cells_of(line: str) -> list[str]:
    return [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]


def _section(text: str, heading: str) -> list[str]:
    """The table lines of the section `## heading` (up to the next `## `)."""
    body = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("|")]


def parse_doc(text: str) -> tuple[list[str], list[Row], list[Exclusion]]:
    """The matrix's role columns, its rows and the exclusions, as the document states them."""
    matrix = _section(text, "The matrix")
    header = _cells_of(matrix[0])
    roles = header[3:-1]
    rows = []
    for line in matrix[2:]:
        cells = _cells_of(line)
        path, _, query = cells[2].partition("?")
        rows.append(Row(cells[0], cells[1], path, query,
                        dict(zip(roles, cells[3:3 + len(roles)], strict=True))))
    exclusions = [Exclusion(*_cells_of(line)[:3])
                  for line in _section(text, "Not staff endpoints")[2:]]
    return roles, rows, exclusions


DOC_ROLES, ROWS, EXCLUSIONS = parse_doc(DOC.read_text(encoding="utf-8"))

_VARIABLE = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


def concrete_paths(rule: str) -> list[str]:
    """A Flask rule as the document writes it: converters dropped, `any(…)` expanded."""
    found = _VARIABLE.search(rule)
    if found is None:
        return [rule]
    head, tail = rule[:found.start()], rule[found.end():]
    converter, args, name = found.groups()
    if converter == "any":
        options = [option.strip().strip("\"'") for option in args.split(",")]
        return [head + option + rest for option in options for rest in concrete_paths(tail)]
    return [head + f"<{name}>" + rest for rest in concrete_paths(tail)]


# -- the apps --------------------------------------------------------------------------------------


@dataclass
class World:
    """The seven apps on one set of databases, and what the scoped rows ask for."""

    config: dict
    apps: dict[str, Any]
    clients: dict[str, Any]
    routing: Any
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # role → (id, csrf)

    def open_case(self, where: str) -> str:
        """A new case held by `where` (own, other_unit, other_inst, desk); its id."""
        from services.routing.domain import open_case

        category, district, extra, unit = {
            "own": ("road_damage", "Mezitli", {}, OWN_UNIT),
            "other_unit": ("cleaning", "Mezitli", {}, OTHER_UNIT),
            "other_inst": ("road_damage", "Toroslar", {}, OTHER_INST_UNIT),
            "desk": ("road_damage", "Mezitli", {"channel": "muhtar"}, DESK_UNIT),
        }[where]
        org = self.routing.organisation.current()
        app_id = new_event_id()
        at = datetime.now(UTC)
        event = load_event(make_event("application_received", app_id, {
            "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
            "category": category, "channel": "call_centre", "received_at": at,
            "location": {"province": "Mersin", "district": district}, **extra}))
        self.routing.store.apply_to_case(app_id, event["event_id"], lambda current: open_case(
            current, event, org.catalogue, org.directory, at))
        held = self.routing.store.get_case(app_id)["unit"]
        assert held == unit, f"the sample organisation routes {where} to {held}, not {unit}"
        return app_id


def _built(name: str, config: dict):
    """A service's parts, from its composition root."""
    bootstrap = importlib.import_module(f"services.{name}.bootstrap")
    return bootstrap.build(config)


def _sign_in_everyone(console, hasher: PasswordHasher) -> dict[str, tuple[str, str]]:
    """A console session for an account of each role (through the login use cases: password,
    then the TOTP code for the roles that need one); role → (session id, CSRF token)."""
    from services.console.accounts import make_account
    from services.console.logins import NeedsTotp, SignedIn

    sessions = {}
    for role in COLUMNS:
        scope = TOKEN_SCOPE[role]
        account = make_account({"user": user_of(role), "role": role_of(role),
                                "unit": scope["unit"], "institution": scope["institution"],
                                "name": role, "password": PASSWORD}, hasher)
        console.store.add_account(account)
        outcome = console.logins.sign_in(account["_id"], PASSWORD, "127.0.0.1")
        if isinstance(outcome, NeedsTotp):
            code = pyotp.TOTP(account["totp_secret"]).now()
            outcome = console.logins.verify_totp(outcome.pending_id, code, "127.0.0.1")
        assert isinstance(outcome, SignedIn), outcome
        sessions[role] = (outcome.session_id, outcome.session["csrf"])
    return sessions


def _sla_clock(sla, application_id: str, unit: str) -> None:
    event = load_event(make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Belediye", "unit": unit,
        "unit_name": "Fen İşleri", "rule": "authz", "read_hours": 4, "resolve_hours": 24}))
    sla.deadlines.on_event(event)


@pytest.fixture(scope="module")
def world(amqp_uri, module_databases) -> Iterator[World]:
    """Every app built once on fresh databases; the six the console calls also over HTTP."""
    config = load_config(env={}, AMQP_URI=amqp_uri, CONSOLE_SAMPLE_ACCOUNTS="false",
                         EVENT_RETRY_DELAY_MS="50", NOTIFY_QUIET_HOURS="off",
                         **module_databases)
    topology.reset(amqp_uri, retry_delay_ms=50)
    parts = {name: _built(name, config) for name in SERVICES if name != "console"}
    routing = parts["routing"]
    directory = routing.organisation.current().directory
    # The directory answers what routing's RPC would (no routing container runs here).
    parts["reporting"].family = lambda inst: sorted(directory.family(inst))
    parts["sla"].deadlines.ladders = lambda unit: ["e", "s", "d", "dm", "m"]
    parts["sla"].deadlines.ancestry = lambda inst: [inst]
    # Intake and notify ask what routing's `may_read` RPC answers, from the same routing parts.
    for asking in ("intake", "notify"):
        parts[asking].read_scope.ask = lambda application_id, actor: read_verdict(
            actor, routing.store.get_case(application_id),
            routing.organisation.current().directory)
    for app_id, unit in (("sla-own", OWN_UNIT), ("sla-other-unit", OTHER_UNIT),
                         ("sla-other-inst", OTHER_INST_UNIT)):
        _sla_clock(parts["sla"], app_id, unit)
    for file_id, unit in (("authz-own", OWN_UNIT), ("authz-other-unit", OTHER_UNIT),
                          ("authz-other-inst", OTHER_INST_UNIT)):
        parts["reporting"].store.files.insert_one({
            "_id": file_id, "unit": unit, "institution": unit.split(".")[0],
            "content": b"xlsx", "pdf": b"pdf", "created_at": datetime.now(UTC)})
    apps = {name: importlib.import_module(f"services.{name}.web").create_app(built)
            for name, built in parts.items()}
    with serve(apps["routing"]) as routing_url, serve(apps["intake"]) as intake_url, \
            serve(apps["sla"]) as sla_url, serve(apps["reporting"]) as reporting_url, \
            serve(apps["tracking"]) as tracking_url, serve(apps["notify"]) as notify_url:
        console = _built("console", dict(
            config, CONSOLE_ROUTING_URL=routing_url, CONSOLE_INTAKE_URL=intake_url,
            CONSOLE_SLA_URL=sla_url, CONSOLE_REPORTING_URL=reporting_url,
            CONSOLE_TRACKING_URL=tracking_url, CONSOLE_NOTIFY_URL=notify_url))
        parts["console"] = console
        apps["console"] = importlib.import_module("services.console.web").create_app(console)
        # no cookie jar: each request carries the session it is sent as, or none
        clients = {name: app.test_client(use_cookies=False) for name, app in apps.items()}
        found = World(config, apps, clients, routing)
        found.sessions = _sign_in_everyone(console, console.logins.hasher)
        try:
            yield found
        finally:
            for built in parts.values():
                built.close()


# -- the requests ----------------------------------------------------------------------------------

# A resource of the caller's own scope, and one outside it, for the scope a cell names.
OWN_CASE = {role: ("desk" if role == "ministry_officer" else "own") for role in COLUMNS}


def other_case(role: str, cell: str) -> str:
    if cell == "inst":
        return "other_inst"
    return "own" if role == "ministry_officer" else "other_unit"


def other_filter(role: str, cell: str) -> dict[str, str]:
    """A list filter outside the caller's scope."""
    if cell == "inst":
        return {"institution": OTHER_INST}
    return {"unit": OWN_UNIT if role == "ministry_officer" else OTHER_UNIT}


# Valid bodies for case actions: a role or a scope refusal must not hide behind a 422.
ACTION_BODIES = {
    "transfer": {"unit": "mezitli_bld.parks", "reason": "authz"},
    "return": {"reason": "authz"}, "wait": {"reason": "authz"},
    "reject": {"reason": "authz"}, "resolve": {"result": "authz"},
}
# Path parameters: real where the role check needs a record to exist, else unknown ones, so an
# allowed administrator changes nothing.
PARAMETERS = {
    "code": "authz_unknown", "category": "road_damage", "province": "authz_nowhere",
    "rule": "authz_unknown", "owner": "authz_nowhere", "citizen_ref": "authz-ref",
    "week": "2026-W01", "file_id": "authz-unknown", "citizen_id": "authz-unknown",
    "application_id": "authz-unknown",
    # a template: a real channel and an unknown name (an allowed administrator gets a 404)
    "channel": "sms", "name": "authz_unknown.tr",
}
# Reads of real records (only GET: an allowed PATCH or DELETE must never reach a real one).
READ_PARAMETERS = {
    ("routing", "GET", "/api/v1/directory/institutions/<code>"): {"code": OWN_INST},
    ("routing", "GET", "/api/v1/directory/units/<code>"): {"code": OWN_UNIT},
}
CASE_ROUTES = re.compile(r"^/(api/v1/cases|console/vaka)/<application_id>"
                         r"|^/api/v1/applications/<application_id>(/attachments/|$)")
# Rows whose scope routing decides for another service (`may_read`): outside it, a 403 (never a
# 404: the service asks routing before it looks the record up).
ASKS_ROUTING = {("intake", "GET", "/api/v1/applications/<application_id>"),
                ("intake", "GET", "/api/v1/applications/<application_id>/attachments/<file_id>"),
                ("intake", "GET", "/api/v1/citizens/<citizen_id>"),
                ("notify", "GET", "/api/v1/notifications")}
# Rows that name the case in the query (`application_id`), not in the path. (A citizen read
# names an unknown citizen: allowed, it is intake's 404 after routing's yes.)
CASE_QUERIES = {("notify", "GET", "/api/v1/notifications"),
                ("intake", "GET", "/api/v1/citizens/<citizen_id>")}
FILTERED_LISTS = {"/api/v1/cases", "/api/v1/directory/staff", "/api/v1/reports/summary",
                  "/api/v1/reports/series", "/api/v1/reports/backlog",
                  "/api/v1/reports/summary/export", "/raporlar/", "/api/v1/sla/overdue",
                  "/api/v1/sla/at-risk"}
# SLA's lists narrow an institution filter to the caller's institution (an empty answer, not a
# 403): only their unit filter is refused.
UNIT_FILTER_ONLY = {"/api/v1/sla/overdue", "/api/v1/sla/at-risk"}
# Records of the caller's scope ("own") and outside it, by route: their path parameters, and the
# body where the body names the institution. "own" ones that an allowed call would change are
# unknown ones (a 404 after the scope check) or changes that change nothing.
RECORDS: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {
    ("sla", "GET", "/api/v1/sla/cases/<application_id>"): {
        where: {"application_id": f"sla-{where.replace('_', '-')}"}
        for where in ("own", "other_unit", "other_inst")},
    **{(service, "GET", path): {
        where: {"file_id": f"authz-{where.replace('_', '-')}"}
        for where in ("own", "other_unit", "other_inst")}
       for service, path in (("reporting", "/api/v1/reports/files/<file_id>"),
                             ("console", "/console/birim/rapor/<file_id>"))},
    ("routing", "GET", "/api/v1/directory/staff/<code>"): {
        "own": {"code": "mez-0008"}, "other_inst": {"code": "magm-0001"}},
    **{("routing", method, "/api/v1/directory/staff/<code>"): {
        "own": {"code": "authz-unknown"}, "other_inst": {"code": "magm-0001"}}
       for method in ("PATCH", "DELETE")},
    **{("routing", method, "/api/v1/directory/units/<code>"): {
        "own": {"code": "mezitli_bld.authz_unknown"}, "other_inst": {"code": OTHER_INST_UNIT}}
       for method in ("PATCH", "DELETE")},
    ("routing", "PATCH", "/api/v1/directory/institutions/<code>"): {
        "own": {"code": OWN_INST}, "other_inst": {"code": OTHER_INST}},
    **{("routing", method, path): {"own": {"code": OWN_INST, "category": "authz_unknown"},
                                   "other_inst": {"code": OTHER_INST,
                                                  "category": "authz_unknown"}}
       for method in ("PUT", "DELETE")
       for path in ("/api/v1/directory/institutions/<code>/mappings/<category>",
                    "/api/v1/directory/institutions/<code>/overrides")},
    ("routing", "POST", "/api/v1/directory/units"): {
        "own": {"institution": OWN_INST, "code": f"{OWN_INST}.authz"},
        "other_inst": {"institution": OTHER_INST, "code": f"{OTHER_INST}.authz"}},
    ("routing", "POST", "/api/v1/directory/staff"): {
        "own": {"institution": OWN_INST}, "other_inst": {"institution": OTHER_INST}},
    ("sla", "PUT", "/api/v1/sla/policies"): {
        "own": {"scope": {"institution": OWN_INST}},
        "other_inst": {"scope": {"institution": OTHER_INST}}},
    # the administration pages' forms (field names of the forms, not of the APIs)
    ("console", "POST", "/console/yonetim/sla"): {
        "own": {"institution": OWN_INST}, "other_inst": {"institution": OTHER_INST}},
    ("console", "POST", "/console/yonetim/birimler/<code>"): {
        "own": {"code": "mezitli_bld.authz_unknown"}, "other_inst": {"code": OTHER_INST_UNIT}},
    ("console", "POST", "/console/yonetim/personel"): {
        "own": {"institution": OWN_INST}, "other_inst": {"institution": OTHER_INST}},
    **{("console", "POST", path): {
        "own": {"code": OWN_INST, "category": "authz_unknown"},
        "other_inst": {"code": OTHER_INST, "category": "authz_unknown"}}
       for path in ("/console/yonetim/kurallar/<code>/eslemeler",
                    "/console/yonetim/kurallar/<code>/eslemeler/<category>/sil",
                    "/console/yonetim/kurallar/<code>/istisnalar",
                    "/console/yonetim/kurallar/<code>/istisnalar/sil")},
    **{("sla", method, "/api/v1/sla/calendars/<owner>"): {
        "own": {"owner": OWN_INST}, "other_inst": {"owner": OTHER_INST}}
       for method in ("PUT", "DELETE")},
}
# Bodies (and queries) that pass the schema, where a role or scope check comes after it; the
# `institution` / `scope` of `RECORDS` is merged in.
BODIES: dict[tuple[str, str, str], dict[str, Any]] = {
    ("routing", "POST", "/api/v1/categories"): {
        "code": "authz_category", "name_tr": "Yetki", "name_en": "Authz",
        "kinds": ["complaint"], "tier": "district", "read_hours": 4, "resolve_hours": 24},
    ("routing", "POST", "/api/v1/directory/institutions"): {
        "code": "authz_institution", "type": "district", "name_tr": "Yetki",
        "name_en": "Authz"},
    ("routing", "PUT", "/api/v1/directory/institutions/<code>/mappings/<category>"): {
        "unit": OWN_UNIT},
    ("routing", "PUT", "/api/v1/directory/institutions/<code>/overrides"): {
        "district": "Mezitli", "neighbourhood": "Yetki", "category": "authz_unknown",
        "unit": OWN_UNIT},
    ("routing", "POST", "/api/v1/directory/units"): {
        "name_tr": "Yetki", "name_en": "Authz",
        "experts": {"primary": "zzz-9999", "backup": "zzz-9999"},
        "supervisor": "zzz-9999", "director": "zzz-9999"},
    ("routing", "POST", "/api/v1/directory/staff"): {
        "code": "authz-0001", "name": "Yetki Deneme", "role": "expert"},
    ("routing", "PUT", "/api/v1/directory/locations/<province>"): {"districts": []},
    ("sla", "PUT", "/api/v1/sla/policies"): {"settings": {"read_hours": 4}},
    ("notify", "PUT", "/api/v1/notifications/templates/<channel>/<name>"): {"text": "authz"},
    ("console", "POST", "/console/yonetim/sablonlar/<channel>/<name>"): {"text": "authz"},
    ("console", "POST", "/console/yonetim/kategoriler"): {
        "code": "authz_console", "name_tr": "Yetki", "name_en": "Authz", "kinds": "complaint",
        "tier": "district", "read_hours": "4", "resolve_hours": "24"},
    ("console", "POST", "/console/yonetim/sla"): {"read_hours": "4"},
    ("console", "POST", "/console/yonetim/birimler/<code>"): {
        "primary": "zzz-9999", "backup": "zzz-9999"},
    ("console", "POST", "/console/yonetim/personel"): {
        "code": "authz-0002", "name": "Yetki Deneme", "role": "expert"},
    # an allowed administrator adds one expert account (refused as a duplicate if sent again)
    ("console", "POST", "/console/yonetim/kullanicilar"): {
        "code": "authz-0003", "role": "expert", "password": "authz-parola-0003",
        "password_again": "authz-parola-0003"},
    ("console", "POST", "/console/yonetim/kurallar/<code>/eslemeler"): {"unit": OWN_UNIT},
    ("console", "POST", "/console/yonetim/kurallar/<code>/istisnalar"): {
        "district": "Mezitli", "neighbourhood": "Yetki", "unit": OWN_UNIT},
    ("console", "POST", "/console/yonetim/kurallar/<code>/istisnalar/sil"): {
        "district": "Mezitli", "neighbourhood": "Yetki"},
}
QUERIES: dict[tuple[str, str, str], dict[str, str]] = {
    ("routing", "DELETE", "/api/v1/directory/institutions/<code>/overrides"): {
        "district": "Mezitli", "neighbourhood": "Yetki", "category": "authz_unknown"},
}


@dataclass
class Call:
    """One request to one app: a JSON body for the APIs, a form for the console."""

    service: str
    method: str
    path: str
    query: dict[str, str]
    json: dict | None = None
    form: dict | None = None


def call_for(world: World, row: Row, role: str, outside: str | None = None) -> Call | None:
    """The request for `row` as `role`: within its scope, or (`outside`: the cell) outside it;
    None when the row has no way to ask outside the scope."""
    values = dict(PARAMETERS, **READ_PARAMETERS.get(row.route, {}))
    query = dict(pair.split("=", 1) for pair in row.query.split("&")) if row.query else {}
    query.update(QUERIES.get(row.route, {}))
    body = dict(BODIES.get(row.route, {}))
    if CASE_ROUTES.match(row.path):
        values["application_id"] = world.open_case(
            other_case(role, outside) if outside else OWN_CASE[role])
        body = ACTION_BODIES.get(row.path.rsplit("/", 1)[1], {})
    elif row.route in CASE_QUERIES:
        query["application_id"] = world.open_case(
            other_case(role, outside) if outside else OWN_CASE[role])
    elif row.route in RECORDS:
        where = other_case(role, outside) if outside else "own"
        if where not in RECORDS[row.route]:
            return None
        for name, value in RECORDS[row.route][where].items():
            (values if f"<{name}>" in row.path else body)[name] = value
    elif outside:
        if row.path not in FILTERED_LISTS or (row.path in UNIT_FILTER_ONLY and outside == "inst"):
            return None
        query.update(other_filter(role, outside))
    path = re.sub(r"<(\w+)>", lambda m: values[m.group(1)], row.path)
    if row.service == "console":
        form = dict(body, csrf=world.sessions[role][1]) if row.method == "POST" else None
        return Call(row.service, row.method, path, query, form=form)
    return Call(row.service, row.method, path, query,
                json=body if row.method in ("POST", "PUT", "PATCH") else None)


def send(world: World, call: Call, role: str | None):
    """`call` as `role` (a bearer token; the console: the role's session), or anonymously."""
    headers = {}
    if role is not None and call.service == "console":
        headers["Cookie"] = f"acikkapi_console={world.sessions[role][0]}"
    elif role is not None:
        scope = TOKEN_SCOPE[role]
        headers.update(bearer(world.config, role_of(role), scope["unit"], user_of(role),
                              scope["institution"]))
    return world.clients[call.service].open(call.path, method=call.method,
                                            query_string=call.query, json=call.json,
                                            data=call.form, headers=headers)


def login_page(row: Row) -> str | None:
    """The sign-in page of `row`'s page, or None for an API."""
    return next((page for prefix, page in LOGIN_PAGES.items() if row.path.startswith(prefix)),
                None)


def sent_to_login(row: Row, answer) -> bool:
    """The console's and the dashboard's answer to no (or an unknown) session."""
    return answer.status_code == 303 and answer.headers["Location"].endswith(login_page(row))


# -- the tests -------------------------------------------------------------------------------------


def test_the_columns_are_every_role_and_the_cells_are_known():
    assert list(COLUMNS) == DOC_ROLES
    unknown = {(row.name, role, cell) for row in ROWS for role, cell in row.cells.items()
               if cell not in CELLS}
    assert not unknown
    assert len({(row.route, row.query) for row in ROWS}) == len(ROWS), "a row is listed twice"


def test_every_staff_route_is_in_the_table_and_every_row_is_a_route(world):
    routes = set()
    for service, app in world.apps.items():
        for rule in app.url_map.iter_rules():
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.update((service, method, path) for path in concrete_paths(rule.rule))
    staff = {route for route in routes if not any(ex.matches(*route) for ex in EXCLUSIONS)}
    documented = {row.route for row in ROWS}
    assert sorted(staff - documented) == [], "staff routes missing from docs/authorisation.md"
    assert sorted(documented - routes) == [], "rows of docs/authorisation.md that are no route"
    assert sorted(documented & (routes - staff)) == [], "rows that the exclusions also match"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_without_credentials_a_staff_endpoint_is_refused(world, row):
    answer = send(world, call_for(world, row, "coordinator"), None)
    if login_page(row):
        assert sent_to_login(row, answer), answer.status_code
    else:
        assert answer.status_code == 401, answer.get_data(as_text=True)[:300]


@pytest.mark.parametrize(("row", "role"), [(row, role) for row in ROWS for role in COLUMNS],
                         ids=[f"{row.name} as {role}" for row in ROWS for role in COLUMNS])
def test_each_role_is_allowed_or_refused_as_documented(world, row, role):
    cell = row.cells[role]
    answer = send(world, call_for(world, row, role), role)
    said = f"{answer.status_code}: {answer.get_data(as_text=True)[:300]}"
    if cell == "no":
        assert answer.status_code == 403, said
        return
    assert answer.status_code not in (401, 403) and answer.status_code < 500, said
    if login_page(row):
        assert not sent_to_login(row, answer), said
    if cell in ("unit", "inst"):
        outside = call_for(world, row, role, outside=cell)
        if outside is not None:
            answer = send(world, outside, role)
            assert answer.status_code in ((403,) if row.route in ASKS_ROUTING else (403, 404)), \
                f"outside the {cell}: {answer.status_code}: {answer.get_data(as_text=True)[:300]}"


def test_an_expert_asking_for_another_units_case_gets_403_from_routing_and_the_console(world):
    # issue 13's acceptance, spelled out (the matrix's "unit" cells check it for every row)
    theirs = world.open_case("other_unit")
    token = bearer(world.config, "expert", OWN_UNIT, "authz-expert", OWN_INST)
    answer = world.clients["routing"].get(f"/api/v1/cases/{theirs}", headers=token)
    assert answer.status_code == 403 and "unit" in answer.get_json()["errors"]
    page = world.clients["console"].get(f"/console/vaka/{theirs}", headers={
        "Cookie": f"acikkapi_console={world.sessions['expert'][0]}"})
    assert page.status_code == 403
    assert OTHER_UNIT in page.get_data(as_text=True)  # routing's reason, shown
