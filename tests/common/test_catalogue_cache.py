"""The catalogue copy intake and tracking keep: the file plus the admin's `category_saved`
changes, latest wins, applied once, re-read only when the stored version moved."""
from datetime import timedelta

import pytest

from services.common.catalogue import Category, load_categories
from services.common.catalogue_cache import CATEGORIES, CatalogueCache, open_catalogue
from services.common.config import DEFAULTS
from services.common.events import load_event, utcnow
from tests.support import GRAFFITI, Clock, category_saved
from tests.support import database as get_database

FILE = load_categories(DEFAULTS["CATALOGUE_PATH"])
def saved(definition: dict, *, removed: bool = False, at=None) -> dict:
    """A `category_saved` envelope as the handler receives it (validated, dates parsed)."""
    return load_event(category_saved(definition, removed=removed, at=at))


def apply(cache: CatalogueCache, event: dict) -> bool:
    return cache.apply(event["data"], event["occurred_at"], event["event_id"])


@pytest.fixture
def db(config):
    return get_database(config, "intake")


def test_the_event_carries_exactly_the_public_definition_of_a_category():
    category = Category.from_dict(GRAFFITI)
    assert category.to_dict() == GRAFFITI
    event = saved(GRAFFITI)
    assert {k: v for k, v in event["data"].items() if k != "removed"} == GRAFFITI
    assert event["producer"] == "routing"


def test_without_stored_changes_it_is_the_file(db):
    cache = CatalogueCache(FILE, db, check_seconds=0)
    assert cache.get() == FILE
    assert "graffiti" not in cache.get()


def test_a_saved_category_is_added_changed_and_removed(db):
    cache = CatalogueCache(FILE, db, check_seconds=0)
    assert apply(cache, saved(GRAFFITI)) is True
    assert cache.get()["graffiti"] == Category.from_dict(GRAFFITI)
    assert apply(cache, saved(dict(GRAFFITI, name_tr="Duvar boyama")))
    assert cache.get()["graffiti"].name_tr == "Duvar boyama"
    # a file category can be changed and removed too
    road = dict(FILE["road_damage"].to_dict(), reopen_days=3)
    apply(cache, saved(road))
    assert cache.get()["road_damage"].reopen_days == 3
    apply(cache, saved(GRAFFITI, removed=True))
    assert "graffiti" not in cache.get()
    assert len(cache.get()) == len(FILE)


def test_a_redelivered_event_changes_nothing(db):
    cache = CatalogueCache(FILE, db, check_seconds=0)
    first = saved(GRAFFITI)
    apply(cache, first)
    later = saved(dict(GRAFFITI, name_tr="Duvar boyama"))
    apply(cache, later)
    stored = db[CATEGORIES].find_one({"_id": "graffiti"})
    assert apply(cache, later) is False
    assert apply(cache, first) is False
    assert db[CATEGORIES].find_one({"_id": "graffiti"}) == stored
    assert cache.get()["graffiti"].name_tr == "Duvar boyama"


def test_an_older_change_arriving_late_does_not_overwrite_a_newer_one(config, db):
    now = utcnow()
    newer = saved(dict(GRAFFITI, name_tr="Yeni"), at=now)
    older = saved(dict(GRAFFITI, name_tr="Eski"), at=now - timedelta(seconds=5))
    older_removal = saved(GRAFFITI, removed=True, at=now - timedelta(seconds=1))
    cache = CatalogueCache(FILE, db, check_seconds=0)
    assert apply(cache, newer) is True
    assert apply(cache, older) is False
    assert apply(cache, older_removal) is False
    assert cache.get()["graffiti"].name_tr == "Yeni"
    # in the order they happened, the newer one wins as well (another consumer's copy)
    other = CatalogueCache(FILE, get_database(config, "tracking"), check_seconds=0)
    apply(other, older)
    apply(other, newer)
    assert other.get()["graffiti"].name_tr == "Yeni"


class CountingReads:
    """A collection that counts the version reads made through it."""

    def __init__(self, collection):
        self.collection, self.reads = collection, 0

    def find_one(self, *args, **kwargs):
        self.reads += 1
        return self.collection.find_one(*args, **kwargs)


def test_another_replica_sees_a_change_within_the_check_interval_without_reading_per_call(db):
    clock = Clock(1000.0)
    here = CatalogueCache(FILE, db, check_seconds=2)
    there = CatalogueCache(FILE, db, check_seconds=2, clock=clock)
    there._meta = meta = CountingReads(there._meta)
    assert "graffiti" not in there.get()
    assert meta.reads == 1
    apply(here, saved(GRAFFITI))
    assert "graffiti" in here.get()  # the process that applied it sees it at once
    clock.now += 1.9
    for _ in range(100):  # the hot path: a clock read per call, no database read
        assert "graffiti" not in there.get()
    assert meta.reads == 1
    clock.now += 0.2
    assert "graffiti" in there.get()
    assert meta.reads == 2


def test_the_composition_opens_it_with_the_configured_check_interval(config, db):
    cache = open_catalogue(dict(config, CATALOGUE_CHECK_SECONDS="0"), db)
    assert cache.check_seconds == 0
    assert "road_damage" in cache.get()


def test_without_a_database_it_is_the_file_and_refuses_changes():
    cache = CatalogueCache(FILE)
    assert cache.get() == FILE
    with pytest.raises(RuntimeError):
        apply(cache, saved(GRAFFITI))
