"""Staff accounts: making one (argon2 hash, a TOTP secret for the roles that need one, the
e-mail address a password reset link goes to), the sample staff list of local runs, the
administrators' use cases (`StaffAccounts`: list, create, disable, enable; the pages in
`admin_accounts`) and the command line that adds an account.

    python -m services.console.accounts add --user mez-0008 --role expert \
        --unit mezitli_bld.works --institution mezitli_bld --name "Bülent Aslan" \
        --email mez-0008@example.gov.tr

reads the password from stdin (or prompts for it twice on a terminal) and, for a role that
needs a second factor, prints the `otpauth://` provisioning URI to scan into an authenticator.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

import pyotp
import yaml
from argon2 import PasswordHasher
from eventlet import tpool
from marshmallow import ValidationError

from services.common.auth import ROLES
from services.console import domain
from services.console.schemas import AccountSchema, SampleAccountsSchema
from services.console.store import ConsoleStore

log = logging.getLogger(__name__)
ISSUER = "Açık Kapı"


def make_account(fields: dict, hasher: PasswordHasher) -> dict:
    """The stored account for `fields` (as `AccountSchema` loads them): the password hashed,
    a new TOTP secret for a role that needs one and was given none."""
    role = domain.check_role(fields["role"])
    secret = fields.get("totp_secret")
    if domain.requires_totp(role) and not secret:
        secret = pyotp.random_base32()
    return {"_id": domain.normalise_user(fields["user"]), "role": role,
            "unit": fields.get("unit"), "institution": fields.get("institution"),
            "name": fields.get("name"), "email": fields.get("email"),
            "password_hash": hasher.hash(fields["password"]), "totp_secret": secret}


def provisioning_uri(account: dict) -> str | None:
    """The `otpauth://` URI an authenticator app reads (None without a TOTP secret)."""
    if not account.get("totp_secret"):
        return None
    return pyotp.TOTP(account["totp_secret"]).provisioning_uri(name=account["_id"],
                                                               issuer_name=ISSUER)


def load_sample_accounts(store: ConsoleStore, path: str | Path,
                         hasher: PasswordHasher) -> list[str]:
    """Add the sample staff list's accounts that are not stored yet (idempotent: an account
    already there, changed or not, is left alone); the staff codes added."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    entries = SampleAccountsSchema().load(raw)["accounts"]
    added = []
    for entry in entries:
        if store.get_account(domain.normalise_user(entry["user"])) is not None:
            continue  # hashing costs: only for what is missing
        if store.add_account(make_account(entry, hasher)):
            added.append(entry["user"])
    return added


class AccountRefused(Exception):
    """An account change refused: `status` (404, 409, 422), the form `field` it names and the
    `errors` by field."""

    def __init__(self, status: int, field: str | None, message: str,
                 errors: dict | None = None):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message
        self.errors = errors or ({field: [message]} if field else {})


# The page's form names the staff code `code` (as the directory's staff form does); the
# schema, the CLI and the sample list call it `user`.
ACCOUNT_FORM_FIELDS = ("code", "name", "role", "unit", "institution", "email")


class StaffAccounts:
    """The administrators' use cases over the console's accounts: the same schema and the
    same making as the CLI, a disabled flag that ends the account's sessions."""

    def __init__(self, store: ConsoleStore, hasher: PasswordHasher):
        self.store = store
        self.hasher = hasher

    def listed(self) -> list[dict]:
        """Every account without its secrets (`ConsoleStore.list_accounts`)."""
        return self.store.list_accounts()

    def create(self, form: dict) -> dict:
        """Store the account the form describes (`code`, `password`, `password_again`, role,
        unit, institution, name, e-mail; blanks are absent) and return it, its TOTP secret
        made here for a role that needs one. Refused (422, or 409 for a code that has an
        account) naming the form's field; nothing is stored then."""
        if form.get("password", "") != form.get("password_again", ""):
            raise AccountRefused(422, "password_again",
                                 "parolalar aynı değil / the passwords differ")
        raw = {name: (form.get(name) or "").strip() or None
               for name in ("role", "unit", "institution", "name", "email")}
        raw["user"] = domain.normalise_user(form.get("code") or "")
        raw["password"] = form.get("password", "")
        try:
            fields = AccountSchema().load(raw)
        except ValidationError as exc:
            errors = {("code" if name == "user" else name): messages
                      for name, messages in exc.messages.items()}
            first = next((name for name in ("code", "password", *ACCOUNT_FORM_FIELDS)
                          if name in errors), next(iter(errors)))
            raise AccountRefused(422, first, "; ".join(
                f"{name}: {' '.join(map(str, errors[name]))}" for name in errors),
                errors) from None
        if self.store.get_account(fields["user"]) is not None:
            raise AccountRefused(409, "code", f"{fields['user']}: bu kodun hesabı var / "
                                              "this code has an account already")
        # argon2 is slow by design: hashed in an OS thread, not on the green thread
        account = tpool.execute(make_account, fields, self.hasher)
        if not self.store.add_account(account):
            raise AccountRefused(409, "code", f"{fields['user']}: bu kodun hesabı var / "
                                              "this code has an account already")
        return account

    def disable(self, user: str, by: str) -> int:
        """Disable `user` and end its sessions and pending logins (how many ended). An
        administrator cannot disable their own account (422 naming `code`)."""
        user = domain.normalise_user(user)
        if user == domain.normalise_user(by):
            raise AccountRefused(422, "code", "kendi hesabınızı kapatamazsınız / you cannot "
                                              "disable your own account")
        if not self.store.set_disabled(user, True):
            raise AccountRefused(404, "code", f"{user}: böyle bir hesap yok / no such account")
        return self.store.end_sessions_of(user)

    def enable(self, user: str) -> None:
        """Let `user` sign in again (with the password and second factor it had)."""
        if not self.store.set_disabled(domain.normalise_user(user), False):
            raise AccountRefused(404, "code", f"{user}: böyle bir hesap yok / no such account")


def _read_password(stream=None) -> str:
    stream = stream or sys.stdin
    if stream.isatty():
        first = getpass.getpass("Parola / password: ")
        if getpass.getpass("Tekrar / again: ") != first:
            raise SystemExit("the passwords differ")
        return first
    return stream.readline().rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    """`add` stores an account in the console's database (`MONGO_URI`, `MONGO_DB_CONSOLE`)."""
    from services.common.config import load_config
    from services.common.mongo import open_database

    parser = argparse.ArgumentParser(prog="python -m services.console.accounts")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a staff account (password from stdin or a prompt)")
    add.add_argument("--user", required=True, help="staff code, e.g. mez-0008")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--unit")
    add.add_argument("--institution")
    add.add_argument("--name")
    add.add_argument("--email", help="where a password reset link is sent")
    add.add_argument("--replace", action="store_true", help="overwrite an existing account")
    args = parser.parse_args(argv)
    try:
        fields = AccountSchema().load({
            "user": domain.normalise_user(args.user), "role": args.role, "unit": args.unit,
            "institution": args.institution, "name": args.name, "email": args.email,
            "password": _read_password()})
    except ValidationError as exc:
        print(f"refused: {exc.messages}", file=sys.stderr)
        return 2
    account = make_account(fields, PasswordHasher())
    db = open_database(load_config(), "console")
    try:
        store = ConsoleStore(db)
        store.ensure_indexes()
        if args.replace:
            store.replace_account(account)
        elif not store.add_account(account):
            print(f"{account['_id']} has an account already (--replace to overwrite)",
                  file=sys.stderr)
            return 1
    finally:
        db.client.close()
    print(f"account {account['_id']} ({account['role']}) stored")
    uri = provisioning_uri(account)
    if uri:
        print("TOTP is required for this role; add it to an authenticator app:")
        print(uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
