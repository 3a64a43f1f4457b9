"""Password reset by e-mail (issue 13): the pages over HTTP (Flask's test client) on the real
database server with the sample staff list and a clock the test sets; and the whole path over
the real broker — the console's relay publishes `staff_password_reset_requested`, notify asks
the console for the address and link and writes the e-mail to its development sink, and the
link from that e-mail sets the new password."""
from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from urllib.parse import urlsplit

from nameko.testing.services import entrypoint_waiter

from services.common.bootstrap import parts_of
from services.common.outbox import OUTBOX
from services.console.kit import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from services.console.service import ConsoleService
from services.console.web import create_app
from services.notify.service import NotifyService

NEW_PASSWORD = "yeni-uzun-parola-77"
FORGOT = "/console/parola-unuttum"


def ask_for_link(client, pages, user: str):
    form = client.get(FORGOT)
    assert form.status_code == 200
    return client.post(FORGOT, data={"user": user,
                                     "csrf": pages.csrf_of(form.get_data(as_text=True))})


def only_reset(parts) -> dict:
    [reset] = list(parts.store.resets.find({}))
    return reset


def link_path(parts, reset: dict) -> str:
    """The path of the link the e-mail carries (as the console gives it to notify)."""
    return urlsplit(parts.resets.message(reset["_id"])["link"]).path


def set_password(client, pages, path: str, password: str = NEW_PASSWORD,
                 again: str | None = None):
    form = client.get(path)
    assert form.status_code == 200, form.get_data(as_text=True)
    return client.post(path, data={"password": password, "password_again": again or password,
                                   "csrf": pages.csrf_of(form.get_data(as_text=True))})


def test_an_unknown_staff_code_gets_the_same_page_and_nothing_is_stored_or_sent(client, parts,
                                                                              pages):
    unknown = ask_for_link(client, pages, "yok-9999")
    assert parts.store.resets.count_documents({}) == 0  # no reset, so no event to publish
    known = ask_for_link(client, pages, "MEZ-0008 ")
    assert unknown.status_code == known.status_code == 200
    assert unknown.get_data(as_text=True) == known.get_data(as_text=True)
    assert "e-posta adresi varsa" in known.get_data(as_text=True)
    reset = only_reset(parts)
    assert reset["user"] == "mez-0008" and reset["used_at"] is None
    assert reset["expires_at"] - reset["created"] == parts.resets.lifetime


def test_a_disabled_account_gets_the_same_page_and_no_link(client, parts, pages):
    parts.store.set_disabled("mez-0008", True)
    answer = ask_for_link(client, pages, "mez-0008")
    assert answer.status_code == 200 and "e-posta adresi varsa" in answer.get_data(as_text=True)
    assert parts.store.resets.count_documents({}) == 0


def test_the_event_and_the_store_hold_neither_the_link_nor_the_address(client, parts, pages):
    ask_for_link(client, pages, "mez-0008")
    reset = only_reset(parts)
    message = parts.resets.message(reset["_id"])
    token = message["link"].rsplit("/", 1)[1]
    assert message["email"] == "mez-0008@example.gov.tr" and message["name"] == "Bülent Aslan"
    assert token not in repr(reset) and reset["token_hash"] != token
    [event] = reset[OUTBOX]
    assert event["type"] == "staff_password_reset_requested" and event["producer"] == "console"
    assert event["data"] == {"staff": "mez-0008", "reset_id": reset["_id"]}
    assert event["application_id"] == f"reset:{reset['_id']}"
    assert token not in repr(event) and "example.gov.tr" not in repr(event)


def test_the_link_sets_a_new_password_once_and_the_old_one_stops_working(app, parts, pages):
    signed_in = app.test_client()
    assert pages.sign_in(signed_in, "mez-0008").status_code == 303
    assert signed_in.get("/console/").status_code == 200
    client = app.test_client()
    ask_for_link(client, pages, "mez-0008")
    path = link_path(parts, only_reset(parts))
    done = set_password(client, pages, path)
    assert done.status_code == 303
    assert done.headers["Location"] == "/console/giris?parola=yenilendi"
    notice = client.get(done.headers["Location"])
    assert "Parolanız değiştirildi" in notice.get_data(as_text=True)
    # the account's sessions ended: the browser signed in before is sent to the sign-in page
    assert signed_in.get("/console/").headers["Location"] == "/console/giris"
    assert pages.sign_in(app.test_client(), "mez-0008").status_code == 422  # the old one
    assert pages.sign_in(app.test_client(), "mez-0008", NEW_PASSWORD).status_code == 303
    # once: the link opens nothing any more, GET or POST
    assert client.get(path).status_code == 404
    again = client.post(path, data={"password": "bir-baska-parola-1",
                                    "password_again": "bir-baska-parola-1",
                                    "csrf": client.get_cookie(LOGIN_CSRF_COOKIE,
                                                              path="/console").value})
    assert again.status_code == 404 and "kullanılmış" in again.get_data(as_text=True)
    assert pages.sign_in(app.test_client(), "mez-0008", NEW_PASSWORD).status_code == 303
    assert parts.resets.message(only_reset(parts)["_id"]) is None  # notify gets nothing now


def test_a_new_password_must_meet_the_accounts_policy_and_a_refusal_keeps_the_link(client,
                                                                                   parts,
                                                                                   pages):
    ask_for_link(client, pages, "mez-0008")
    path = link_path(parts, only_reset(parts))
    short = set_password(client, pages, path, "kisa")
    assert short.status_code == 422 and "8" in short.get_data(as_text=True)
    differ = set_password(client, pages, path, NEW_PASSWORD, "baska-bir-parola-9")
    assert differ.status_code == 422 and "aynı değil" in differ.get_data(as_text=True)
    assert set_password(client, pages, path).status_code == 303


def test_an_expired_unknown_or_forged_link_is_a_clear_404(client, parts, pages, clock):
    ask_for_link(client, pages, "mez-0008")
    reset = only_reset(parts)
    path = link_path(parts, reset)
    for bad in ("/console/parola-sifirla/nothing", f"/console/parola-sifirla/{reset['_id']}."
                + "x" * 43, "/console/parola-sifirla/" + "a" * 24 + "." + "b" * 43):
        answer = client.get(bad)
        assert answer.status_code == 404 and "Bağlantı geçersiz" in answer.get_data(as_text=True)
    assert client.get(path).status_code == 200
    clock.now += parts.resets.lifetime + timedelta(seconds=1)
    assert client.get(path).status_code == 404
    assert parts.resets.message(reset["_id"]) is None


def test_a_post_without_the_forms_csrf_token_is_refused_and_changes_nothing(client, parts,
                                                                           pages):
    client.get(FORGOT)
    refused = client.post(FORGOT, data={"user": "mez-0008"})
    assert refused.status_code == 403 and "csrf" in refused.get_data(as_text=True)
    assert parts.store.resets.count_documents({}) == 0
    ask_for_link(client, pages, "mez-0008")
    path = link_path(parts, only_reset(parts))
    assert client.get(path).status_code == 200
    refused = client.post(path, data={"password": NEW_PASSWORD,
                                      "password_again": NEW_PASSWORD})
    assert refused.status_code == 403
    assert client.post(path, data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD,
                                   "csrf": "w" * 43}).status_code == 403
    assert pages.sign_in(client, "mez-0008").status_code == 303  # unchanged


def test_requests_are_throttled_per_staff_code_whether_or_not_it_exists(app, parts, pages):
    for user in ("mez-0008", "yok-9999"):
        client = app.test_client()
        answers = [ask_for_link(client, pages, user).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429], user
    assert parts.store.resets.count_documents({}) == 3


def test_requests_are_throttled_per_client_address(app, parts, pages):
    client = app.test_client()
    answers = [ask_for_link(client, pages, f"yok-{n:04d}").status_code for n in range(11)]
    assert answers == [200] * 10 + [429]


def test_the_login_page_links_to_the_forgotten_password_page(client):
    assert 'href="/console/parola-unuttum"' in client.get("/console/giris").get_data(
        as_text=True)


# -- over the real broker: the console's relay, notify, its e-mail sink -------------------------


def mails(config) -> list:
    folder = Path(config["DEV_SINK_DIR"]) / "mail"
    return [message_from_bytes(path.read_bytes(), policy=default)
            for path in sorted(folder.glob("*.eml"))]


def test_the_link_reaches_notifys_mailbox_and_sets_a_new_password(config, container_factory,
                                                                  pages):
    config = dict(config, CONSOLE_SAMPLE_ACCOUNTS="true")
    console = container_factory(ConsoleService, config)
    notify = container_factory(NotifyService, config)
    console.start()
    notify.start()
    app = create_app(parts_of(console))
    client = app.test_client()

    def ok(worker_ctx, result, exc_info):
        assert exc_info is None, exc_info
        return True

    with entrypoint_waiter(notify, "handle_staff_password_reset_requested", callback=ok,
                           timeout=30):
        assert ask_for_link(client, pages, "mez-0008").status_code == 200
    [mail] = mails(config)
    assert mail["To"] == "mez-0008@example.gov.tr"
    body = mail.get_content()
    [link] = re.findall(r"https?://\S+/console/parola-sifirla/\S+", body)
    assert "Bülent Aslan" in body and "mez-0008" in body
    path = urlsplit(link).path
    assert set_password(client, pages, path).status_code == 303
    assert client.get(path).status_code == 404
    assert pages.sign_in(app.test_client(), "mez-0008").status_code == 422
    assert pages.sign_in(app.test_client(), "mez-0008", NEW_PASSWORD).status_code == 303
    assert not client.get_cookie(SESSION_COOKIE, path="/console")


def test_an_unexpected_error_on_the_link_logs_the_route_not_the_token(client, parts, pages,
                                                                      monkeypatch, caplog):
    ask_for_link(client, pages, "mez-0008")
    path = link_path(parts, only_reset(parts))

    def broken(token: str):
        raise RuntimeError("boom")

    monkeypatch.setattr(parts.resets, "live", broken)
    with caplog.at_level("ERROR"):
        assert client.get(path).status_code == 500
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.path == "/console/parola-sifirla/<string(maxlength=200):token>"
    token = path.rsplit("/", 1)[1]
    assert token not in caplog.text and all(token not in repr(r.__dict__)
                                            for r in caplog.records)
