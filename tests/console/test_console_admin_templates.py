"""The message templates page (`/console/yonetim/sablonlar`) against notify's real admin API:
notify's Flask app served over HTTP in this process on the test's databases. An administrator
saves an override that notify then lists and goes back to the file; a text notify refuses comes
back on its form with `text` named and the text kept; another role, or a POST without the
session's CSRF token, changes nothing; notify away is a 503 page."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from services.common.config import load_config
from services.console import admin
from services.console.bootstrap import build
from services.console.web import create_app
from services.notify.bootstrap import build as build_notify
from services.notify.web import create_app as create_notify_app
from tests.support import bearer, serve

PAGE = "/console/yonetim/sablonlar"
OTP = f"{PAGE}/sms/one_time_code.tr"
TARGET = "sms-one_time_code-tr"
NEW_OTP = "Açık Kapı kodunuz: {{ code }} & kimseyle paylaşmayın."


@pytest.fixture
def notify(databases) -> Iterator:
    parts = build_notify(load_config(env={}, **databases))
    yield parts
    parts.close()


@pytest.fixture
def notify_url(notify) -> Iterator[str]:
    with serve(create_notify_app(notify)) as base:
        yield base


@pytest.fixture
def console_config(databases, notify_url) -> dict:
    return load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_NOTIFY_URL=notify_url,
                       **databases)


def sign_in_admin(client, pages, clock) -> None:
    pages.sign_in(client, "adm-0001")
    form = client.get("/console/dogrulama")
    answer = client.post("/console/dogrulama", data={
        "code": pages.totp_code(clock.now), "csrf": pages.csrf_of(form.get_data(as_text=True))})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def override_of(notify_url: str, config: dict, channel: str = "sms",
                name: str = "one_time_code.tr") -> str | None:
    answer = requests.get(f"{notify_url}/api/v1/notifications/templates", timeout=5,
                          headers=bearer(config, "admin", user="test-admin"))
    assert answer.status_code == 200, answer.text
    [item] = [item for item in answer.json()["items"]
              if (item["channel"], item["name"]) == (channel, name)]
    return item["override_text"]


def textarea(html: str, element_id: str) -> tuple[str, str]:
    """The opening tag and the content of the textarea `element_id`."""
    found = re.search(rf'(<textarea[^>]*id="{element_id}"[^>]*>)(.*?)</textarea>', html, re.S)
    assert found, element_id
    return found.group(1), found.group(2)


def test_an_administrator_saves_an_override_that_notify_lists_then_goes_back_to_the_file(
        client, pages, clock, notify_url, console_config):
    sign_in_admin(client, pages, clock)
    assert f'href="{PAGE}"' in client.get("/console/yonetim").get_data(as_text=True)
    page = client.get(PAGE).get_data(as_text=True)
    assert f'id="{TARGET}"' in page and 'id="email-case_closed-en-text"' in page
    assert "onay kodunuz: {{ code }}" in textarea(page, f"{TARGET}-text")[1]
    saved = client.post(OTP, data={"text": NEW_OTP.replace("\n", "\r\n"),
                                   "csrf": pages.csrf_of(page)})
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert override_of(notify_url, console_config) == NEW_OTP
    listed = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'id="notice"' in listed and f'id="{TARGET}-overridden"' in listed
    assert textarea(listed, f"{TARGET}-text")[1] == "Açık Kapı kodunuz: {{ code }} &amp; " \
                                                    "kimseyle paylaşmayın."

    reset = client.post(f"{OTP}/sil", data={"csrf": pages.csrf_of(listed)})
    assert reset.status_code == 303, reset.get_data(as_text=True)
    assert override_of(notify_url, console_config) is None
    assert f'id="{TARGET}-overridden"' not in client.get(reset.headers["Location"]).get_data(
        as_text=True)


@pytest.mark.parametrize("text", ["Kodunuz: {{ code ", "Kodunuz: {{ tckn }}"])
def test_a_text_notify_refuses_comes_back_on_its_form_naming_text_with_the_text_kept(
        client, pages, clock, notify_url, console_config, text):
    sign_in_admin(client, pages, clock)
    page = client.get(PAGE).get_data(as_text=True)
    refused = client.post(OTP, data={"text": text, "csrf": pages.csrf_of(page)})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html
    assert f'id="refused-{TARGET}"' in html and 'id="refused-field">text<' in html
    tag, content = textarea(html, f"{TARGET}-text")
    assert 'aria-invalid="true"' in tag
    assert content == text
    assert override_of(notify_url, console_config) is None


@pytest.mark.parametrize("user", ["mez-0008", "mez-0004"])  # an expert, a coordinator
def test_another_role_gets_403_and_its_posts_change_nothing(
        client, pages, user, notify_url, console_config):
    pages.sign_in(client, user)
    assert client.get(PAGE).status_code == 403
    csrf = pages.csrf_of(client.get("/console/").get_data(as_text=True))
    assert client.post(OTP, data={"text": NEW_OTP, "csrf": csrf}).status_code == 403
    assert client.post(f"{OTP}/sil", data={"csrf": csrf}).status_code == 403
    assert override_of(notify_url, console_config) is None


def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(
        client, pages, clock, notify_url, console_config):
    sign_in_admin(client, pages, clock)
    for csrf in ({}, {"csrf": "forged"}):
        answer = client.post(OTP, data=dict(text=NEW_OTP, **csrf))
        assert answer.status_code == 403
        assert "csrf" in answer.get_data(as_text=True)
        assert client.post(f"{OTP}/sil", data=csrf).status_code == 403
    assert override_of(notify_url, console_config) is None


def test_notify_away_is_a_503_page_not_a_500(console_config, clock, pages):
    parts = build(dict(console_config, CONSOLE_NOTIFY_URL="http://127.0.0.1:9"), clock)
    try:
        client = create_app(parts).test_client()
        sign_in_admin(client, pages, clock)
        csrf = pages.csrf_of(client.get("/console/yonetim").get_data(as_text=True))
        answer = client.get(PAGE)
        assert answer.status_code == 503
        assert "yanıt vermiyor" in answer.get_data(as_text=True)
        assert client.post(OTP, data={"text": NEW_OTP, "csrf": csrf}).status_code == 503
        assert client.post(f"{OTP}/sil", data={"csrf": csrf}).status_code == 503
    finally:
        parts.close()


def test_a_templates_form_id_is_its_channel_and_name():
    assert admin.template_target("email", "case_closed.en") == "email-case_closed-en"
