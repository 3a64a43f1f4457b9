"""Password reset by e-mail (issue 13): asking for a link, the link's message for notify, and
setting a new password through it.

- `request(user, address)`: throttled per staff code and per client address like logins (every
  request counts, whether or not the account exists). For an account with an e-mail address it
  stores a reset (`_id` = a random reset id; the SHA-256 of the link's token; 30 minutes) and,
  in the same write, the event `staff_password_reset_requested` carrying the staff code and the
  reset id only. The page answers the same whatever happened, so it tells no one which staff
  codes exist.
- `message(reset_id)`: what notify needs to send the e-mail, asked over RPC at send time: the
  account's address and the link, only while the reset is unused and unexpired.
- `complete(token, password)`: the link's form. The new password is hashed first (argon2 in an
  OS thread), then the reset is consumed (one winner), the hash stored, the account's sessions
  and pending logins ended and its other resets dropped.

Neither the token nor the link is logged; log lines name the staff code and the reset id.
"""
from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from services.common.events import make_event
from services.console import domain
from services.console.logins import Clock, Locked, Logins, Throttle, digest
from services.console.store import ConsoleStore

log = logging.getLogger(__name__)
RESET_PATH = "/console/parola-sifirla/"


@dataclass(frozen=True)
class Requested:
    """The request was taken (what became of it is not said: no account enumeration)."""


@dataclass(frozen=True)
class PasswordChanged:
    """The link set a new password for `user`; its sessions were ended."""

    user: str


class PasswordResets:
    """The reset use cases over the console's store and its login use cases."""

    def __init__(self, store: ConsoleStore, logins: Logins, config: dict, *,
                 clock: Clock | None = None):
        self.store = store
        self.logins = logins
        self.clock = clock or logins.clock
        self.secret = config["STAFF_TOKEN_SECRET"]
        self.base_url = str(config.get("PUBLIC_BASE_URL") or "").rstrip("/")
        self.lifetime = timedelta(minutes=float(config["CONSOLE_RESET_MINUTES"]))
        self.throttle = Throttle(store, self.secret, int(config["CONSOLE_RESET_REQUESTS"]),
                                 int(config["CONSOLE_RESET_CLIENT_REQUESTS"]), prefix="reset-")

    def request(self, user: str, address: str) -> Locked | Requested:
        """Ask for a link for staff code `user` from client `address`."""
        user = domain.normalise_user(user)
        now = self.clock()
        admitted = self.throttle.admit(user, address, now)
        if isinstance(admitted, Locked):
            return admitted
        held, window = admitted
        self.throttle.failed(held, window)  # every request counts: the slots stay
        account = self.store.get_account(user) if user else None
        if account is None or not account.get("email") or account.get("disabled"):
            return Requested()
        reset_id = secrets.token_urlsafe(18)
        token = domain.reset_token(self.secret, reset_id)
        event = make_event("staff_password_reset_requested", f"reset:{reset_id}",
                           {"staff": user, "reset_id": reset_id}, occurred_at=now)
        self.store.add_reset({"_id": reset_id, "user": user, "token_hash": digest(token),
                              "created": now, "expires_at": now + self.lifetime,
                              "used_at": None}, [event])
        # not the reset id: while the reset lives, the console's RPC gives its link for it
        log.info("password reset requested", extra={"staff": user})
        return Requested()

    def _live(self, reset_id: str) -> dict | None:
        found = self.store.get_reset(reset_id)
        if found is None or found.get("used_at") or found["expires_at"] <= self.clock():
            return None
        return found

    def message(self, reset_id: str) -> dict | None:
        """The address and link of reset `reset_id` for notify's e-mail, while it is live."""
        if not domain.RESET_ID.match(reset_id or ""):
            return None
        found = self._live(reset_id)
        account = self.store.get_account(found["user"]) if found else None
        if account is None or not account.get("email") or account.get("disabled"):
            return None
        token = domain.reset_token(self.secret, reset_id)
        return {"staff": account["_id"], "email": account["email"],
                "name": account.get("name") or account["_id"],
                "link": f"{self.base_url}{RESET_PATH}{token}",
                "expires_at": found["expires_at"].isoformat(),
                "minutes": round(self.lifetime.total_seconds() / 60)}

    def live(self, token: str) -> dict | None:
        """The unused, unexpired reset `token` opens, or None (unknown, used, expired)."""
        reset_id = domain.reset_id_of(token or "")
        found = self._live(reset_id) if reset_id else None
        if found is None or not hmac.compare_digest(found["token_hash"], digest(token)):
            return None
        return found

    def complete(self, token: str, password: str) -> PasswordChanged | None:
        """Set `password` (already checked against the policy) through the link `token`;
        None when the link opens nothing (any more)."""
        found = self.live(token)
        if found is None:
            return None
        password_hash = self.logins.hash_password(password)  # before the link is spent
        if self.store.use_reset(found["_id"], self.clock()) is None:
            return None  # used by a concurrent request, or expired meanwhile
        user = found["user"]
        self.store.set_password_hash(user, password_hash)
        ended = self.store.end_sessions_of(user)
        self.store.drop_resets_of(user, keep=found["_id"])
        log.info("password reset", extra={"staff": user, "reset_id": found["_id"],
                                          "sessions_ended": ended})
        return PasswordChanged(user)
