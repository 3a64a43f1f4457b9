"""The administrators' page of the console's own login accounts (`/console/yonetim/kullanicilar`,
issue 13), for system-wide administrators only: an administrator bound to an institution, like
every other role, gets a 403 page (an account may carry any role and institution, so making one
is a system-wide power), and a POST by them or without the session's CSRF token changes nothing.

- GET: every account (code, name, role, unit, institution, e-mail, whether a TOTP secret is
  set, whether disabled; never a hash or a secret) and the form to add one.
- POST: add an account (`StaffAccounts.create`: the CLI's schema and password policy). For a
  role that needs a second factor the answer page shows the `otpauth://` URI once: it is a
  secret, on that response only (no-store), never logged nor redirected to.
- POST `…/<code>/kapat` and `…/<code>/ac`: disable (its sessions end; not one's own account)
  and enable.

A refusal comes back on the form with its status, the field named and marked, and the values
as typed (never the password).
"""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, request

from services.common.auth import ROLES
from services.console.accounts import ACCOUNT_FORM_FIELDS, AccountRefused, provisioning_uri
from services.console.kit import PATH, Kit

ACCOUNTS = f"{PATH}/yonetim/kullanicilar"


def problem_of(refused: AccountRefused, target: str) -> dict:
    """A refusal as the form shows it (the shape of `admin.problem_of`)."""
    lines = [f"{name}: {' '.join(map(str, messages))}"
             for name, messages in refused.errors.items()]
    return {"target": target, "status": refused.status, "message": refused.message,
            "field": refused.field, "lines": lines}


def typed_of(form) -> dict:
    """What was typed into the account form, to show again: never the passwords."""
    return {name: form.get(name, "") for name in ACCOUNT_FORM_FIELDS}


def register(pages: Blueprint, kit: Kit) -> None:
    """The account pages on the console's blueprint."""
    accounts = kit.parts.accounts

    def admin_session() -> dict | Response:
        session = kit.member("admin".__eq__, "Hesap yönetimi yalnızca yöneticiler içindir / "
                             "account administration is for administrators",
                             "{role} rolü hesapları yönetemez. / "
                             "The role {role} may not manage the accounts.")
        if isinstance(session, dict) and session.get("institution"):
            return kit.page("console/message.html", 403, session=session,
                            title="Yalnızca sistem yöneticileri / system-wide administrators "
                                  "only",
                            message="Bir kuruma bağlı yönetici konsol hesaplarını yönetemez. / "
                                    "An administrator bound to an institution may not manage "
                                    "the console's accounts.")
        return session

    def accounts_page(session: dict, status: int = 200, problem: dict | None = None,
                      typed: dict | None = None, created: dict | None = None) -> Response:
        on = (problem or {}).get("target")
        return kit.page("console/admin_accounts.html", status, session=session,
                        accounts=accounts.listed(), roles=ROLES, problem=problem,
                        form=typed if on == "new" else {}, created=created,
                        changed=request.args.get("tamam"), added=request.args.get("eklendi"))

    @pages.get("/yonetim/kullanicilar")
    def admin_accounts():
        session = admin_session()
        return session if isinstance(session, Response) else accounts_page(session)

    @pages.post("/yonetim/kullanicilar")
    def admin_account_create():
        session = admin_session()
        if isinstance(session, Response):
            return session
        try:
            account = accounts.create(request.form)
        except AccountRefused as refused:
            return accounts_page(session, refused.status, problem_of(refused, "new"),
                                 typed_of(request.form))
        uri = provisioning_uri(account)
        if uri is None:
            return kit.to(f"{ACCOUNTS}?eklendi={quote(account['_id'], safe='')}#hesaplar")
        # shown once, on this answer only: a redirect would need it stored or in a URL
        return accounts_page(session, 201, created={"code": account["_id"], "uri": uri})

    def state_change(code: str, disabling: bool) -> Response:
        session = admin_session()
        if isinstance(session, Response):
            return session
        try:
            if disabling:
                accounts.disable(code, by=session["user"])
            else:
                accounts.enable(code)
        except AccountRefused as refused:
            return accounts_page(session, refused.status,
                                 dict(problem_of(refused, "state"), account=code))
        return kit.to(f"{ACCOUNTS}?tamam={quote(code, safe='')}#hesaplar")

    @pages.post("/yonetim/kullanicilar/<string(maxlength=64):code>/kapat")
    def admin_account_disable(code: str):
        return state_change(code, disabling=True)

    @pages.post("/yonetim/kullanicilar/<string(maxlength=64):code>/ac")
    def admin_account_enable(code: str):
        return state_change(code, disabling=False)
