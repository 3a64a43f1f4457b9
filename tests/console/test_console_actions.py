"""Case work from the console against routing's real staff API: routing's Flask app served over
HTTP in this process (as the inbox tests do), cases opened through routing's own domain and
store. Each POST goes through the case page's form with the session's CSRF token; routing
decides and its answers (403, 409, 422) are shown on the page; its stored case is checked."""
from __future__ import annotations

import re

import pytest

from services.routing.bootstrap import RoutingParts


@pytest.fixture
def console_config(routed_console_config) -> dict:
    return routed_console_config


def stored(routing: RoutingParts, app_id: str) -> dict:
    """The case as routing stored it."""
    return routing.store.get_case(app_id)


def forms(html: str) -> list[str]:
    """The actions the case page offers, in order."""
    return re.findall(r'<form method="post" action="/console/vaka/[^/"]+/([a-z]+)"', html)


def act(client, app_id: str, action: str, **fields):
    """POST the case page's form for `action` with the CSRF token the page carries."""
    page = client.get(f"/console/vaka/{app_id}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post(f"/console/vaka/{app_id}/{action}", data={"csrf": csrf, **fields})


def act_blind(client, app_id: str, action: str, **fields):
    """POST `action` with the session's CSRF token taken from the home page (for a case whose
    page the user cannot open)."""
    csrf = re.search(r'name="csrf" value="([^"]+)"',
                     client.get("/console/").get_data(as_text=True)).group(1)
    return client.post(f"/console/vaka/{app_id}/{action}", data={"csrf": csrf, **fields})


def test_the_expert_works_a_case_through_and_the_supervisor_approves_it(
        app, pages, routing, open_application):
    app_id = open_application("K7M4QX2E1")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    html = expert.get(f"/console/vaka/{app_id}").get_data(as_text=True)
    assert forms(html) == ["acknowledge", "transfer", "return"]  # assigned, role expert
    assert "approve" not in forms(html)
    assert 'id="transfer-unit"' in html and 'value="mezitli_bld.works"' not in html
    assert '<option value="mezitli_bld.cleaning"' in html  # routing's directory, less its own

    done = act(expert, app_id, "acknowledge")
    assert done.status_code == 303
    assert done.headers["Location"] == f"/console/vaka/{app_id}?tamam=acknowledge"
    assert stored(routing, app_id)["state"] == "acknowledged"
    shown = expert.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="notice"' in shown and "Done: Acknowledge" in shown
    assert forms(shown) == ["start", "wait", "transfer", "return"]

    assert act(expert, app_id, "wait", reason="Fotoğraf gönderin / send a photo"
               ).status_code == 303
    case = stored(routing, app_id)
    assert case["state"] == "waiting_citizen" and case["paused_from"] == "acknowledged"
    assert forms(expert.get(f"/console/vaka/{app_id}").get_data(as_text=True)) == ["resume"]
    assert act(expert, app_id, "resume").status_code == 303
    assert stored(routing, app_id)["state"] == "acknowledged"
    assert act(expert, app_id, "start").status_code == 303
    assert act(expert, app_id, "resolve", result="Yol onarıldı / the road was repaired"
               ).status_code == 303
    case = stored(routing, app_id)
    assert (case["state"], case["result"], case["approved"], case["resolved_by"]) == (
        "resolved", "Yol onarıldı / the road was repaired", False, "mez-0008")
    assert forms(expert.get(f"/console/vaka/{app_id}").get_data(as_text=True)) == []

    supervisor = app.test_client()
    pages.sign_in(supervisor, "mez-0010")
    assert 'href="/console/onay"' in supervisor.get("/console/").get_data(as_text=True)
    queue = supervisor.get("/console/onay").get_data(as_text=True)
    assert re.findall(r'<tr data-application="([^"]+)">', queue) == [app_id]
    assert "K7M-4QX-2E1" in queue
    assert forms(supervisor.get(f"/console/vaka/{app_id}").get_data(as_text=True)) == [
        "approve", "reject"]
    approved = act(supervisor, app_id, "approve")
    assert approved.status_code == 303
    case = stored(routing, app_id)
    assert (case["state"], case["approved"], case["approved_by"]) == (
        "resolved", True, "mez-0010")
    assert [step["event"] for step in case["history"]][-6:] == [
        "case_acknowledged", "case_waiting", "case_resumed", "case_started", "case_resolved",
        "case_approved"]
    assert 'id="approvals-empty"' in supervisor.get("/console/onay").get_data(as_text=True)
    assert forms(supervisor.get(f"/console/vaka/{app_id}").get_data(as_text=True)) == []

    coordinator = app.test_client()  # the coordination centre concludes what was approved
    pages.sign_in(coordinator, "mez-0004")
    assert 'href="/console/sonuclandir"' in coordinator.get("/console/").get_data(as_text=True)
    queue = coordinator.get("/console/sonuclandir").get_data(as_text=True)
    assert re.findall(r'<tr data-application="([^"]+)">', queue) == [app_id]
    assert forms(coordinator.get(f"/console/vaka/{app_id}").get_data(as_text=True)) == ["close"]
    assert act(coordinator, app_id, "close").status_code == 303
    case = stored(routing, app_id)
    assert (case["state"], case["closed_by"]) == ("closed", "mez-0004")
    assert 'id="approvals-empty"' in coordinator.get("/console/sonuclandir").get_data(
        as_text=True)


def test_a_resolution_not_yet_approved_is_neither_offered_nor_closed(
        app, pages, routing, open_application):
    app_id = open_application("K7M4QX2E3")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    for action, fields in (("acknowledge", {}), ("start", {}),
                           ("resolve", {"result": "Bakıldı / looked at"})):
        assert act(expert, app_id, action, **fields).status_code == 303
    coordinator = app.test_client()
    pages.sign_in(coordinator, "mez-0004")
    assert 'id="approvals-empty"' in coordinator.get("/console/sonuclandir").get_data(
        as_text=True)
    assert "close" not in forms(coordinator.get(f"/console/vaka/{app_id}").get_data(
        as_text=True))
    refused = act_blind(coordinator, app_id, "close")  # routing itself refuses: 409
    assert refused.status_code == 409
    assert stored(routing, app_id)["state"] == "resolved"
    assert expert.get("/console/sonuclandir").status_code == 403  # not the expert's queue


def test_the_supervisor_rejects_with_a_reason_and_the_case_is_back_in_progress(
        app, pages, routing, open_application):
    app_id = open_application("K7M4QX2E2")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    for action, fields in (("acknowledge", {}), ("start", {}),
                           ("resolve", {"result": "Bakıldı / looked at"})):
        assert act(expert, app_id, action, **fields).status_code == 303
    supervisor = app.test_client()
    pages.sign_in(supervisor, "mez-0010")
    assert act(supervisor, app_id, "reject", reason="Fotoğraf yok / no photo"
               ).status_code == 303
    case = stored(routing, app_id)
    assert case["state"] == "in_progress" and case["history"][-1]["reason"] == \
        "Fotoğraf yok / no photo"


def test_a_transfer_moves_the_case_to_the_chosen_unit(app, pages, routing, open_application):
    app_id = open_application("K7M4QX2E3")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    done = act(expert, app_id, "transfer", unit="mezitli_bld.cleaning",
               reason="Park içinde / inside a park")
    assert done.status_code == 303
    assert stored(routing, app_id)["unit"] == "mezitli_bld.cleaning"
    # now outside the expert's scope: routing refuses to show it, and the page says so
    assert expert.get(done.headers["Location"]).status_code == 403
    refused = act_blind(expert, app_id, "acknowledge")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403, html
    assert "outside what mez-0008 may act on" in html  # the action's refusal, not the read's
    assert stored(routing, app_id)["state"] == "assigned"
    assert stored(routing, app_id)["unit"] == "mezitli_bld.cleaning"


def test_a_wrong_role_action_is_refused_by_routing_with_403_on_the_page(
        app, pages, routing, open_application):
    app_id = open_application("K7M4QX2E4")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    for action, fields in (("acknowledge", {}), ("start", {}),
                           ("resolve", {"result": "Tamam / done"})):
        assert act(expert, app_id, action, **fields).status_code == 303
    refused = act(expert, app_id, "approve")  # no form is offered; posted anyway
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403, html
    assert 'id="refused"' in html and "role expert may not approve a case" in html
    assert 'id="refused-field">role<' in html
    case = stored(routing, app_id)
    assert case["state"] == "resolved" and case["approved"] is False


def test_an_action_in_the_wrong_state_shows_routings_409(app, pages, routing,
                                                         open_application):
    app_id = open_application("K7M4QX2E5")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    refused = act(expert, app_id, "resolve", result="Erken / too early")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409, html
    assert "cannot resolve a case in state assigned" in html
    assert stored(routing, app_id)["state"] == "assigned"


def test_a_missing_csrf_token_is_a_403_and_changes_nothing(app, pages, routing,
                                                           open_application):
    app_id = open_application("K7M4QX2E6")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    for data in ({}, {"csrf": "not-the-token"}):
        refused = expert.post(f"/console/vaka/{app_id}/acknowledge", data=data)
        assert refused.status_code == 403
        assert "csrf" in refused.get_data(as_text=True)
    case = stored(routing, app_id)
    assert case["state"] == "assigned" and case.get("read_at") is None


def test_resolving_without_a_result_shows_routings_422_naming_the_field(
        app, pages, routing, open_application):
    app_id = open_application("K7M4QX2E7")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    assert act(expert, app_id, "acknowledge").status_code == 303
    assert act(expert, app_id, "start").status_code == 303
    refused = act(expert, app_id, "resolve", result="   ", photo="ref-1")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html
    assert "result: Missing data for required field." in html
    assert 'href="#resolve-result" id="refused-field">result<' in html
    assert re.search(r'<textarea id="resolve-result" name="result"[^>]*aria-invalid="true"', html)
    assert 'value="ref-1"' in html  # what was typed is kept
    assert stored(routing, app_id)["state"] == "in_progress"


def test_signed_out_the_action_goes_to_the_sign_in_page(client, open_application, routing):
    app_id = open_application("K7M4QX2E8")
    answer = client.post(f"/console/vaka/{app_id}/acknowledge", data={"csrf": "x"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/console/giris")
    assert stored(routing, app_id)["state"] == "assigned"


def test_an_expert_has_no_approval_queue(client, pages):
    pages.sign_in(client, "mez-0008")
    refused = client.get("/console/onay")
    assert refused.status_code == 403 and "does not approve" in refused.get_data(as_text=True)
    assert 'href="/console/onay"' not in client.get("/console/").get_data(as_text=True)


def test_without_routing_an_action_and_the_queue_are_a_503(app, parts, pages,
                                                           open_application, routing):
    app_id = open_application("K7M4QX2E9")
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    page = expert.get(f"/console/vaka/{app_id}").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    parts.routing.base_url = "http://127.0.0.1:9"  # nothing listens there
    answer = expert.post(f"/console/vaka/{app_id}/acknowledge", data={"csrf": csrf})
    assert answer.status_code == 503 and "not answering" in answer.get_data(as_text=True)
    assert stored(routing, app_id)["state"] == "assigned"
    supervisor = app.test_client()
    pages.sign_in(supervisor, "mez-0010")
    assert supervisor.get("/console/onay").status_code == 503
