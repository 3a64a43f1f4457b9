"""The administrators' pages (`/console/yonetim…`) against routing's and SLA's real admin APIs:
both Flask apps served over HTTP in this process on the test's databases. An administrator adds
and changes a category, puts and deletes an SLA rule, changes a unit's experts and adds a staff
member through the pages' forms, and the services' own APIs then show it; a refusal comes back
on the form with the field marked and the values kept; another role, or a POST without the
session's CSRF token, changes nothing; a service away is a 503 page."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from werkzeug.datastructures import MultiDict

from services.common.config import load_config
from services.console import admin
from services.console.bootstrap import build
from services.console.web import create_app
from services.sla.bootstrap import build as build_sla
from services.sla.web import create_app as create_sla_app
from tests.support import bearer, serve

HOME = "/console/yonetim"
PAGES = (HOME, f"{HOME}/kategoriler", f"{HOME}/sla", f"{HOME}/birimler")
NEW_CATEGORY = {"code": "sokak_lambasi", "name_tr": "Sokak lambası arızası",
                "name_en": "Street light fault", "kinds": ["complaint", "request"],
                "tier": "district", "read_hours": "4,5", "resolve_hours": "48",
                "priority": "high", "reopen_days": "10", "first_contact": "hayir",
                "muhtar": "hayir"}
NEW_RULE = {"category": "road_damage", "priority": "high", "institution": "",
            "read_hours": "2", "resolve_hours": "24", "warn_at": "50 80",
            "ladder_hours": "4 8 16 24", "calendar": "round_the_clock"}
WORKS = "mezitli_bld.works"


@pytest.fixture
def sla(databases) -> Iterator:
    parts = build_sla(load_config(env={}, **databases))
    yield parts
    parts.close()


@pytest.fixture
def sla_url(sla) -> Iterator[str]:
    with serve(create_sla_app(sla)) as base:
        yield base


@pytest.fixture
def console_config(databases, routing_url, sla_url) -> dict:
    return load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_ROUTING_URL=routing_url,
                       CONSOLE_SLA_URL=sla_url, **databases)


def sign_in_admin(client, pages, clock) -> None:
    pages.sign_in(client, "adm-0001")
    form = client.get("/console/dogrulama")
    answer = client.post("/console/dogrulama", data={
        "code": pages.totp_code(clock.now), "csrf": pages.csrf_of(form.get_data(as_text=True))})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def input_tag(html: str, element_id: str) -> str:
    found = re.search(rf'<(?:input|select|fieldset)[^>]*id="{element_id}"[^>]*>', html)
    assert found, element_id
    return found.group(0)


def category(routing_url: str, code: str) -> dict | None:
    answer = requests.get(f"{routing_url}/api/v1/categories/{code}", timeout=5)
    return answer.json() if answer.status_code == 200 else None


def rules(sla_url: str, config: dict) -> dict:
    answer = requests.get(f"{sla_url}/api/v1/sla/policies", timeout=5,
                          headers=bearer(config, "admin", user="test-admin"))
    assert answer.status_code == 200, answer.text
    return {rule["id"]: rule for rule in answer.json()["items"]}


def unit(routing_url: str, config: dict, code: str = WORKS) -> dict:
    return requests.get(f"{routing_url}/api/v1/directory/units/{code}", timeout=5,
                        headers=bearer(config, "admin", user="test-admin")).json()


# -- the pages --------------------------------------------------------------------------------


def test_an_administrator_adds_and_changes_a_category_that_routing_then_lists(
        client, pages, clock, routing_url):
    sign_in_admin(client, pages, clock)
    assert f'href="{HOME}"' in client.get("/console/").get_data(as_text=True)
    home = client.get(HOME).get_data(as_text=True)
    for path in PAGES[1:]:
        assert f'href="{path}"' in home

    page = client.get(f"{HOME}/kategoriler").get_data(as_text=True)
    assert 'data-category="road_damage"' in page
    added = client.post(f"{HOME}/kategoriler", data=dict(NEW_CATEGORY,
                                                         csrf=pages.csrf_of(page)))
    assert added.status_code == 303, added.get_data(as_text=True)
    stored = category(routing_url, "sokak_lambasi")
    assert stored is not None
    assert (stored["name_tr"], stored["kinds"], stored["read_hours"], stored["resolve_hours"],
            stored["priority"], stored["reopen_days"]) == (
        "Sokak lambası arızası", ["complaint", "request"], 4.5, 48, "high", 10)
    listed = client.get(added.headers["Location"]).get_data(as_text=True)
    assert 'id="notice"' in listed and 'data-category="sokak_lambasi"' in listed

    edit = client.get(f"{HOME}/kategoriler?duzenle=sokak_lambasi").get_data(as_text=True)
    assert 'value="Street light fault"' in input_tag(edit, "edit-name_en")
    changed = client.post(f"{HOME}/kategoriler/sokak_lambasi", data={
        "csrf": pages.csrf_of(edit), "name_tr": "Sokak aydınlatması", "name_en": "Street light",
        "kinds_listed": "1", "kinds": ["complaint"], "tier": "district", "read_hours": "4.5",
        "resolve_hours": "72", "priority": "high", "reopen_days": "10", "institution": "",
        "first_contact": "hayir", "muhtar": "hayir"})
    assert changed.status_code == 303, changed.get_data(as_text=True)
    stored = category(routing_url, "sokak_lambasi")
    assert (stored["name_tr"], stored["kinds"], stored["resolve_hours"]) == (
        "Sokak aydınlatması", ["complaint"], 72)


def test_an_invalid_category_comes_back_on_its_form_with_the_field_named_and_kept(
        client, pages, clock, routing_url):
    sign_in_admin(client, pages, clock)
    page = client.get(f"{HOME}/kategoriler").get_data(as_text=True)
    refused = client.post(f"{HOME}/kategoriler", data=dict(
        NEW_CATEGORY, read_hours="-4", csrf=pages.csrf_of(page)))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html
    assert 'id="refused-new"' in html and "read_hours" in html
    assert 'id="refused-field">read_hours<' in html
    tag = input_tag(html, "new-read_hours")
    assert 'aria-invalid="true"' in tag and 'value="-4"' in tag
    assert 'value="Sokak lambası arızası"' in input_tag(html, "new-name_tr")
    assert "checked" in input_tag(html, "new-kind-request")
    assert category(routing_url, "sokak_lambasi") is None

    edit = client.get(f"{HOME}/kategoriler?duzenle=road_damage").get_data(as_text=True)
    refused = client.post(f"{HOME}/kategoriler/road_damage", data={
        "csrf": pages.csrf_of(edit), "kinds_listed": "1", "kinds": ["complaint"],
        "read_hours": "10", "resolve_hours": "5"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html
    tag = input_tag(html, "edit-resolve_hours")
    assert 'aria-invalid="true"' in tag and 'value="5"' in tag
    assert category(routing_url, "road_damage")["resolve_hours"] == 72


def test_a_policy_put_and_deleted_through_the_page_is_seen_and_then_absent_in_sla(
        client, pages, clock, sla_url, console_config):
    sign_in_admin(client, pages, clock)
    page = client.get(f"{HOME}/sla").get_data(as_text=True)
    assert 'id="rules-empty"' in page
    put = client.post(f"{HOME}/sla", data=dict(NEW_RULE, csrf=pages.csrf_of(page)))
    assert put.status_code == 303, put.get_data(as_text=True)
    rule_id = "category=road_damage,priority=high"
    stored = rules(sla_url, console_config)[rule_id]
    assert stored["scope"] == {"category": "road_damage", "priority": "high",
                               "institution": None}
    assert stored["settings"] == {"read_hours": 2, "resolve_hours": 24, "warn_at": [50, 80],
                                  "ladder_hours": [4, 8, 16, 24],
                                  "calendar": "round_the_clock"}
    listed = client.get(put.headers["Location"]).get_data(as_text=True)
    assert f'data-rule="{rule_id}"' in listed

    refused = client.post(f"{HOME}/sla", data=dict(NEW_RULE, warn_at="80 50",
                                                   csrf=pages.csrf_of(listed)))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html
    tag = input_tag(html, "put-warn_at")
    assert 'aria-invalid="true"' in tag and 'value="80 50"' in tag
    assert rules(sla_url, console_config)[rule_id]["settings"]["warn_at"] == [50, 80]

    deleted = client.post(f"{HOME}/sla/{rule_id}/sil", data={"csrf": pages.csrf_of(listed)})
    assert deleted.status_code == 303, deleted.get_data(as_text=True)
    assert rule_id not in rules(sla_url, console_config)
    again = client.post(f"{HOME}/sla/{rule_id}/sil", data={"csrf": pages.csrf_of(listed)})
    assert again.status_code == 404 and 'id="refused-delete"' in again.get_data(as_text=True)


def test_an_administrator_changes_a_units_experts_and_adds_a_staff_member(
        client, pages, clock, routing_url, console_config):
    sign_in_admin(client, pages, clock)
    page = client.get(f"{HOME}/birimler?birim={WORKS}").get_data(as_text=True)
    assert f'data-unit="{WORKS}"' in page and 'id="ladder"' in page
    assert 'value="mez-0008"' in input_tag(page, "unit-primary")
    swapped = client.post(f"{HOME}/birimler/{WORKS}", data={
        "csrf": pages.csrf_of(page), "primary": "mez-0009", "backup": "mez-0008"})
    assert swapped.status_code == 303, swapped.get_data(as_text=True)
    assert unit(routing_url, console_config)["experts"] == {"primary": "mez-0009",
                                                            "backup": "mez-0008"}

    refused = client.post(f"{HOME}/birimler/{WORKS}", data={
        "csrf": pages.csrf_of(page), "primary": "mez-0009"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html
    assert 'aria-invalid="true"' in input_tag(html, "unit-backup")
    assert 'value="mez-0009"' in input_tag(html, "unit-primary")
    unknown = client.post(f"{HOME}/birimler/{WORKS}", data={
        "csrf": pages.csrf_of(page), "primary": "mez-0009", "backup": "zzz-9999"})
    assert unknown.status_code == 422, unknown.get_data(as_text=True)
    assert 'value="zzz-9999"' in input_tag(unknown.get_data(as_text=True), "unit-backup")
    assert unit(routing_url, console_config)["experts"] == {"primary": "mez-0009",
                                                            "backup": "mez-0008"}

    added = client.post(f"{HOME}/personel", data={
        "csrf": pages.csrf_of(page), "code": "mez-0420", "name": "Deniz Kaya", "role": "expert",
        "institution": "mezitli_bld", "unit": WORKS, "email": ""})
    assert added.status_code == 303, added.get_data(as_text=True)
    person = requests.get(f"{routing_url}/api/v1/directory/staff/mez-0420", timeout=5,
                          headers=bearer(console_config, "admin", user="test-admin")).json()
    assert (person["name"], person["unit"]) == ("Deniz Kaya", WORKS)
    bad = client.post(f"{HOME}/personel", data={
        "csrf": pages.csrf_of(page), "code": "0421", "name": "Ada", "role": "expert",
        "institution": "mezitli_bld"})
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in input_tag(bad.get_data(as_text=True), "staff-code")


@pytest.mark.parametrize("user", ["mez-0008", "mez-0004"])  # an expert, a coordinator
def test_another_role_gets_403_on_every_admin_page_and_its_posts_change_nothing(
        client, pages, user, routing_url, sla_url, console_config):
    pages.sign_in(client, user)
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    csrf = pages.csrf_of(client.get("/console/").get_data(as_text=True))
    for path, form in ((f"{HOME}/kategoriler", NEW_CATEGORY),
                       (f"{HOME}/kategoriler/road_damage", {"resolve_hours": "99"}),
                       (f"{HOME}/sla", NEW_RULE),
                       (f"{HOME}/birimler/{WORKS}", {"primary": "mez-0009",
                                                     "backup": "mez-0008"}),
                       (f"{HOME}/personel", {"code": "mez-0421", "name": "Ada",
                                             "role": "admin", "institution": "mezitli_bld"})):
        assert client.post(path, data=dict(form, csrf=csrf)).status_code == 403, path
    assert category(routing_url, "sokak_lambasi") is None
    assert category(routing_url, "road_damage")["resolve_hours"] == 72
    assert rules(sla_url, console_config) == {}
    assert unit(routing_url, console_config)["experts"]["primary"] == "mez-0008"
    assert "mez-0421" not in {s["code"] for s in unit(routing_url, console_config)["staff"]
                              if s}


def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(
        client, pages, clock, sla, routing_url, sla_url, console_config):
    sla.deadlines.save_rule({"category": "road_damage"}, {"read_hours": 3})
    sign_in_admin(client, pages, clock)
    for path, form in ((f"{HOME}/kategoriler", NEW_CATEGORY),
                       (f"{HOME}/kategoriler/road_damage", {"resolve_hours": "99"}),
                       (f"{HOME}/sla", NEW_RULE),
                       (f"{HOME}/sla/category=road_damage/sil", {}),
                       (f"{HOME}/birimler/{WORKS}", {"primary": "mez-0009",
                                                     "backup": "mez-0008"})):
        for csrf in ({}, {"csrf": "forged"}):
            answer = client.post(path, data=dict(form, **csrf))
            assert answer.status_code == 403, path
            assert "csrf" in answer.get_data(as_text=True)
    assert category(routing_url, "sokak_lambasi") is None
    assert category(routing_url, "road_damage")["resolve_hours"] == 72
    assert list(rules(sla_url, console_config)) == ["category=road_damage"]
    assert unit(routing_url, console_config)["experts"]["primary"] == "mez-0008"


def test_a_service_away_is_a_503_page_not_a_500(console_config, clock, pages):
    nowhere = dict(console_config, CONSOLE_ROUTING_URL="http://127.0.0.1:9",
                   CONSOLE_SLA_URL="http://127.0.0.1:9")
    parts = build(nowhere, clock)
    try:
        client = create_app(parts).test_client()
        sign_in_admin(client, pages, clock)
        csrf = pages.csrf_of(client.get(HOME).get_data(as_text=True))
        for path in PAGES[1:]:
            answer = client.get(path)
            assert answer.status_code == 503, path
            assert "yanıt vermiyor" in answer.get_data(as_text=True)
        for path, form in ((f"{HOME}/kategoriler", NEW_CATEGORY), (f"{HOME}/sla", NEW_RULE),
                           (f"{HOME}/birimler/{WORKS}", {"primary": "mez-0009"})):
            assert client.post(path, data=dict(form, csrf=csrf)).status_code == 503, path
    finally:
        parts.close()


# -- the forms as the APIs' bodies -------------------------------------------------------------


def test_forms_become_the_apis_bodies_without_judging_them():
    form = MultiDict([("code", " x "), ("name_tr", ""), ("read_hours", "4,5"),
                      ("kinds", "complaint"), ("kinds", "thanks"), ("muhtar", "evet")])
    assert admin.category_body(form, creating=True) == {
        "code": "x", "read_hours": "4.5", "kinds": ["complaint", "thanks"], "muhtar": True}
    assert admin.category_body(MultiDict(), creating=False) == {}
    assert admin.category_body(MultiDict([("kinds_listed", "1"), ("institution", "")]),
                               creating=False) == {"kinds": [], "institution": None}
    assert admin.policy_body(MultiDict([("priority", "high"), ("warn_at", "50, 80;90"),
                                        ("unread_to_mayor", "hayir")])) == {
        "scope": {"category": None, "priority": "high", "institution": None},
        "settings": {"warn_at": ["50", "80", "90"], "unread_to_mayor": False}}
    assert admin.unit_body(MultiDict([("primary", "a-0001"), ("backup", "b-0002")])) == {
        "experts": {"primary": "a-0001", "backup": "b-0002"}}
    assert admin.blank_expert(MultiDict([("primary", "a-0001"), ("backup", " ")])) == "backup"


def test_a_refusal_names_the_deepest_field_of_the_form():
    errors = {"json": {"settings": {"read_hours": ["Must be greater than 0."]}}}
    assert admin.field_named(errors, admin.POLICY_FIELDS) == "read_hours"
    assert admin.error_lines(errors) == ["settings.read_hours: Must be greater than 0."]
    assert admin.field_named({"json": {"experts": {"backup": ["Missing data"]}}},
                             admin.UNIT_FIELDS) == "backup"
    assert admin.field_named({"json": {"units:x": ["broken"]}}, admin.UNIT_FIELDS) is None
