"""The limits: per client (all lookups, failed ones), per code (lockout), keyed counters."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import DuplicateKeyError

from services.common.mongo import get_database
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

NOW = datetime(2025, 3, 3, 9, 15, 30, tzinfo=UTC)
LIMITS = {"lookup": Limit("lookup", 5, 60, failures=3), "code": Limit("code", 0, 900, failures=2),
          "portal": Limit("portal", 2, 900), "open311": Limit("open311", 10, 60)}


class Counters:
    """The store's counter interface, in memory."""

    def __init__(self):
        self.docs: dict[str, dict] = {}

    def count(self, key, expires_at):
        doc = self.docs.setdefault(key, {"n": 0, "f": 0, "expires_at": expires_at})
        doc["n"] += 1
        return dict(doc)

    def failed_at_least(self, key, times):
        return self.docs.get(key, {}).get("f", 0) >= times

    def fail(self, key, expires_at):
        self.docs.setdefault(key, {"n": 0, "f": 0, "expires_at": expires_at})["f"] += 1


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
    first = Limiter(TrackingStore(get_database(config, "tracking")), "pepper", LIMITS)
    second = Limiter(TrackingStore(get_database(config, "tracking")), "pepper", LIMITS)
    for limiter in (first, second, first, second, first):
        assert limiter.client("198.51.100.7", "lookup", NOW) is None
    assert second.client("198.51.100.7", "lookup", NOW) is not None
    first.failed("198.51.100.9", "K7M4QX2D9", NOW)
    second.failed("198.51.100.9", "K7M4QX2D9", NOW)
    assert first.code("K7M4QX2D9", NOW) is not None


def test_expired_counters_are_swept(config):
    store = TrackingStore(get_database(config, "tracking"))
    Limiter(store, "pepper", LIMITS).client("198.51.100.7", "lookup", NOW)
    assert store.sweep(NOW) == 0
    assert store.sweep(NOW + timedelta(minutes=3)) == 1
    assert store.limits.count_documents({}) == 0


def test_a_counter_is_created_by_its_first_attempt_and_read_back_by_the_others(config):
    store = TrackingStore(get_database(config, "tracking"))
    expires = int(NOW.timestamp()) + 90
    assert store.count("lookup:x:1", expires) == {"n": 1}  # it made the counter: no read
    assert store.count("lookup:x:1", expires)["n"] == 2
    store.fail("lookup:x:1", expires)
    counter = store.count("lookup:x:1", expires)
    assert (counter["n"], counter["f"], counter["expires_at"]) == (3, 1, expires)


def test_an_attempt_that_loses_the_race_to_create_a_counter_still_counts(config, monkeypatch):
    """Two replicas count a client's first attempts at once: neither attempt is lost."""
    store = TrackingStore(get_database(config, "tracking"))
    real_insert = store.limits.insert_one

    def racing_insert(doc, *args, **kwargs):
        monkeypatch.setattr(store.limits, "insert_one", real_insert)
        real_insert({"_id": doc["_id"], "n": 1, "expires_at": doc["expires_at"]})  # the other
        return real_insert(doc, *args, **kwargs)

    monkeypatch.setattr(store.limits, "insert_one", racing_insert)
    assert store.count("lookup:x:1", 100)["n"] == 2
    assert store.limits.find_one({"_id": "lookup:x:1"})["n"] == 2
    with pytest.raises(DuplicateKeyError):  # the race was real
        real_insert({"_id": "lookup:x:1", "n": 1})


def test_a_lockout_is_checked_against_the_failures_counted(config):
    store = TrackingStore(get_database(config, "tracking"))
    assert not store.failed_at_least("code:x:1", 1)  # no counter at all
    store.fail("code:x:1", 100)
    store.fail("code:x:1", 100)
    assert store.failed_at_least("code:x:1", 2) and not store.failed_at_least("code:x:1", 3)

