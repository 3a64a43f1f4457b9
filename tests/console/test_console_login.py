"""Login, sessions, CSRF and the second factor over HTTP (Flask's test client) on the real
database server, with the sample staff list and a clock the test sets."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import eventlet
from argon2 import PasswordHasher

from services.common.mongo import open_database
from services.console import domain
from services.console.bootstrap import build
from services.console.pages import LOGIN_CSRF_COOKIE, PENDING_COOKIE, SESSION_COOKIE
from services.console.web import create_app


def session_cookie(client) -> str | None:
    found = client.get_cookie(SESSION_COOKIE, path="/console")
    return found.value if found else None


def test_the_sample_staff_list_is_stored_with_argon2_hashes_once(parts, console_config, clock):
    expert = parts.store.get_account("mez-0008")
    assert expert["role"] == "expert" and expert["unit"] == "mezitli_bld.works"
    assert expert["password_hash"].startswith("$argon2id$")
    assert "yerel-parola" not in str(expert)
    assert parts.store.get_account("mez-0001")["totp_secret"]  # the mayor's office
    assert parts.store.get_account("adm-0001")["totp_secret"]
    again = build(console_config, clock)  # a second start changes nothing
    try:
        assert again.store.get_account("mez-0008")["password_hash"] == expert["password_hash"]
    finally:
        again.close()


def test_the_right_password_opens_a_session_whose_id_is_stored_only_hashed(client, parts,
                                                                          pages):
    answer = pages.sign_in(client, "mez-0008")
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/"
    session_id = session_cookie(client)
    assert session_id and len(session_id) >= 43  # 32 random bytes
    stored = parts.store.get_session(hashlib.sha256(session_id.encode()).hexdigest())
    assert stored["user"] == "mez-0008" and stored["role"] == "expert"
    assert stored["unit"] == "mezitli_bld.works" and stored["institution"] == "mezitli_bld"
    assert parts.store.sessions.count_documents({"_id": session_id}) == 0
    home = client.get("/console/")
    text = home.get_data(as_text=True)
    assert home.status_code == 200
    assert "Bülent Aslan" in text and "mezitli_bld.works" in text
    assert 'href="/console/gelen"' in text
    assert "script-src 'self'" in home.headers["Content-Security-Policy"]


def test_the_session_cookie_is_httponly_strict_under_console_and_secure_off_loopback(
        app, pages):
    local = app.test_client()
    cookie = pages.cookie_header(pages.sign_in(local, "mez-0008"), SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie and "Max-Age" not in cookie  # gone with the browser
    remote = app.test_client()
    remote.environ_base["HTTP_HOST"] = "acikkapi.mersin.bel.tr"
    form = remote.get("/console/giris", base_url="https://acikkapi.mersin.bel.tr")
    assert "Secure" in pages.cookie_header(form, LOGIN_CSRF_COOKIE)
    signed = remote.post("/console/giris", base_url="https://acikkapi.mersin.bel.tr", data={
        "user": "mez-0008", "password": pages.PASSWORD,
        "csrf": pages.csrf_of(form.get_data(as_text=True))})
    cookie = pages.cookie_header(signed, SESSION_COOKIE)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_the_session_id_is_rotated_at_login(client, parts, pages):
    pages.sign_in(client, "mez-0008")
    first = session_cookie(client)
    assert client.get("/console/giris").headers["Location"] == "/console/"  # signed in
    token = "t" * 43  # the login form of another tab, as its cookie and its field
    client.set_cookie(LOGIN_CSRF_COOKIE, token, path="/console")
    again = client.post("/console/giris", data={"user": "mez-0010", "password": pages.PASSWORD,
                                                "csrf": token})
    assert again.status_code == 303
    second = session_cookie(client)
    assert second and second != first
    assert parts.store.get_session(hashlib.sha256(first.encode()).hexdigest()) is None
    assert parts.store.sessions.count_documents({}) == 1
    client.set_cookie(SESSION_COOKIE, first, path="/console")
    assert client.get("/console/").headers["Location"] == "/console/giris"  # opens nothing


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer_for_the_same_work(
        app, parts, pages):
    checked = []

    class Counting(PasswordHasher):
        def verify(self, hashed, password):
            checked.append(hashed)
            return super().verify(hashed, password)

    parts.logins.hasher = Counting()
    answers = []
    for user in ("mez-0008", "mez-9999"):
        client = app.test_client()
        answer = pages.sign_in(client, user, "not-the-password")
        text = answer.get_data(as_text=True)
        answers.append((answer.status_code,
                        re.search(r'<div class="alert".*?</div>', text, re.S).group(0)))
        assert session_cookie(client) is None
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and "wrong staff code or password" in answers[0][1]
    assert len(checked) == 2 and all(h.startswith("$argon2id$") for h in checked)
    assert checked[0] != checked[1]  # the unknown user was checked against the dummy hash


def test_five_failures_lock_the_account_for_the_window_even_for_the_right_password(
        app, parts, pages, clock):
    client = app.test_client()
    for _ in range(5):
        assert pages.sign_in(client, "mez-0008", "wrong-password").status_code == 422
    locked = pages.sign_in(client, "mez-0008")
    assert locked.status_code == 429
    window = domain.window_of(clock.now)
    assert int(locked.headers["Retry-After"]) == window.retry_after(clock.now)
    assert "12:15" in locked.get_data(as_text=True)  # 09:15 UTC, Istanbul time
    assert session_cookie(client) is None
    assert pages.sign_in(app.test_client(), "mez-0010").status_code == 303  # others are not
    clock.now = window.ends + timedelta(seconds=1)
    assert pages.sign_in(app.test_client(), "mez-0008").status_code == 303


def test_an_unknown_user_is_locked_the_same_way(app, pages):
    answers = {}
    for user in ("mez-0008", "mez-9999"):
        client = app.test_client()
        for _ in range(5):
            pages.sign_in(client, user, "wrong-password")
        locked = pages.sign_in(client, user, "wrong-password")
        answers[user] = (locked.status_code, locked.get_data(as_text=True).replace(user, "?"))
    assert answers["mez-0008"] == answers["mez-9999"] and answers["mez-0008"][0] == 429


def test_concurrent_wrong_passwords_are_counted_exactly_and_only_five_are_checked(
        app, parts, pages, clock):
    forms = []
    for _ in range(12):
        client = app.test_client()
        forms.append((client, pages.csrf_of(client.get("/console/giris").get_data(as_text=True))))

    def attempt(form):
        client, csrf = form
        return client.post("/console/giris", data={"user": "mez-0008",
                                                   "password": "wrong-password",
                                                   "csrf": csrf}).status_code

    statuses = list(eventlet.GreenPool(12).imap(attempt, forms))
    assert sorted(statuses) == [422] * 5 + [429] * 7
    scope = domain.scope_key(parts.config["STAFF_TOKEN_SECRET"], "account", "mez-0008")
    window = domain.window_of(clock.now)
    held = parts.store.count_slots(f"{scope}|{window.index}")
    # each attempt that got as far as counting won its own slot, 1 … held without a gap
    # (the others found the lock already there); only the first five checked a password
    assert 5 <= held <= 12
    assert all(parts.store.failures.count_documents(
        {"_id": domain.slot_id(scope, window, n)}) == 1 for n in range(1, held + 1))
    assert parts.store.is_marked(domain.limit_id(scope, window))
    assert pages.sign_in(app.test_client(), "mez-0008").status_code == 429


def test_failures_racing_for_one_scope_each_win_their_own_number(parts, clock):
    window = domain.window_of(clock.now)
    prefix = f"account:race|{window.index}"
    won = list(eventlet.GreenPool(40).imap(
        lambda _: parts.store.claim_slot(prefix, window.ends), range(40)))
    assert sorted(won) == list(range(1, 41))  # no update lost, none counted twice
    assert parts.store.count_slots(prefix) == 40


def test_twenty_failures_from_one_address_lock_it_for_every_account(app, pages):
    for n in range(20):
        answer = pages.sign_in(app.test_client(), f"zzz-{n:04d}", "wrong-password")
        assert answer.status_code == 422, n
    assert pages.sign_in(app.test_client(), "mez-0008").status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert pages.sign_in(elsewhere, "mez-0008").status_code == 303


def test_a_login_without_the_forms_csrf_token_is_refused_and_changes_nothing(client, parts):
    client.get("/console/giris")
    for data in ({"user": "mez-0008", "password": "yerel-parola-2026"},
                 {"user": "mez-0008", "password": "yerel-parola-2026", "csrf": "forged"}):
        answer = client.post("/console/giris", data=data)
        assert answer.status_code == 403 and "csrf" in answer.get_data(as_text=True)
        assert session_cookie(client) is None
    assert parts.store.sessions.count_documents({}) == 0
    assert parts.store.failures.count_documents({}) == 0  # not even counted


def test_logout_needs_the_sessions_csrf_token_and_then_ends_the_session(client, parts, pages):
    pages.sign_in(client, "mez-0008")
    session_id = session_cookie(client)
    for data in ({}, {"csrf": "forged"}):
        refused = client.post("/console/cikis", data=data)
        assert refused.status_code == 403 and "csrf" in refused.get_data(as_text=True)
        assert client.get("/console/").status_code == 200  # still signed in
    token = pages.csrf_of(client.get("/console/").get_data(as_text=True))
    out = client.post("/console/cikis", data={"csrf": token})
    assert out.status_code == 303 and out.headers["Location"] == "/console/giris"
    assert "Max-Age=0" in pages.cookie_header(out, SESSION_COOKIE)
    assert parts.store.get_session(hashlib.sha256(session_id.encode()).hexdigest()) is None
    client.set_cookie(SESSION_COOKIE, session_id, path="/console")  # a copy kept elsewhere
    assert client.get("/console/").headers["Location"] == "/console/giris"


def test_a_session_ends_after_thirty_idle_minutes(client, parts, pages, clock):
    pages.sign_in(client, "mez-0008")
    clock.now += timedelta(minutes=29)
    assert client.get("/console/").status_code == 200  # used: the idle time starts again
    clock.now += timedelta(minutes=29)
    assert client.get("/console/").status_code == 200
    clock.now += timedelta(minutes=30)
    ended = client.get("/console/")
    assert ended.status_code == 303 and ended.headers["Location"] == "/console/giris"
    assert parts.store.sessions.count_documents({}) == 0


def test_a_session_ends_eight_hours_after_login_however_busy(client, parts, pages, clock):
    pages.sign_in(client, "mez-0008")
    for _ in range(19):  # every 25 minutes: never idle, 7 h 55 min in all
        clock.now += timedelta(minutes=25)
        assert client.get("/console/").status_code == 200
    clock.now += timedelta(minutes=5)
    assert client.get("/console/").headers["Location"] == "/console/giris"


def test_the_mayors_office_and_administrators_must_give_a_totp_code(app, parts, pages, clock):
    for user in ("mez-0001", "adm-0001"):
        client = app.test_client()
        first = pages.sign_in(client, user)
        assert first.status_code == 303 and first.headers["Location"] == "/console/dogrulama"
        assert session_cookie(client) is None
        assert client.get("/console/").headers["Location"] == "/console/giris"  # not yet
        form = client.get("/console/dogrulama")
        assert form.status_code == 200
        csrf = pages.csrf_of(form.get_data(as_text=True))
        wrong = client.post("/console/dogrulama", data={"code": "000000", "csrf": csrf})
        assert wrong.status_code == 422 and "wrong verification code" in wrong.get_data(
            as_text=True)
        assert session_cookie(client) is None
        stale = pages.totp_code(clock.now - timedelta(minutes=2))
        assert client.post("/console/dogrulama",
                           data={"code": stale, "csrf": csrf}).status_code == 422
        forged = client.post("/console/dogrulama",
                             data={"code": pages.totp_code(clock.now), "csrf": "forged"})
        assert forged.status_code == 403 and session_cookie(client) is None
        right = client.post("/console/dogrulama",
                            data={"code": pages.totp_code(clock.now), "csrf": csrf})
        assert right.status_code == 303 and right.headers["Location"] == "/console/"
        assert session_cookie(client)
        assert f">{parts.store.get_account(user)['role']}<" in client.get(
            "/console/").get_data(as_text=True)
        replay = client.post("/console/dogrulama",
                             data={"code": pages.totp_code(clock.now), "csrf": csrf})
        assert replay.status_code == 422  # the pending login was used up


def test_wrong_totp_codes_count_towards_the_lock_and_the_step_expires(app, pages, clock):
    client = app.test_client()
    pages.sign_in(client, "mez-0001")
    csrf = pages.csrf_of(client.get("/console/dogrulama").get_data(as_text=True))
    for _ in range(5):
        client.post("/console/dogrulama", data={"code": "000000", "csrf": csrf})
    locked = client.post("/console/dogrulama",
                         data={"code": pages.totp_code(clock.now), "csrf": csrf})
    assert locked.status_code == 429
    clock.now = domain.window_of(clock.now).ends + timedelta(seconds=5)
    late = client.post("/console/dogrulama",
                       data={"code": pages.totp_code(clock.now), "csrf": csrf})
    assert late.status_code == 422 and "expired" in late.get_data(as_text=True)
    assert session_cookie(client) is None


def test_an_expert_needs_no_second_factor_and_an_account_added_later_signs_in(
        app, parts, pages):
    hasher = PasswordHasher()
    parts.store.add_account({"_id": "mez-0016", "role": "expert", "unit": "mezitli_bld.parks",
                             "institution": "mezitli_bld", "name": "Ali Bulut",
                             "password_hash": hasher.hash("park-parolasi-1"),
                             "totp_secret": None})
    client = app.test_client()
    assert pages.sign_in(client, "MEZ-0016 ", "park-parolasi-1").headers[
        "Location"] == "/console/"
    assert PENDING_COOKIE not in str(client.get("/console/").headers)


def test_the_console_database_is_its_own(console_config):
    db = open_database(console_config, "console")
    try:
        assert db.name == console_config["MONGO_DB_CONSOLE"]
    finally:
        db.client.close()


def test_the_app_publishes_health_and_openapi(parts):
    http = create_app(parts).test_client()
    assert http.get("/health").get_json()["status"] == "ok"
    assert http.get("/openapi.json").get_json()["openapi"].startswith("3.")
    assert http.get("/console/static/console.css").status_code == 200


def test_a_totp_code_opens_one_login_only(app, pages, clock):
    code = pages.totp_code(clock.now)
    outcomes = []
    for _ in range(2):
        client = app.test_client()
        pages.sign_in(client, "mez-0001")
        csrf = pages.csrf_of(client.get("/console/dogrulama").get_data(as_text=True))
        outcomes.append(client.post("/console/dogrulama",
                                    data={"code": code, "csrf": csrf}).status_code)
    assert outcomes == [303, 422]  # the same code again, even with the password: refused


def test_a_totp_role_without_a_secret_cannot_sign_in(app, parts, pages):
    parts.store.add_account({"_id": "mez-0002", "role": "mayor", "institution": "mezitli_bld",
                             "name": "Levent Çetin",
                             "password_hash": PasswordHasher().hash(pages.PASSWORD),
                             "totp_secret": None})
    client = app.test_client()
    answer = pages.sign_in(client, "mez-0002")
    assert answer.status_code == 422 and "second factor" in answer.get_data(as_text=True)
    assert session_cookie(client) is None
