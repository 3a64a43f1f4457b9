"""Logging staff in and keeping them in: passwords (argon2), the second factor (TOTP) for the
roles that need it, the login throttle, and sessions with idle and absolute expiry.

The pages call these use cases and only turn their outcomes into answers. A password is
checked in a real OS thread (`eventlet.tpool`): argon2 is deliberately slow and would stall every
green thread of the process. An unknown staff code is checked against a dummy hash made at
start-up with the same parameters, so it costs the same and answers the same as a wrong
password.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

from services.common.clients import client_subject
from services.common.events import utcnow
from services.console import domain
from services.console.store import ConsoleStore

Clock = Callable[[], datetime]


def digest(token: str) -> str:
    """What a session or pending id is stored as: its SHA-256 (the id is only in the cookie)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Locked:
    """Too many failures: come back in `retry_after` seconds (at `until`)."""

    retry_after: int
    until: datetime


@dataclass(frozen=True)
class Refused:
    """Wrong staff code or password, or wrong or expired second step; `reason` for the page."""

    reason: str


@dataclass(frozen=True)
class NeedsTotp:
    """The password was right; the TOTP code is asked next, under `pending_id`."""

    pending_id: str
    csrf: str


@dataclass(frozen=True)
class SignedIn:
    """A new session: `session_id` goes into the cookie, `session` is what is stored."""

    session_id: str
    session: dict


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The TOTP time step `code` belongs to, if pyotp accepts it (`valid_window=1`: now's
    step, the one before or the one after, for a phone's clock a little off); else None."""
    if not domain.valid_totp_code(code):
        return None
    totp = pyotp.TOTP(secret)
    if not totp.verify(code, for_time=now, valid_window=1):
        return None
    current = totp.timecode(now)
    return next((step for step in (current, current - 1, current + 1)
                 if hmac.compare_digest(totp.generate_otp(step), code)), None)


class Throttle:
    """Login failures per account and per client address, counted exactly (domain.py).
    `prefix` keeps another count apart on the same slots (the password reset requests)."""

    def __init__(self, store: ConsoleStore, secret: str, account_limit: int,
                 client_limit: int, prefix: str = ""):
        self.store = store
        self.secret = secret
        self.limits = {"account": account_limit, "client": client_limit}
        self.prefix = prefix

    def scopes(self, user: str, address: str) -> list[tuple[str, int]]:
        account, client = f"{self.prefix}account", f"{self.prefix}client"
        return [(domain.scope_key(self.secret, account, user), self.limits["account"]),
                (domain.scope_key(self.secret, client, client_subject(address)),
                 self.limits["client"])]

    def admit(self, user: str, address: str, now: datetime
              ) -> Locked | tuple[list[tuple[str, int, int]], domain.Window]:
        """Let an attempt by `user` from `address` in: the slots it holds and the window, or
        `Locked` when either scope is past its limit."""
        window = domain.window_of(now)
        scopes = self.scopes(user, address)
        held = None if self.locked(scopes, window) else self.reserve(scopes, window)
        if held is None:
            return Locked(window.retry_after(now), window.ends)
        return held, window

    def locked(self, scopes: list[tuple[str, int]], window: domain.Window) -> bool:
        return any(self.store.is_marked(domain.limit_id(scope, window)) for scope, _ in scopes)

    def reserve(self, scopes: list[tuple[str, int]],
                window: domain.Window) -> list[tuple[str, int, int]] | None:
        """Take this attempt's slot in every scope before the password is checked: the
        (scope, n, limit) held, or None when a scope is past its limit (then locked)."""
        expires = window.ends + timedelta(seconds=60)
        held = []
        for scope, limit in scopes:
            prefix = f"{scope}|{window.index}"
            n = self.store.claim_slot(prefix, expires)
            held.append((scope, n, limit))
        over = [(scope, n, limit) for scope, n, limit in held if n > limit]
        for scope, _, _ in over:
            self.store.mark(domain.limit_id(scope, window), expires)
        return None if over else held

    def failed(self, held: list[tuple[str, int, int]], window: domain.Window) -> None:
        """The attempt failed: its slots stay; the one that reached a limit locks the scope."""
        expires = window.ends + timedelta(seconds=60)
        for scope, n, limit in held:
            if n >= limit:
                self.store.mark(domain.limit_id(scope, window), expires)

    def succeeded(self, held: list[tuple[str, int, int]], window: domain.Window) -> None:
        """The attempt succeeded: a right password is not a failure, its slots are given back."""
        for scope, n, _ in held:
            self.store.release_slot(domain.slot_id(scope, window, n))


class Logins:
    """The login use cases over the console's store."""

    def __init__(self, store: ConsoleStore, config: dict, *, clock: Clock = utcnow,
                 hasher: PasswordHasher | None = None):
        self.store = store
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.policy = domain.policy_from(config)
        self.throttle = Throttle(store, config["STAFF_TOKEN_SECRET"],
                                 int(config.get("CONSOLE_LOGIN_FAILURES", 5)),
                                 int(config.get("CONSOLE_CLIENT_FAILURES", 20)))
        # the same parameters as real hashes: an unknown user costs what a known one does
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    # -- passwords ----------------------------------------------------------------------------

    def hash_password(self, password: str) -> str:
        return tpool.execute(self.hasher.hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return tpool.execute(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    # -- the two steps ------------------------------------------------------------------------

    def sign_in(self, user: str, password: str, address: str,
                replacing: str | None = None) -> Locked | Refused | NeedsTotp | SignedIn:
        """The first step: staff code and password. `replacing` is the session id the browser
        held, ended here whatever the outcome of a right password (the id is rotated)."""
        user = domain.normalise_user(user)
        now = self.clock()
        admitted = self.throttle.admit(user, address, now)
        if isinstance(admitted, Locked):
            return admitted
        held, window = admitted
        account = self.store.get_account(user) if user else None
        right = self._verify(account["password_hash"] if account else self._dummy, password)
        # a disabled account is refused as a wrong password is (and counts as a failure):
        # the answer does not tell whether the account exists or is disabled
        if not (account and right) or account.get("disabled"):
            self.throttle.failed(held, window)
            return Refused("credentials")
        self.throttle.succeeded(held, window)
        if self.hasher.check_needs_rehash(account["password_hash"]):
            self.store.set_password_hash(user, self.hash_password(password))
        if replacing:
            self.store.delete_session(digest(replacing))
        if domain.requires_totp(account["role"]):
            if not account.get("totp_secret"):
                return Refused("totp_missing")
            pending_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self.store.add_pending({
                "_id": digest(pending_id), "user": user, "csrf": csrf, "created": now,
                "expires_at": now + timedelta(seconds=domain.PENDING_SECONDS)})
            return NeedsTotp(pending_id, csrf)
        return self._open_session(account, now)

    def pending(self, pending_id: str) -> dict | None:
        """The pending login `pending_id` names, while it lasts."""
        found = self.store.get_pending(digest(pending_id)) if pending_id else None
        if found is None or found["expires_at"] <= self.clock():
            return None
        return found

    def verify_totp(self, pending_id: str, code: str,
                    address: str) -> Locked | Refused | SignedIn:
        """The second step: the six-digit code of the account's authenticator (the one before
        and the one after are accepted too, for clocks a little off)."""
        found = self.pending(pending_id)
        if found is None:
            return Refused("expired")
        now = self.clock()
        admitted = self.throttle.admit(found["user"], address, now)
        if isinstance(admitted, Locked):
            return admitted
        held, window = admitted
        account = self.store.get_account(found["user"])
        if account is None or account.get("disabled"):
            account = None  # disabled between the two steps: no second step opens it
        secret = (account or {}).get("totp_secret")
        step = matching_step(secret, code, now) if secret else None
        # a code opens one login: the step it belongs to is claimed once per account, so a
        # code seen over a shoulder (or replayed) within its 90 seconds opens nothing
        right = step is not None and self.store.claim_once(
            f"totp|{found['user']}|{step}", now + timedelta(minutes=5))
        if not right:
            self.throttle.failed(held, window)
            return Refused("totp")
        self.throttle.succeeded(held, window)
        if not self.store.take_pending(digest(pending_id)):
            return Refused("expired")  # used by a concurrent request first
        return self._open_session(account, now)

    def _open_session(self, account: dict, now: datetime) -> SignedIn:
        session_id = secrets.token_urlsafe(32)
        session = {
            "_id": digest(session_id), "user": account["_id"], "role": account["role"],
            "unit": account.get("unit"), "institution": account.get("institution"),
            "name": account.get("name") or account["_id"], "csrf": secrets.token_urlsafe(32),
            "created": now, "last_seen": now,
            "expires_at": self.policy.expires_at(now, now)}
        self.store.add_session(session)
        return SignedIn(session_id, session)

    # -- sessions -----------------------------------------------------------------------------

    def session(self, session_id: str | None) -> dict | None:
        """The live session `session_id` names (its use recorded), or None: unknown, idle
        too long or past its absolute limit (then deleted)."""
        if not session_id:
            return None
        key = digest(session_id)
        found = self.store.get_session(key)
        if found is None:
            return None
        now = self.clock()
        if self.policy.expired(found["created"], found["last_seen"], now):
            self.store.delete_session(key)
            return None
        if domain.needs_touch(found["last_seen"], now):
            self.store.touch_session(key, now, self.policy.expires_at(found["created"], now))
            found = dict(found, last_seen=now)
        return found

    def sign_out(self, session_id: str) -> None:
        self.store.delete_session(digest(session_id))

    def purge(self) -> int:
        return self.store.purge(self.clock())
