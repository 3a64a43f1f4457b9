"""Administrators' overrides of notify's message templates over HTTP (issue 13): listed with the
files' texts, stored when they parse in the sandbox with the template's own variables, used by
the send path at once in the process that stored them, removed back to the file."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.notify import domain
from services.notify.bootstrap import NotifyParts, build
from services.notify.overrides import OverrideCache
from services.notify.web import create_app
from tests.support import bearer

OTP = "/api/v1/notifications/templates/sms/one_time_code.tr"
OTP_FILE = (domain.TEMPLATE_DIR / "sms" / "one_time_code.tr.j2").read_text()
NEW_OTP = "Açık Kapı kodunuz: {{ code }}. Kimseyle paylaşmayın."
PHONE = "+905551000003"


@pytest.fixture
def parts(config) -> Iterator[NotifyParts]:
    parts = build(config)
    yield parts
    parts.close()


@pytest.fixture
def client(parts):
    return create_app(parts).test_client()


@pytest.fixture
def admin(config) -> dict:
    return bearer(config, "admin", user="adm-0001")


def sms_sent(config: dict) -> list[dict]:
    path = Path(config["DEV_SINK_DIR"]) / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def listed(client, admin: dict) -> dict:
    answer = client.get("/api/v1/notifications/templates", headers=admin)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {(item["channel"], item["name"]): item for item in answer.get_json()["items"]}


def test_every_template_file_is_listed_with_its_text_and_no_override(client, admin):
    items = listed(client, admin)
    assert len(items) == len(domain.template_files())
    otp = items[("sms", "one_time_code.tr")]
    assert (otp["template"], otp["language"], otp["file_text"]) == ("one_time_code", "tr",
                                                                    OTP_FILE)
    assert otp["override_text"] is None and otp["updated_by"] is None
    assert ("email", "case_closed.en") in items


def test_an_override_is_listed_and_sent_instead_of_the_file(client, admin, parts, config):
    answer = client.put(OTP, json={"text": NEW_OTP}, headers=admin)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["override_text"] == NEW_OTP
    item = listed(client, admin)[("sms", "one_time_code.tr")]
    assert (item["override_text"], item["file_text"]) == (NEW_OTP, OTP_FILE)
    assert item["updated_by"] == "staff:adm-0001" and item["updated_at"]
    assert parts.deliveries.send_one_time_code(PHONE, "X7KQ4M") is True
    [message] = sms_sent(config)
    assert message["text"] == "Açık Kapı kodunuz: X7KQ4M. Kimseyle paylaşmayın."


def test_deleting_the_override_sends_the_files_text_again(client, admin, parts, config):
    assert client.put(OTP, json={"text": NEW_OTP}, headers=admin).status_code == 200
    answer = client.delete(OTP, headers=admin)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["override_text"] is None
    assert listed(client, admin)[("sms", "one_time_code.tr")]["override_text"] is None
    assert parts.deliveries.send_one_time_code(PHONE, "X7KQ4M") is True
    [message] = sms_sent(config)
    assert "onay kodunuz: X7KQ4M" in message["text"]


@pytest.mark.parametrize(("text", "says"), [
    ("Kodunuz: {{ code ", "syntax error"),
    ("Kodunuz: {% if code %}{{ code }}", "syntax error"),
    ("Kodunuz: {{ code }} {{ tckn }}", "unknown variable(s): tckn"),
    ("", "Length"),
    ("x" * 700, "at most 640"),
])
def test_a_text_that_cannot_replace_the_template_is_a_422_naming_text(client, admin, text, says):
    answer = client.put(OTP, json={"text": text}, headers=admin)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    errors = answer.get_json()["errors"]["json"]
    assert list(errors) == ["text"]
    if says != "Length":
        assert says in " ".join(errors["text"])
    assert listed(client, admin)[("sms", "one_time_code.tr")]["override_text"] is None


def test_an_email_override_needs_its_subject_line(client, admin):
    path = "/api/v1/notifications/templates/email/case_closed.en"
    answer = client.put(path, json={"text": "Closed {{ tracking_code_display }}"}, headers=admin)
    assert answer.status_code == 422
    assert "subject" in " ".join(answer.get_json()["errors"]["json"]["text"])
    answer = client.put(path, json={"text": "Closed\n\n{{ tracking_code_display }} {{ result }}"},
                        headers=admin)
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/notifications/templates/fax/one_time_code.tr",
                                  "/api/v1/notifications/templates/sms/nope.tr",
                                  "/api/v1/notifications/templates/email/one_time_code.tr"])
def test_an_unknown_channel_or_template_is_a_404(client, admin, path):
    assert client.put(path, json={"text": "x"}, headers=admin).status_code == 404
    assert client.delete(path, headers=admin).status_code == 404


@pytest.mark.parametrize("role", ["coordinator", "expert"])
def test_only_administrators_see_or_change_the_templates(client, config, role):
    headers = bearer(config, role)
    assert client.get("/api/v1/notifications/templates", headers=headers).status_code == 403
    # refused before the body is read: no 422 for a bad one
    assert client.put(OTP, json={"text": "{{"}, headers=headers).status_code == 403
    assert client.delete(OTP, headers=headers).status_code == 403
    assert client.get("/api/v1/notifications/templates").status_code == 401


def test_an_override_that_fails_on_a_messages_context_falls_back_to_the_file(parts):
    parts.store.put_template_override("sms/one_time_code.tr.j2", "{{ code.missing }}", "t",
                                      None)
    parts.override_cache.forget()
    _, text = parts.composer.render(domain.SMS, "one_time_code", "tr", {"code": "X7KQ4M"})
    assert "onay kodunuz: X7KQ4M" in text


def test_the_cache_reads_the_overrides_again_only_after_its_ttl(parts):
    now = [0.0]
    cache = OverrideCache(parts.store, ttl=5, clock=lambda: now[0])
    assert cache() == {}
    parts.store.put_template_override("sms/one_time_code.tr.j2", "a {{ code }}", "t", None)
    assert cache() == {}  # within the ttl: no read
    now[0] = 5.0
    assert cache() == {"sms/one_time_code.tr.j2": "a {{ code }}"}


def test_an_administrator_bound_to_an_institution_reads_the_templates_but_may_not_change_them(
        client, config):
    headers = bearer(config, "admin", user="adm-inst", institution="mezitli_bld")
    assert client.get("/api/v1/notifications/templates", headers=headers).status_code == 200
    answer = client.put(OTP, json={"text": "{{"}, headers=headers)
    assert answer.status_code == 403
    assert list(answer.get_json()["errors"]) == ["institution"]
    assert client.delete(OTP, headers=headers).status_code == 403
