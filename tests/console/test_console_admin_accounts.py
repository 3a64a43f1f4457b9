"""The administrators' account and routing-rule pages (`/console/yonetim/kullanicilar`,
`/console/yonetim/kurallar`): an administrator adds an account that then signs in, a refusal
comes back on the form with the field named and the values kept (never the password), a
disabled account is refused like a wrong password and its session ends, nobody disables
themself; a mapping put through the page changes routing's real decision and deleting it
restores it; other roles and POSTs without the CSRF token change nothing; routing away is 503."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pyotp
import pytest
import requests

from services.common.config import load_config
from services.console.bootstrap import build
from services.console.logins import Refused, SignedIn
from services.console.web import create_app
from tests.support import bearer

HOME = "/console/yonetim"
ACCOUNTS, RULES = f"{HOME}/kullanicilar", f"{HOME}/kurallar"
NEW = {"code": "mez-0777", "name": "Ada Yılmaz", "role": "expert", "unit": "mezitli_bld.works",
       "institution": "mezitli_bld", "email": "mez-0777@example.gov.tr",
       "password": "uzun-bir-parola-77", "password_again": "uzun-bir-parola-77"}
UNMAPPED = "unmapped_example"  # a district category mezitli_bld maps to no unit (sample data)


@pytest.fixture
def console_config(databases, routing_url) -> dict:
    return load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_ROUTING_URL=routing_url,
                       **databases)


def sign_in_admin(client, pages, clock, user: str = "adm-0001",
                  secret: str | None = None) -> None:
    pages.sign_in(client, user, **({} if secret is None else {"password": NEW["password"]}))
    form = client.get("/console/dogrulama")
    answer = client.post("/console/dogrulama", data={
        "code": pages.totp_code(clock.now, secret or pages.TOTP_SECRET),
        "csrf": pages.csrf_of(form.get_data(as_text=True))})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def tag(html: str, element_id: str) -> str:
    found = re.search(rf'<(?:input|select)[^>]*id="{element_id}"[^>]*>', html)
    assert found, element_id
    return found.group(0)


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", html)


def decision(routing_url: str, config: dict, category: str) -> str:
    answer = requests.get(f"{routing_url}/api/v1/directory/route", timeout=5, params={
        "category": category, "province": "Mersin", "district": "Mezitli"},
        headers=bearer(config, "expert", "mezitli_bld.works", "mez-0008", "mezitli_bld"))
    assert answer.status_code == 200, answer.text
    return answer.json()["unit"]


# -- console accounts -------------------------------------------------------------------------


def test_an_administrator_adds_an_account_that_then_signs_in_and_is_listed_without_secrets(
        client, app, pages, clock, parts):
    sign_in_admin(client, pages, clock)
    home = client.get(HOME).get_data(as_text=True)
    assert f'href="{ACCOUNTS}"' in home and f'href="{RULES}"' in home
    page = client.get(ACCOUNTS).get_data(as_text=True)
    assert 'data-account="adm-0001"' in page
    added = client.post(ACCOUNTS, data=dict(NEW, csrf=pages.csrf_of(page)))
    assert added.status_code == 303, added.get_data(as_text=True)
    listed = client.get(added.headers["Location"]).get_data(as_text=True)
    assert 'data-account="mez-0777"' in listed and "Ada Yılmaz" in listed
    assert "$argon2" not in listed and pages.TOTP_SECRET not in listed
    stored = parts.store.get_account("mez-0777")
    assert (stored["role"], stored["unit"], stored["email"]) == (
        "expert", "mezitli_bld.works", "mez-0777@example.gov.tr")

    other = app.test_client()
    signed = pages.sign_in(other, "mez-0777", NEW["password"])
    assert signed.status_code == 303 and signed.headers["Location"].endswith("/console/")


def test_an_account_needing_totp_shows_its_otpauth_uri_once_and_signs_in_with_it(
        client, app, pages, clock, parts):
    sign_in_admin(client, pages, clock)
    page = client.get(ACCOUNTS).get_data(as_text=True)
    answer = client.post(ACCOUNTS, data=dict(NEW, code="adm-0777", role="admin", unit="",
                                             institution="", csrf=pages.csrf_of(page)))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 201, html
    assert answer.headers["Cache-Control"] == "no-store"
    uri = re.search(r'id="otpauth-uri">(otpauth://[^<]+)<', html).group(1)
    secret = parts.store.get_account("adm-0777")["totp_secret"]
    assert pyotp.parse_uri(uri.replace("&amp;", "&")).secret == secret
    assert secret not in client.get(ACCOUNTS).get_data(as_text=True)  # shown once
    sign_in_admin(app.test_client(), pages, clock, "adm-0777", secret)


def test_a_duplicate_code_or_a_short_password_is_refused_naming_the_field_and_keeping_values(
        client, pages, clock, parts):
    sign_in_admin(client, pages, clock)
    page = client.get(ACCOUNTS).get_data(as_text=True)
    duplicate = client.post(ACCOUNTS, data=dict(NEW, code="mez-0008", csrf=pages.csrf_of(page)))
    html = duplicate.get_data(as_text=True)
    assert duplicate.status_code == 409, html
    assert 'id="refused-field">code<' in html
    assert 'aria-invalid="true"' in tag(html, "new-code")

    short = client.post(ACCOUNTS, data=dict(NEW, password="kisa", password_again="kisa",
                                            csrf=pages.csrf_of(page)))
    html = short.get_data(as_text=True)
    assert short.status_code == 422, html
    assert 'id="refused-field">password<' in html
    assert 'aria-invalid="true"' in tag(html, "new-password")
    assert 'value="mez-0777"' in tag(html, "new-code")
    assert 'value="Ada Yılmaz"' in tag(html, "new-name")
    assert "selected" in re.search(r'<option value="expert"[^>]*>', html).group(0)
    assert "kisa" not in html.replace("kisaltma", "")
    assert parts.store.get_account("mez-0777") is None


def test_disabling_ends_the_accounts_session_and_refuses_its_login_until_enabled(
        client, app, pages, clock, parts):
    theirs = app.test_client()
    assert pages.sign_in(theirs, "mez-0008").status_code == 303
    assert theirs.get("/console/").status_code == 200
    sign_in_admin(client, pages, clock)
    csrf = pages.csrf_of(client.get(ACCOUNTS).get_data(as_text=True))
    disabled = client.post(f"{ACCOUNTS}/mez-0008/kapat", data={"csrf": csrf})
    assert disabled.status_code == 303, disabled.get_data(as_text=True)
    assert parts.store.get_account("mez-0008")["disabled"] is True
    assert theirs.get("/console/").status_code == 303  # the session is gone: to the login
    wrong = pages.sign_in(app.test_client(), "mez-0008", "yanlis-parola")
    refused = pages.sign_in(app.test_client(), "mez-0008")
    assert refused.status_code == wrong.status_code != 303
    assert without_csrf(refused.get_data(as_text=True)) == without_csrf(
        wrong.get_data(as_text=True))  # the same answer as a wrong password
    assert isinstance(parts.logins.sign_in("mez-0008", pages.PASSWORD, "10.0.0.9"), Refused)

    assert client.post(f"{ACCOUNTS}/mez-0008/ac", data={"csrf": csrf}).status_code == 303
    assert isinstance(parts.logins.sign_in("mez-0008", pages.PASSWORD, "10.0.0.9"), SignedIn)


def test_an_administrator_cannot_disable_their_own_account(client, pages, clock, parts):
    sign_in_admin(client, pages, clock)
    csrf = pages.csrf_of(client.get(ACCOUNTS).get_data(as_text=True))
    answer = client.post(f"{ACCOUNTS}/adm-0001/kapat", data={"csrf": csrf})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422, html
    assert 'id="refused-field">code<' in html
    assert not parts.store.get_account("adm-0001").get("disabled")
    assert client.get(ACCOUNTS).status_code == 200  # still signed in


# -- routing rules ----------------------------------------------------------------------------


def test_a_mapping_put_through_the_page_changes_routings_decision_and_deleting_restores_it(
        client, pages, clock, routing_url, console_config):
    before = decision(routing_url, console_config, UNMAPPED)
    assert before == "mezitli_bld.coordination"
    sign_in_admin(client, pages, clock)
    page = client.get(f"{RULES}?kurum=mezitli_bld").get_data(as_text=True)
    assert 'data-mapping="road_damage"' in page and "Fındıkpınarı" in page
    put = client.post(f"{RULES}/mezitli_bld/eslemeler", data={
        "csrf": pages.csrf_of(page), "category": UNMAPPED, "unit": "mezitli_bld.parks"})
    assert put.status_code == 303, put.get_data(as_text=True)
    assert decision(routing_url, console_config, UNMAPPED) == "mezitli_bld.parks"
    assert f'data-mapping="{UNMAPPED}"' in client.get(put.headers["Location"]).get_data(
        as_text=True)

    bad = client.post(f"{RULES}/mezitli_bld/eslemeler", data={
        "csrf": pages.csrf_of(page), "category": UNMAPPED, "unit": "no such unit"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422, html
    assert 'value="no such unit"' in tag(html, "mapping-unit")

    deleted = client.post(f"{RULES}/mezitli_bld/eslemeler/{UNMAPPED}/sil",
                          data={"csrf": pages.csrf_of(page)})
    assert deleted.status_code == 303, deleted.get_data(as_text=True)
    assert decision(routing_url, console_config, UNMAPPED) == before


def test_an_override_put_and_deleted_through_the_page_is_stored_then_gone(
        client, pages, clock, routing_url, console_config):
    sign_in_admin(client, pages, clock)
    page = client.get(f"{RULES}?kurum=mezitli_bld").get_data(as_text=True)
    key = {"district": "Mezitli", "neighbourhood": "Tepeköy", "category": "cleaning"}
    put = client.post(f"{RULES}/mezitli_bld/istisnalar", data=dict(
        key, unit="mezitli_bld.rural_services", csrf=pages.csrf_of(page)))
    assert put.status_code == 303, put.get_data(as_text=True)
    stored = requests.get(f"{routing_url}/api/v1/directory/institutions/mezitli_bld", timeout=5,
                          headers=bearer(console_config, "admin", user="test-admin")).json()
    assert dict(key, unit="mezitli_bld.rural_services") in stored["neighbourhood_overrides"]
    gone = client.post(f"{RULES}/mezitli_bld/istisnalar/sil",
                       data=dict(key, csrf=pages.csrf_of(page)))
    assert gone.status_code == 303, gone.get_data(as_text=True)
    stored = requests.get(f"{routing_url}/api/v1/directory/institutions/mezitli_bld", timeout=5,
                          headers=bearer(console_config, "admin", user="test-admin")).json()
    assert all((o["neighbourhood"], o["category"]) != ("Tepeköy", "cleaning")
               for o in stored["neighbourhood_overrides"])


# -- refusals -----------------------------------------------------------------------------------

POSTS = ((ACCOUNTS, NEW), (f"{ACCOUNTS}/mez-0010/kapat", {}),
         (f"{RULES}/mezitli_bld/eslemeler", {"category": UNMAPPED, "unit": "mezitli_bld.parks"}),
         (f"{RULES}/mezitli_bld/eslemeler/road_damage/sil", {}))


def nothing_changed(parts, routing_url, config) -> None:
    assert parts.store.get_account("mez-0777") is None
    assert not parts.store.get_account("mez-0010").get("disabled")
    assert decision(routing_url, config, UNMAPPED) == "mezitli_bld.coordination"
    assert decision(routing_url, config, "road_damage") == "mezitli_bld.works"


@pytest.mark.parametrize("user", ["mez-0008", "mez-0004"])  # an expert, a coordinator
def test_another_role_gets_403_on_the_pages_and_its_posts_change_nothing(
        client, pages, user, parts, routing_url, console_config):
    pages.sign_in(client, user)
    for path in (ACCOUNTS, f"{RULES}?kurum=mezitli_bld"):
        assert client.get(path).status_code == 403, path
    csrf = pages.csrf_of(client.get("/console/").get_data(as_text=True))
    for path, form in POSTS:
        assert client.post(path, data=dict(form, csrf=csrf)).status_code == 403, path
    nothing_changed(parts, routing_url, console_config)


def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(
        client, pages, clock, parts, routing_url, console_config):
    sign_in_admin(client, pages, clock)
    for path, form in POSTS:
        for csrf in ({}, {"csrf": "forged"}):
            answer = client.post(path, data=dict(form, **csrf))
            assert answer.status_code == 403, path
            assert "csrf" in answer.get_data(as_text=True)
    nothing_changed(parts, routing_url, console_config)


def test_routing_away_is_a_503_page(console_config, clock, pages) -> None:
    parts = build(dict(console_config, CONSOLE_ROUTING_URL="http://127.0.0.1:9"), clock)
    try:
        client = create_app(parts).test_client()
        sign_in_admin(client, pages, clock)
        csrf = pages.csrf_of(client.get(ACCOUNTS).get_data(as_text=True))
        for path in (RULES, f"{RULES}?kurum=mezitli_bld"):
            assert client.get(path).status_code == 503, path
        for path, form in POSTS[2:]:
            answer = client.post(path, data=dict(form, csrf=csrf))
            assert answer.status_code == 503, path
            assert "yanıt vermiyor" in answer.get_data(as_text=True)
    finally:
        parts.close()


@pytest.fixture
def bound_admin(parts) -> Iterator[str]:
    """An administrator bound to an institution (no TOTP dance: its session is made directly)."""
    from argon2 import PasswordHasher

    from services.console.accounts import make_account
    parts.store.add_account(make_account({
        "user": "mez-0999", "role": "admin", "institution": "mezitli_bld",
        "password": NEW["password"]}, PasswordHasher()))
    yield "mez-0999"


def test_an_administrator_bound_to_an_institution_cannot_manage_accounts(
        app, pages, clock, parts, bound_admin):
    client = app.test_client()
    secret = parts.store.get_account(bound_admin)["totp_secret"]
    sign_in_admin(client, pages, clock, bound_admin, secret)
    assert client.get(ACCOUNTS).status_code == 403
    csrf = pages.csrf_of(client.get("/console/").get_data(as_text=True))
    assert client.post(ACCOUNTS, data=dict(NEW, csrf=csrf)).status_code == 403
    assert parts.store.get_account("mez-0777") is None
