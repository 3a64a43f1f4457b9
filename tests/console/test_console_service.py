"""The console under nameko (as the runner runs it, on the real broker): its container builds
the parts the pages use, and its timer deletes what has expired. And the accounts CLI."""
from __future__ import annotations

import io
from datetime import timedelta

from nameko.testing.services import entrypoint_hook

from services.common.bootstrap import parts_of
from services.common.events import utcnow
from services.common.runner import SERVICES, service_class
from services.console.service import ConsoleService
from services.console.store import ConsoleStore
from services.console.web import create_app
from tests.support import database


def test_the_console_runs_under_the_runner_like_every_service():
    assert "console" in SERVICES and service_class("console") is ConsoleService


def test_the_timer_purges_expired_sessions_pending_logins_and_counters(config,
                                                                       container_factory,
                                                                       pages):
    container = container_factory(ConsoleService, dict(config, CONSOLE_SAMPLE_ACCOUNTS="true"))
    container.start()
    parts = parts_of(container)
    client = create_app(parts).test_client()
    assert pages.sign_in(client, "mez-0008").status_code == 303  # the sample list is there
    now = utcnow()
    old = now - timedelta(minutes=1)
    parts.store.add_session({"_id": "gone", "user": "x", "expires_at": old})
    parts.store.add_pending({"_id": "gone", "user": "x", "expires_at": old})
    parts.store.claim_slot("account:x|1", old)
    parts.store.claim_slot("account:x|99999999", now + timedelta(minutes=10))
    with entrypoint_hook(container, "purge_expired") as purge:
        purge()
    store = ConsoleStore(database(config, "console"))
    assert store.get_session("gone") is None and store.get_pending("gone") is None
    assert store.count_slots("account:x|1") == 0
    assert store.count_slots("account:x|99999999") == 1
    assert store.sessions.count_documents({}) == 1  # the live one stays
    assert client.get("/console/").status_code == 200


def test_the_cli_adds_an_account_and_prints_the_totp_uri_for_a_role_that_needs_it(
        databases, monkeypatch, capsys, pages):
    from argon2 import PasswordHasher

    from services.console import accounts

    for key, value in databases.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.stdin", io.StringIO("uzun-bir-parola-42\n"))
    assert accounts.main(["add", "--user", "MBB-0001", "--role", "mayor",
                          "--institution", "mersin_bb", "--name", "Gülay Karaca"]) == 0
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out and "mbb-0001" in out
    store = ConsoleStore(database(databases, "console"))
    stored = store.get_account("mbb-0001")
    assert stored["role"] == "mayor" and stored["totp_secret"] in out
    assert PasswordHasher().verify(stored["password_hash"], "uzun-bir-parola-42")
    monkeypatch.setattr("sys.stdin", io.StringIO("uzun-bir-parola-42\n"))
    assert accounts.main(["add", "--user", "mbb-0009", "--role", "expert",
                          "--unit", "mersin_bb.roads"]) == 0
    assert "otpauth" not in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("uzun-bir-parola-42\n"))
    assert accounts.main(["add", "--user", "mbb-0009", "--role", "expert"]) == 1  # exists
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert accounts.main(["add", "--user", "mbb-0010", "--role", "expert"]) == 2
    assert store.get_account("mbb-0010") is None
