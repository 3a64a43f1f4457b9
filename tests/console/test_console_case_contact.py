"""The case page's applicant and attachments, with real intake and routing behind the console
(their Flask apps over real HTTP on free ports, their stores on the real database server): the
citizen's contact is shown only on the answer to a POST with a reason, which intake audits; the
attachments are streamed through the console; only those routing lets read the case get either.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from services.common.config import load_config
from services.common.events import load_event
from services.common.outbox import OUTBOX
from services.common.scope import ReadScope
from services.console.accounts import make_account
from services.intake.bootstrap import IntakeParts
from services.intake.bootstrap import build as build_intake
from services.intake.web import create_app as create_intake_app
from services.routing.access import read_verdict
from services.routing.domain import open_case
from tests.intake.intake_samples import FIXTURES
from tests.support import database, serve

WEBHOOK_SECRET = "console-test-webhook"
OTHER_EXPERT = "mez-0020"  # an expert of another unit (parks): routing refuses the case


@pytest.fixture
def intake(databases, routing) -> Iterator[IntakeParts]:
    built = build_intake(load_config(env={}, CHANNEL_WEBHOOK_SECRET=WEBHOOK_SECRET, **databases))
    # routing's `may_read` answered in-process, by the rule its RPC applies
    built.read_scope = ReadScope(lambda application_id, actor: read_verdict(
        actor, routing.store.get_case(application_id),
        routing.organisation.current().directory))
    yield built
    built.close()


@pytest.fixture
def intake_url(intake) -> Iterator[str]:
    with serve(create_intake_app(intake)) as base:
        yield base


@pytest.fixture
def console_config(databases, routing_url, intake_url) -> dict:
    return load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_ROUTING_URL=routing_url,
                       CONSOLE_INTAKE_URL=intake_url, **databases)


@pytest.fixture
def filed(intake, routing, parts) -> dict:
    """An e-mailed complaint with a photo, filed by intake and routed by routing (from
    intake's own `application_received`); the other unit's expert has an account."""
    client = create_intake_app(intake).test_client()
    answer = client.post("/api/v1/channels/email", headers={"X-Webhook-Secret": WEBHOOK_SECRET},
                         data=(FIXTURES / "complaint_with_photo.eml").read_bytes(),
                         content_type="message/rfc822")
    assert answer.status_code == 201, answer.get_json()
    app_id = answer.get_json()["application_id"]
    stored = intake.db["applications"].find_one({"_id": app_id})  # with its outbox
    event = load_event(next(e for e in stored[OUTBOX] if e["type"] == "application_received"))
    org = routing.organisation.current()
    at = event["data"]["received_at"]
    routing.store.apply_to_case(app_id, event["event_id"], lambda current: open_case(
        current, event, org.catalogue, org.directory, at + timedelta(seconds=1)))
    parts.store.add_account(make_account({
        "user": OTHER_EXPERT, "role": "expert", "unit": "mezitli_bld.parks",
        "institution": "mezitli_bld", "password": "baska-birim-parola"}, PasswordHasher()))
    [photo] = stored["attachments"]
    return {"id": app_id, "photo": photo, "citizen_id": stored["citizen_id"]}


def audit(config: dict, action: str) -> list[dict]:
    return list(database(config, "intake")["audit_log"].find({"action": action}))


def case_url(filed: dict) -> str:
    return f"/console/vaka/{filed['id']}"


def test_the_case_lists_the_attachments_and_streams_one_audited_by_intake(client, pages, filed,
                                                                           console_config,
                                                                           routing):
    assert routing.store.get_case(filed["id"])["unit"] == "mezitli_bld.works"
    pages.sign_in(client, "mez-0008")
    page = client.get(case_url(filed))
    text = page.get_data(as_text=True)
    link = f"{case_url(filed)}/ek/{filed['photo']['id']}"
    assert page.status_code == 200 and f'href="{link}"' in text
    assert filed["photo"]["filename"] in text
    assert "ayse@example.com" not in text  # the contact only on a POST with a reason
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "image/jpeg"
    assert download.data[:2] == b"\xff\xd8" and len(download.data) == filed["photo"]["size"]
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Cache-Control"] == "no-store"
    [read] = audit(console_config, "attachment.read")
    assert read["staff"] == "mez-0008" and read["file_id"] == filed["photo"]["id"]
    assert client.get(f"{case_url(filed)}/ek/nothing").status_code == 404


def test_the_contact_is_shown_on_a_post_with_a_reason_and_the_reason_is_audited(
        client, pages, filed, console_config):
    pages.sign_in(client, "mez-0008")
    csrf = pages.csrf_of(client.get(case_url(filed)).get_data(as_text=True))
    no_reason = client.post(f"{case_url(filed)}/iletisim", data={"csrf": csrf, "reason": " "})
    assert no_reason.status_code == 422 and 'id="contact-reason-error"' in no_reason.get_data(
        as_text=True)
    assert audit(console_config, "citizen.read") == []
    shown = client.post(f"{case_url(filed)}/iletisim", data={
        "csrf": csrf, "reason": "Çukurun yerini teyit için aranacak"})
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200, text
    assert "Ayşe" in text and "ayse@example.com" in text and 'id="contact"' in text
    assert shown.headers["Cache-Control"] == "no-store"
    [read] = audit(console_config, "citizen.read")
    assert read["staff"] == "mez-0008" and read["citizen_id"] == filed["citizen_id"]
    assert read["application_id"] == filed["id"]  # an expert reads the citizen of their case
    assert read["reason"] == "Çukurun yerini teyit için aranacak"
    assert "ayse@example.com" not in client.get(case_url(filed)).get_data(as_text=True)


def test_without_the_csrf_token_the_contact_is_not_read(client, pages, filed, console_config):
    pages.sign_in(client, "mez-0008")
    refused = client.post(f"{case_url(filed)}/iletisim", data={"reason": "gerekçe"})
    assert refused.status_code == 403
    assert audit(console_config, "citizen.read") == []


def test_who_may_not_read_the_case_gets_neither_the_contact_nor_an_attachment(
        client, pages, filed, console_config):
    assert pages.sign_in(client, OTHER_EXPERT, "baska-birim-parola").status_code == 303
    csrf = pages.csrf_of(client.get("/console/").get_data(as_text=True))
    contact = client.post(f"{case_url(filed)}/iletisim", data={"csrf": csrf,
                                                               "reason": "merak ettim"})
    assert contact.status_code == 403 and "ayse@example.com" not in contact.get_data(
        as_text=True)
    assert client.get(f"{case_url(filed)}/ek/{filed['photo']['id']}").status_code == 403
    assert audit(console_config, "citizen.read") == []
    assert audit(console_config, "attachment.read") == []
