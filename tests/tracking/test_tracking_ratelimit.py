"""The limits: per client (all lookups, failed ones), per code (lockout), keyed counters that
concurrent attempts never undercount."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import eventlet
import pytest

from services.tracking.ratelimit import (
    Blocked,
    Limit,
    Limiter,
    client_address,
    client_subject,
    counter_key,
    window,
)
from services.tracking.store import TrackingStore
from tests.support import database
from tests.tracking.test_tracking_guesses import post

NOW = datetime(2025, 3, 3, 9, 15, 30, tzinfo=UTC)
SECURITY_CODE = "SECRETCODE1"  # the one the fixtures' receipts carry the digest of
LIMITS = {"lookup": Limit("lookup", 5, 60, failures=3), "code": Limit("code", 0, 900, failures=2),
          "portal": Limit("portal", 2, 900), "open311": Limit("open311", 10, 60)}


class Counters:
    """The store's counter interface, in memory."""

    def __init__(self):
        self.counts: dict[tuple[str, str], int] = {}
        self.marks: set[str] = set()

    def claim(self, key, field, expires_at, stop):
        n = self.counts.get((key, field), 0)
        if n >= stop:
            return stop + 1
        self.counts[(key, field)] = n + 1
        return n + 1

    def claim_all(self, claims):
        return [self.claim(*claim) for claim in claims]

    def locked(self, key, expires_at):
        return key in self.marks

    def lock(self, key, expires_at):
        self.marks.add(key)


@pytest.fixture
def limiter():
    return Limiter(Counters(), "pepper", LIMITS)


def test_a_client_is_refused_past_its_count_until_the_window_ends(limiter):
    for _ in range(5):
        assert limiter.client("198.51.100.7", "lookup", NOW) is None
    blocked = limiter.client("198.51.100.7", "lookup", NOW)
    assert blocked == Blocked("client", 30)  # the minute ends 30 s later
    assert limiter.client("198.51.100.8", "lookup", NOW) is None  # someone else
    assert limiter.client("198.51.100.7", "lookup", NOW + timedelta(seconds=31)) is None


def test_failed_lookups_lock_the_client_and_the_code_known_or_not(limiter):
    for _ in range(2):
        limiter.failed("198.51.100.7", "K7M4QX2D9", NOW)
    assert limiter.code("K7M4QX2D9", NOW) == Blocked("code", 870)
    assert limiter.code("ABCDEFGH1", NOW) is None
    limiter.failed("198.51.100.7", "ABCDEFGH1", NOW)
    assert limiter.client("198.51.100.7", "lookup", NOW) == Blocked("client", 30)
    assert limiter.code("K7M4QX2D9", NOW + timedelta(seconds=871)) is None  # next window


def test_an_ipv6_subscriber_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4():
    assert client_subject("2001:db8:1:2:aaaa::1") == client_subject("2001:db8:1:2:bbbb::9")
    assert client_subject("2001:db8:1:3::1") != client_subject("2001:db8:1:2::1")
    assert client_subject("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_subject("not an address") == "not an address"


def test_only_as_many_forwarded_addresses_as_proxies_we_run_are_believed():
    environ = {"REMOTE_ADDR": "10.0.0.2",
               "HTTP_X_FORWARDED_FOR": "203.0.113.66, 198.51.100.7"}  # client wrote the first
    assert client_address(environ, 0) == "10.0.0.2"
    assert client_address(environ, 1) == "198.51.100.7"
    assert client_address({"REMOTE_ADDR": "10.0.0.2"}, 1) == "10.0.0.2"


def test_counter_ids_carry_no_address_or_code_in_the_clear():
    key = counter_key("pepper", "code", "K7M4QX2D9", window(NOW, 900)[0])
    assert "K7M4QX2D9" not in key and key.startswith("code:")
    assert counter_key("other", "code", "K7M4QX2D9", 1) != counter_key("pepper", "code",
                                                                        "K7M4QX2D9", 1)


def test_replicas_share_counters_through_the_store(config):
    """Two limiters over the same database (two replicas) count in the same documents."""
    first = Limiter(TrackingStore(database(config, "tracking")), "pepper", LIMITS)
    second = Limiter(TrackingStore(database(config, "tracking")), "pepper", LIMITS)
    for limiter in (first, second, first, second, first):
        assert limiter.client("198.51.100.7", "lookup", NOW) is None
    assert second.client("198.51.100.7", "lookup", NOW) is not None
    first.failed("198.51.100.9", "K7M4QX2D9", NOW)
    second.failed("198.51.100.9", "K7M4QX2D9", NOW)
    assert first.code("K7M4QX2D9", NOW) is not None
    assert second.code("K7M4QX2D9", NOW) is not None


def test_a_lock_reached_on_one_replica_is_read_by_another(config):
    """The failure that reaches the limit marks the subject; other replicas read the mark."""
    first = Limiter(TrackingStore(database(config, "tracking")), "pepper", LIMITS)
    second = Limiter(TrackingStore(database(config, "tracking")), "pepper", LIMITS)
    for _ in range(3):  # three lookups, counted then failed
        assert first.client("198.51.100.9", "lookup", NOW) is None
        first.failed("198.51.100.9", "K7M4QX2D9", NOW)
    assert second.code("K7M4QX2D9", NOW) == Blocked("code", 870)
    assert second.client("198.51.100.9", "lookup", NOW) == Blocked("client", 30)
    assert second.client("198.51.100.10", "lookup", NOW) is None


def test_each_count_is_the_slot_won_and_stops_at_the_limit(config):
    store = TrackingStore(database(config, "tracking"))
    other = TrackingStore(database(config, "tracking"))  # another replica
    expires = int(NOW.timestamp()) + 90
    assert [store.claim("lookup:x:1", "n", expires, 3) for _ in range(2)] == [1, 2]
    assert other.claim("lookup:x:1", "n", expires, 3) == 3  # steps over the first's slots
    assert store.claim("lookup:x:1", "n", expires, 3) == 4  # over: nothing more is stored
    assert store.claim("lookup:x:1", "f", expires, 3) == 1  # failures are counted apart
    assert store.counters.at(expires).count_documents({}) == 4


def test_concurrent_counts_are_all_counted(config):
    """40 attempts at once, on two replicas: 40 different counts, none lost (an `$inc` on
    FerretDB loses most of them)."""
    stores = [TrackingStore(database(config, "tracking")) for _ in range(2)]
    expires = int(NOW.timestamp()) + 90
    pool = eventlet.GreenPool(40)
    counts = list(pool.imap(lambda n: stores[n % 2].claim("code:x:1", "f", expires, 100),
                            range(40)))
    assert sorted(counts) == list(range(1, 41))
    # A lookup's two failures, counted together: still none lost on either counter.
    pairs = list(pool.imap(lambda n: stores[n % 2].claim_all(
        [("lookup:y:1", "f", expires, 100), ("code:y:1", "f", expires, 100)]), range(40)))
    assert sorted(p[0] for p in pairs) == sorted(p[1] for p in pairs) == list(range(1, 41))


def test_parallel_failed_lookups_are_all_counted_and_lock_the_code(
    config, make_app, concluded_application
):
    """40 wrong security codes at once against one tracking code, from 40 clients: every
    failure counts, so the code locks after exactly the configured number — even for the right
    security code."""
    config["TRACK_CODE_FAILURES"] = "40"
    app = make_app(config)
    _, code = concluded_application()
    pool = eventlet.GreenPool(40)
    statuses = list(pool.imap(
        lambda n: post(app, {"tracking_code": code, "security_code": f"WRONG{n}"},
                       f"10.9.0.{n + 1}")[0], range(40)))
    assert statuses == [404] * 40  # all were checked before the lock
    status, _ = post(app, {"tracking_code": code, "security_code": SECURITY_CODE}, "10.9.1.1")
    assert status == 429


def test_the_code_locks_after_the_configured_failures_when_they_come_at_once(
    make_app, concluded_application
):
    """With the default lockout (8), a burst of 40 parallel guesses leaves the code locked and
    every guess after the burst refused."""
    app = make_app()
    _, code = concluded_application()
    pool = eventlet.GreenPool(40)
    statuses = list(pool.imap(
        lambda n: post(app, {"tracking_code": code, "security_code": f"WRONG{n}"},
                       f"10.9.0.{n + 1}")[0], range(40)))
    assert set(statuses) <= {404, 429} and statuses.count(404) >= 8
    after = [post(app, {"tracking_code": code, "security_code": SECURITY_CODE},
                  f"10.9.2.{n}")[0] for n in range(3)]
    assert after == [429] * 3


def test_expired_counters_are_swept(config):
    """Counts live in collections per hour of expiry, marks per five minutes, dropped whole once
    everything in them expired."""
    store = TrackingStore(database(config, "tracking"))
    limiter = Limiter(store, "pepper", LIMITS)
    limiter.client("198.51.100.7", "lookup", NOW)  # window ends 09:16, kept until 09:17
    for _ in range(2):
        limiter.failed("198.51.100.7", "K7M4QX2D9", NOW)  # locks the code: a mark
    store.db["limits"].insert_one({"_id": "from an earlier version"})
    assert store.sweep(NOW) == 1  # only the earlier version's collection
    assert store.sweep(NOW + timedelta(minutes=3)) == 0
    assert store.sweep(NOW + timedelta(minutes=20)) == 1  # the code's mark (kept until 09:31)
    assert store.sweep(NOW + timedelta(minutes=45)) == 5  # the hour's counts: client 3, code 2
    assert not [name for name in store.db.list_collection_names()
                if name.startswith(("limits", "locks"))]


def test_a_lookup_answers_as_the_gate_the_lock_and_the_failure_would(limiter):
    """`Limiter.lookup` (the hot path: all of a lookup's counts in one insert) gives the answers
    `client`, `code` and `failed` give one by one."""
    attempts = []

    def wrong() -> bool:
        attempts.append("wrong")
        return False

    assert limiter.lookup("198.51.100.7", "K7M4QX2D9", NOW, wrong) is False
    assert limiter.lookup("198.51.100.8", "K7M4QX2D9", NOW, wrong) is False  # locks the code
    assert limiter.lookup("198.51.100.9", "K7M4QX2D9", NOW, lambda: True) == Blocked("code", 870)
    assert attempts == ["wrong", "wrong"]  # a locked code is not even tried
    for code in ("ABCDEFGH1", "ABCDEFGH2"):
        assert limiter.lookup("198.51.100.7", code, NOW, wrong) is False  # the third fails...
    assert limiter.lookup("198.51.100.7", "ABCDEFGH3", NOW, lambda: True) == Blocked(
        "client", 30)  # ...then the client is refused, even for the right codes
    for _ in range(5):
        limiter.lookup("198.51.100.10", "ABCDEFGH4", NOW, lambda: True)
    assert limiter.lookup("198.51.100.10", "ABCDEFGH4", NOW, lambda: True) == Blocked(
        "client", 30)  # over its count
    assert limiter.known_blocked("198.51.100.10", "lookup", NOW) == Blocked("client", 30)
    assert limiter.known_blocked("198.51.100.11", "lookup", NOW) is None
