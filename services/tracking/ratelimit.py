"""Abuse resistance: rate limits per client and per tracking code, and lockout after failures.

Counters live in tracking's own database, one document per (bucket, subject, fixed window) keyed
by `_id`, so every replica of the service counts in the same place. Counting an attempt is one
`_id` update and then one `_id` read of the count, all replicas' attempts included (the window's
first attempt inserts the counter instead, and knows its count is 1): concurrent attempts may
each see the other's, so a client is counted high, never low. Checking a code's lockout is one
`_id` count. Subjects are keyed hashes (HMAC with `CODE_PEPPER`): neither client addresses nor
tracking codes are stored in the clear here. An IPv6 client is counted by its /64, which is what
one subscriber usually holds.

A client is limited on all its lookups (floods, scraping) and, more strictly, on failed ones
(guessing). A tracking code is counted whether or not it exists, and a failed lookup counts as a
failure whether the code was unknown or the security code wrong, so the limits never tell the two
apart. After `failures` failures within a window the code is locked for the rest of that window —
even for the right security code (the signed SMS link still opens the status).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Counters are kept this long past their window so a sweep never removes a live one.
GRACE_SECONDS = 60


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

    def count(self, key: str, expires_at: int) -> dict: ...

    def failed_at_least(self, key: str, times: int) -> bool: ...

    def fail(self, key: str, expires_at: int) -> None: ...


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


# Pure, and parsing an address was a tenth of the limiter's work on every request; bounded, since
# an IPv6 client can present as many addresses as it likes.
@functools.lru_cache(maxsize=65_536)
def client_subject(address: str) -> str:
    """What a client is counted by: its IPv4 address, or the /64 of an IPv6 one."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


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

    def __init__(self, store: CounterStore, secret: str, limits: dict[str, Limit]):
        self.store = store
        self.secret = secret
        self.limits = limits
        self._subjects: dict[tuple[str, str], str] = {}

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

    def client(self, address: str, bucket: str, now: datetime) -> Blocked | None:
        """Count one request from `address` in `bucket`; `Blocked` when over the limit (or
        over its failures, for buckets that count them)."""
        limit = self.limits[bucket]
        key, ends = self._counter(limit, client_subject(address), now)
        counter = self.store.count(key, ends + GRACE_SECONDS)
        if counter["n"] > limit.count or (limit.failures
                                          and counter.get("f", 0) >= limit.failures):
            return Blocked("client", retry_after(ends, now))
        return None

    def code(self, tracking_code: str, now: datetime) -> Blocked | None:
        """`Blocked` while a (canonical) tracking code is locked after too many failures."""
        limit = self.limits["code"]
        key, ends = self._counter(limit, tracking_code, now)
        if self.store.failed_at_least(key, limit.failures):
            return Blocked("code", retry_after(ends, now))
        return None

    def failed(self, address: str, tracking_code: str, now: datetime) -> None:
        """Count one failed lookup against the client and the tracking code (known or not)."""
        for bucket, subject in (("lookup", client_subject(address)), ("code", tracking_code)):
            limit = self.limits[bucket]
            key, ends = self._counter(limit, subject, now)
            self.store.fail(key, ends + GRACE_SECONDS)
