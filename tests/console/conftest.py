"""Fixtures for the console's tests: its parts on fresh databases with the sample staff list,
a clock the test sets, and helpers that sign in through the pages as a browser would."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from services.common.config import load_config
from services.common.events import load_event, make_event, new_event_id
from services.console.bootstrap import ConsoleParts, build
from services.console.web import create_app
from services.reporting.bootstrap import build as build_reporting
from services.reporting.web import create_app as create_reporting_app
from services.routing.bootstrap import RoutingParts
from services.routing.bootstrap import build as build_routing
from services.routing.domain import open_case
from services.routing.web import create_app as create_routing_app
from services.sla.bootstrap import build as build_sla
from services.sla.web import create_app as create_sla_app
from tests.support import Clock, serve

PASSWORD = "yerel-parola-2026"  # the sample staff list's (data/sample/staff_accounts.yaml)
TOTP_SECRET = "ACIKKAPIYERELDEVTOTPSECRETLOCAL2"
T0 = datetime(2026, 12, 2, 9, 0, 30, tzinfo=UTC)  # 30 s into a throttle window
RECEIVED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def console_config(databases) -> dict:
    """A config on fresh databases, the sample staff list on, routing nowhere (the inbox
    tests point it at a routing app of their own)."""
    return load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true",
                       CONSOLE_ROUTING_URL="http://127.0.0.1:9", **databases)


# Routing's real staff API for the inbox (its Flask app over HTTP on a free port, its cases
# opened through its own domain and store, as routing's HTTP tests do), and a console pointed
# at it: the modules that use it override `console_config` with `routed_console_config`.


@pytest.fixture
def routing(databases) -> Iterator[RoutingParts]:
    built = build_routing(load_config(env={}, **databases))
    yield built
    built.close()


@pytest.fixture
def sla(databases, request) -> Iterator:
    """SLA's parts on the test's databases, its clock at the test module's `NOW`, every
    unit's ladder `e, s, d, dm, m`, an institution's ancestry itself alone (no routing)."""
    parts = build_sla(load_config(env={}, **databases))
    parts.deadlines.clock = lambda: request.module.NOW
    parts.deadlines.ladders = lambda unit: ["e", "s", "d", "dm", "m"]
    parts.deadlines.ancestry = lambda institution: [institution]
    yield parts
    parts.close()


@pytest.fixture
def reporting(databases, monkeypatch) -> Iterator:
    """Reporting's parts on the test's databases; what it asks over RPC answered here:
    routing's institution family (the institution alone), intake's call-back contact."""
    parts = build_reporting(load_config(env={}, **databases))
    answers = {
        ("routing", "institution_family"): lambda institution: [institution],
        ("intake", "get_callback_contact"): lambda application_id, staff, role: {
            "first_name": "Ayşe", "last_name": "Demir", "phone": "+905551112233",
            "email": None}}
    monkeypatch.setattr(parts.rpc, "call",
                        lambda service, method, *args: answers[service, method](*args))
    yield parts
    parts.close()


@pytest.fixture
def sla_reporting_config(databases, sla, reporting) -> Iterator[dict]:
    """The console's config with SLA's and reporting's apps served over HTTP."""
    with serve(create_sla_app(sla)) as sla_url, \
            serve(create_reporting_app(reporting)) as reporting_url:
        yield load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_SLA_URL=sla_url,
                          CONSOLE_REPORTING_URL=reporting_url, **databases)


@pytest.fixture
def routing_url(routing) -> Iterator[str]:
    """Routing's app over real HTTP on a free port of this machine."""
    with serve(create_routing_app(routing)) as base:
        yield base


@pytest.fixture
def open_application(routing):
    """`open_application(code, category, district)` routes a new application; its id."""
    org = routing.organisation.current()

    def make(code: str, category: str = "road_damage", district: str = "Mezitli",
             minutes: int = 0) -> str:
        app_id = new_event_id()
        at = RECEIVED + timedelta(minutes=minutes)
        event = load_event(make_event("application_received", app_id, {
            "tracking_code": code, "security_digest": "d" * 64, "kind": "complaint",
            "category": category, "channel": "web", "received_at": at,
            "location": {"province": "Mersin", "district": district}}))
        routing.store.apply_to_case(app_id, event["event_id"], lambda current: open_case(
            current, event, org.catalogue, org.directory, at))
        return app_id

    return make


@pytest.fixture
def routed_console_config(databases, routing_url) -> dict:
    return load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_ROUTING_URL=routing_url,
                       **databases)


@pytest.fixture
def parts(console_config, clock) -> Iterator[ConsoleParts]:
    built = build(console_config, clock)
    yield built
    built.close()


@pytest.fixture
def app(parts):
    return create_app(parts)


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(html: str) -> str:
    """The hidden `csrf` field of a page's form."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client, user: str, password: str = PASSWORD):
    """GET the login form (its CSRF cookie and field), then POST it; the POST's answer."""
    form = client.get("/console/giris")
    return client.post("/console/giris", data={
        "user": user, "password": password, "csrf": csrf_of(form.get_data(as_text=True))})


def totp_code(at: datetime, secret: str = TOTP_SECRET) -> str:
    return pyotp.TOTP(secret).at(at)


def cookie_header(answer, name: str) -> str:
    """The `Set-Cookie` header that sets `name`."""
    for header in answer.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {answer.headers.getlist('Set-Cookie')}")


class Pages:
    """The helpers above, for test modules (which cannot import conftest)."""

    csrf_of = staticmethod(csrf_of)
    sign_in = staticmethod(sign_in)
    totp_code = staticmethod(totp_code)
    cookie_header = staticmethod(cookie_header)
    PASSWORD = PASSWORD
    TOTP_SECRET = TOTP_SECRET
    T0 = T0


@pytest.fixture
def pages() -> type[Pages]:
    return Pages
