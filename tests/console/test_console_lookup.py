"""The lookup by tracking code (`/console/sorgu`) against tracking's real staff API: tracking's
app served over HTTP in this process on the test's databases, its read model filled through
its own handlers; the console asks with the signed-in coordinator's token."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from nameko.testing.services import worker_factory

from services.common.codes import display_tracking_code, new_tracking_code
from services.common.config import load_config
from services.common.events import load_event
from services.tracking.bootstrap import build as build_tracking
from services.tracking.service import TrackingService
from services.tracking.web import create_app as create_tracking_app
from tests.envelopes import received, routed
from tests.support import serve


@pytest.fixture
def tracking(databases) -> Iterator:
    parts = build_tracking(load_config(env={}, **databases))
    yield parts
    parts.close()


@pytest.fixture
def console_config(databases, tracking) -> Iterator[dict]:
    with serve(create_tracking_app(tracking)) as tracking_url:
        yield load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true",
                          CONSOLE_TRACKING_URL=tracking_url, **databases)


@pytest.fixture
def filed(tracking) -> tuple[str, str]:
    """(application id, canonical code) of a road damage routed to Mezitli's works unit (the
    sample coordinator's institution)."""
    service = worker_factory(TrackingService, parts=tracking)
    receipt = received(district="Mezitli")
    for envelope in (receipt, routed(receipt, unit="mezitli_bld.works", unit_name="Fen İşleri",
                                     institution_name="Mezitli Belediyesi")):
        getattr(service, f"handle_{envelope['type']}")(load_event(envelope))
    return receipt["application_id"], receipt["data"]["tracking_code"]


def signed_in(client, pages, user: str = "mez-0004") -> str:
    """Sign `user` in; the lookup form's CSRF token."""
    assert pages.sign_in(client, user).status_code == 303
    return pages.csrf_of(client.get("/console/sorgu").get_data(as_text=True))


def test_the_coordinator_reads_a_callers_code_and_sees_its_status_and_timeline(
        client, pages, filed):
    application_id, code = filed
    csrf = signed_in(client, pages)
    assert 'href="/console/sorgu"' in client.get("/console/").get_data(as_text=True)
    spoken = display_tracking_code(code).lower().replace("-", " ")  # as read on the phone
    answer = client.post("/console/sorgu", data={"csrf": csrf, "tracking_code": spoken})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200, html
    assert 'data-status="assigned"' in html
    assert "Fen İşleri" in html
    assert display_tracking_code(code) in html
    assert f'href="/console/vaka/{application_id}"' in html
    assert html.count("<li><time>") == 2  # received, assigned
    assert answer.headers["Cache-Control"] == "no-store"


def test_an_unknown_code_is_a_404_page(client, pages, filed):
    csrf = signed_in(client, pages)
    answer = client.post("/console/sorgu", data={"csrf": csrf,
                                                 "tracking_code": new_tracking_code()})
    assert answer.status_code == 404
    assert 'id="refused-field">tracking_code' in answer.get_data(as_text=True)


@pytest.mark.parametrize("typed", ["K7M-4QX", "", "????????? ", "x" * 500])
def test_a_malformed_code_is_a_422_naming_the_field_never_a_500(client, pages, typed):
    csrf = signed_in(client, pages)
    answer = client.post("/console/sorgu", data={"csrf": csrf, "tracking_code": typed})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="refused-field">tracking_code' in html
    assert 'aria-invalid="true"' in html


def test_a_lookup_without_the_forms_csrf_token_is_refused(client, pages, filed):
    signed_in(client, pages)
    answer = client.post("/console/sorgu", data={"tracking_code": filed[1]})
    assert answer.status_code == 403
    assert "Fen İşleri" not in answer.get_data(as_text=True)


def test_an_expert_has_no_lookup_page(client, pages, filed):
    assert pages.sign_in(client, "mez-0008").status_code == 303
    assert client.get("/console/sorgu").status_code == 403
    assert 'href="/console/sorgu"' not in client.get("/console/").get_data(as_text=True)


def test_tracking_away_is_a_503_page_saying_so(client, pages, parts, filed):
    csrf = signed_in(client, pages)
    parts.tracking.base_url = "http://127.0.0.1:9"  # nothing listens there
    answer = client.post("/console/sorgu", data={"csrf": csrf, "tracking_code": filed[1]})
    assert answer.status_code == 503
    assert "tracking service is not answering" in answer.get_data(as_text=True)
