"""Abuse resistance: rate limits per client and per tracking code, and lockout after failures.

Counters live in tracking's own database, keyed by (bucket, subject, fixed window), so every
replica of the service counts in the same place. Nothing is incremented in place (on FerretDB an
`$inc` is a read and a separate write, and concurrent ones are lost): counting is winning the
next insert-once slot `<counter>:<n|f>#<i>` — the slot won is the exact count, concurrent
attempts each win a different one, and a client or a code is never counted low. When a count
reaches its limit, a marker is stored for the rest of the window; a client's failures and a
code's lockout are checked by reading that marker by `_id` (a small collection: only blocked
subjects are in it). Once a subject is known to be blocked, this process answers without asking
the store again until its window ends (a window's block is never lifted). Subjects are keyed
hashes (HMAC with `CODE_PEPPER`): neither client addresses nor tracking codes are stored in the
clear here. An IPv6 client is counted by its /64, which is what one subscriber usually holds.

A client is limited on all its lookups (floods, scraping) and, more strictly, on failed ones
(guessing). A tracking code is counted whether or not it exists, and a failed lookup counts as a
failure whether the code was unknown or the security code wrong, so the limits never tell the two
apart. After `failures` failures within a window the code is locked for the rest of that window —
even for the right security code (the signed SMS link still opens the status).
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.common.clients import client_subject
from services.common.events import utcnow

# Counters are kept this long past their window so a sweep never removes a live one.
GRACE_SECONDS = 60
# The time attempts are counted in; windows are aligned to it.
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Limit:
    """`count` attempts per `window` seconds; with `failures`, a lockout after that many."""

    bucket: str
    count: int
    window: int
    failures: int = 0


@dataclass(frozen=True)
class Blocked:
    """A refused attempt: who was limited (`client` or `code`) and when to come back."""

    scope: str
    retry_after: int


class CounterStore(Protocol):
    """Counters shared by all replicas; `expires_at` in epoch seconds."""

    def claim(self, key: str, field: str, expires_at: int, stop: int) -> int:
        """Count one under `key`'s `field`: the count, or `stop + 1` once `stop` are counted."""
        ...

    def claim_all(self, claims: list[tuple[str, str, int, int]]) -> list[int]:
        """`claim` for several (key, field, expires_at, stop) at once."""
        ...

    def locked(self, key: str, expires_at: int) -> bool: ...

    def lock(self, key: str, expires_at: int) -> None: ...


def _int(config: dict, key: str, default: int) -> int:
    value = config.get(key)
    return int(value) if value not in (None, "") else default


def limits_from(config: dict) -> dict[str, Limit]:
    """The limits in force; each can be tuned by a config key (tests make them small)."""
    return {
        # Per client: lookups (JSON and pages, signed links, reopen and ratings) — all of
        # them, against floods and scraping, and failed ones, against guessing.
        "lookup": Limit("lookup", _int(config, "TRACK_CLIENT_LIMIT", 300), 600,
                        failures=_int(config, "TRACK_CLIENT_FAILURES", 30)),
        # Per tracking code: failed lookups before the code is locked for the window.
        "code": Limit("code", 0, 900, failures=_int(config, "TRACK_CODE_FAILURES", 8)),
        # Per client: muhtar portal logins and one-time codes.
        "portal": Limit("portal", _int(config, "PORTAL_CLIENT_LIMIT", 20), 900),
        # Per client: Open311 reads and writes.
        "open311": Limit("open311", _int(config, "OPEN311_CLIENT_LIMIT", 600), 60),
    }


def client_address(environ: dict, trusted_hops: int) -> str:
    """The client's address: REMOTE_ADDR, or the one `trusted_hops` proxies in front saw.

    Only as many X-Forwarded-For entries as there are proxies we run are believed; anything
    further left was written by the client and proves nothing.
    """
    if trusted_hops > 0:
        forwarded = [part.strip() for part in
                     environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-min(trusted_hops, len(forwarded))]
    return environ.get("REMOTE_ADDR") or "unknown"


def window(now: datetime, seconds: int) -> tuple[int, int]:
    """The fixed window `now` falls in: its number and when it ends (epoch seconds)."""
    index = int(now.timestamp() // seconds)
    return index, (index + 1) * seconds


def counter_key(secret: str, bucket: str, subject: str, index: int) -> str:
    """The `_id` of a counter: bucket and window in the clear, the subject keyed and hashed."""
    digest = hmac.new(secret.encode(), f"{bucket}:{subject}".encode(), hashlib.sha256)
    return f"{bucket}:{digest.hexdigest()[:32]}:{index}"


def retry_after(ends: int, now: datetime) -> int:
    """Whole seconds until a window ends (epoch seconds; at least 1)."""
    return max(1, math.ceil(ends - now.timestamp()))


class Limiter:
    """Counts attempts in the store and says when to refuse."""

    def __init__(self, store: CounterStore, secret: str, limits: dict[str, Limit],
                 clock: Clock = utcnow):
        self.store = store
        self.secret = secret
        self.limits = limits
        # What callers read `now` from (the methods take it, so one request counts in one
        # window); injected so that a test can pin it instead of racing a window's end.
        self.clock = clock
        self._subjects: dict[tuple[str, str], str] = {}
        # counter key → end of its window (epoch seconds), for the subjects known to be blocked
        self._blocked: dict[str, int] = {}

    def _key(self, limit: Limit, subject: str, index: int) -> str:
        # The keyed hash of a subject is the same in every window: worked out once.
        hashed = self._subjects.get((limit.bucket, subject))
        if hashed is None:
            if len(self._subjects) > 100_000:
                self._subjects.clear()
            hashed = self._subjects[(limit.bucket, subject)] = counter_key(
                self.secret, limit.bucket, subject, 0).rsplit(":", 1)[0]
        return f"{hashed}:{index}"

    def _counter(self, limit: Limit, subject: str, now: datetime) -> tuple[str, int]:
        index, ends = window(now, limit.window)
        return self._key(limit, subject, index), ends

    def _block(self, key: str, ends: int, mark: bool) -> None:
        """Remember that `key` is blocked until `ends`; with `mark`, tell the other replicas
        (known here means marked already: a mark that was read, or stored by this process)."""
        if key in self._blocked:
            return
        if mark:
            self.store.lock(key, ends + GRACE_SECONDS)
        if len(self._blocked) > 100_000:
            self._blocked.clear()  # bounded; a forgotten block costs one read to learn again
        self._blocked[key] = ends

    def _is_blocked(self, key: str, ends: int) -> bool:
        """Known here, or marked by any replica (then known here from now on)."""
        if key in self._blocked:
            return True
        if self.store.locked(key, ends + GRACE_SECONDS):
            self._block(key, ends, mark=False)
            return True
        return False

    def client(self, address: str, bucket: str, now: datetime) -> Blocked | None:
        """Count one request from `address` in `bucket`; `Blocked` when over the limit (or
        over its failures, for buckets that count them)."""
        limit = self.limits[bucket]
        key, ends = self._counter(limit, client_subject(address), now)
        if key in self._blocked:
            return Blocked("client", retry_after(ends, now))
        count = self.store.claim(key, "n", ends + GRACE_SECONDS, limit.count)
        if count > limit.count:
            # Marked where the other replicas read the mark anyway (buckets with failures);
            # elsewhere they learn it from their own next claim.
            self._block(key, ends, mark=bool(limit.failures))
            return Blocked("client", retry_after(ends, now))
        # The mark of too many failures, left by `failed` here or elsewhere. Not read by the
        # window's first request: a failure is counted by a request counted before it (in the
        # same window: gate and lookup share one clock read), and slot 1 is always won before
        # any other, so nothing can be marked yet.
        if limit.failures and count > 1 and self._is_blocked(key, ends):
            return Blocked("client", retry_after(ends, now))
        return None

    def code(self, tracking_code: str, now: datetime) -> Blocked | None:
        """`Blocked` while a (canonical) tracking code is locked after too many failures."""
        limit = self.limits["code"]
        key, ends = self._counter(limit, tracking_code, now)
        if limit.failures and self._is_blocked(key, ends):
            return Blocked("code", retry_after(ends, now))
        return None

    def known_blocked(self, address: str, bucket: str, now: datetime) -> Blocked | None:
        """`Blocked` if this process already knows the client is refused for the window (no
        store access; None means "ask `client` or `lookup`")."""
        key, ends = self._counter(self.limits[bucket], client_subject(address), now)
        return Blocked("client", retry_after(ends, now)) if key in self._blocked else None

    def lookup(self, address: str, tracking_code: str, now: datetime,
               attempt: Callable[[], bool]) -> Blocked | bool:
        """One lookup from `address` of `tracking_code`, counted: what `client`, `code`,
        `attempt()` (True when it opens the application) and, on failure, `failed` would
        answer, in that order of precedence — with all the lookup's counts stored in one insert.

        So the lookup is attempted before the client's count is known (unless this process
        knows it is refused): a client refused by its count gets its 429 all the same, with one
        failure counted high. The attempt is skipped for a locked code.
        """
        client_limit, code_limit = self.limits["lookup"], self.limits["code"]
        key, ends = self._counter(client_limit, client_subject(address), now)
        if key in self._blocked:
            return Blocked("client", retry_after(ends, now))
        code_key, code_ends = self._counter(code_limit, tracking_code, now)
        locked = bool(code_limit.failures) and self._is_blocked(code_key, code_ends)
        opened = not locked and attempt()
        claims = [(key, "n", ends + GRACE_SECONDS, client_limit.count)]
        if not opened and not locked:
            claims += [(counter, "f", counter_ends + GRACE_SECONDS, limit.failures)
                       for counter, counter_ends, limit in ((key, ends, client_limit),
                                                            (code_key, code_ends, code_limit))
                       if limit.failures]
        count, *failures = self.store.claim_all(claims)
        over = count > client_limit.count
        # As in `client`: the mark of the client's failures — read before this lookup's own
        # failure may set it (the failure that reaches the limit is still answered).
        marked = (not over and bool(client_limit.failures) and count > 1
                  and self._is_blocked(key, ends))
        for (counter, _, _, stop), failure in zip(claims[1:], failures, strict=True):
            if failure >= stop:
                self._block(counter, code_ends if counter == code_key else ends, mark=True)
        if over:
            self._block(key, ends, mark=bool(client_limit.failures))
        if over or marked:
            return Blocked("client", retry_after(ends, now))
        if locked:
            return Blocked("code", retry_after(code_ends, now))
        return opened

    def failed(self, address: str, tracking_code: str, now: datetime) -> None:
        """Count one failed lookup against the client and the tracking code (known or not);
        the lookup was counted by `client` first, with the same `now`."""
        counted = []
        for bucket, subject in (("lookup", client_subject(address)), ("code", tracking_code)):
            limit = self.limits[bucket]
            if limit.failures:
                counted.append((*self._counter(limit, subject, now), limit.failures))
        counts = self.store.claim_all([(key, "f", ends + GRACE_SECONDS, failures)
                                       for key, ends, failures in counted])
        for (key, ends, failures), count in zip(counted, counts, strict=True):
            if count >= failures:
                # The failure that reaches the limit marks it; any later one (a concurrent
                # lookup already past the check) marks it again, so a crash in between never
                # leaves the subject unmarked for long.
                self._block(key, ends, mark=True)
