"""What every store relies on, proved on the server the tests run on.

By default that is the local FerretDB (`make test` starts it); with
`TEST_MONGO_URI=mongodb://host:27017/?replicaSet=rs0 make test` the whole suite, these included,
runs on a MongoDB replica set. The guarded write (`services.common.mongo.write_guarded`) must hold
on both: on MongoDB through the version filter, on FerretDB 1.x — where a filtered update is not
atomic — through insert-once version claims.
"""
from datetime import timedelta

import eventlet
import pytest
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from services.common import mongo
from services.common.events import utcnow
from services.common.mongo import has_indexed_queries, is_ferretdb
from services.common.outbox import OUTBOX, OUTBOX_AT, fold_once, update_with_events
from services.common.runner import SERVICES
from tests.support import database as get_database


def test_every_store_creates_its_declared_indexes(config):
    import importlib

    for name in SERVICES:
        store_module = importlib.import_module(f"services.{name}.store")
        db = get_database(config, name)
        store_cls = next(v for k, v in vars(store_module).items()
                         if k.endswith("Store") and isinstance(v, type))
        store_cls(db).ensure_indexes()
        for collection, declared in store_module.INDEXES.items():
            existing = {tuple(i["key"].items()) for i in db[collection].list_indexes()}
            for index in declared:
                assert tuple(index.keys) in existing, (name, collection, index.keys)


def test_one_insert_wins_when_many_race_for_the_same_id(config):
    col = get_database(config, "sla")["claims"]

    def claim(who):
        try:
            col.insert_one({"_id": "timer-1@2026-12-01T09:00", "by": who})
            return who
        except DuplicateKeyError:
            return None

    winners = [w for w in eventlet.GreenPool(20).imap(claim, range(40)) if w is not None]
    assert len(winners) == 1


def test_concurrent_folds_of_one_document_lose_no_update(config):
    # Real I/O lets greenlets interleave between read and write: the guard must hold.
    col = get_database(config, "routing")["folds"]

    def add(event_id):
        return fold_once(col, "doc", event_id,
                         lambda current: ({"n": (current or {}).get("n", 0) + 1}, []))

    results = list(eventlet.GreenPool(20).imap(add, [f"e{i}" for i in range(50)]))
    assert all(results)
    doc = col.find_one({"_id": "doc"})
    assert doc["n"] == 50 and len(doc["_handled"]) == 50


def test_concurrent_writes_with_events_keep_every_event(config):
    col = get_database(config, "intake")["things"]
    col.insert_one({"_id": "t", "_v": 1, "status": "open"})

    def write(i):
        return update_with_events(col, {"_id": "t"}, {f"f{i}": i},
                                  [{"event_id": f"e{i}", "type": "x", "producer": "intake"}])

    assert all(eventlet.GreenPool(20).imap(write, range(40)))
    doc = col.find_one({"_id": "t"})
    assert sorted(e["event_id"] for e in doc[OUTBOX]) == sorted(f"e{i}" for i in range(40))
    assert all(doc[f"f{i}"] == i for i in range(40))


def test_a_write_whose_condition_no_longer_holds_writes_nothing(config):
    col = get_database(config, "notify")["messages"]
    col.insert_one({"_id": "m", "_v": 1, "status": "sending", "claim": "a"})
    assert not update_with_events(col, {"_id": "m", "claim": "b"}, {"status": "sent"}, [])
    assert update_with_events(col, {"_id": "m", "claim": "a"}, {"status": "sent"}, [])
    assert col.find_one({"_id": "m"})["status"] == "sent"


@pytest.fixture
def claimed(config):
    """A document at version 1 on FerretDB, and a way to leave a claim on its version 2."""
    db = get_database(config, "tracking")
    if not is_ferretdb(db):
        pytest.skip("version claims exist only on FerretDB")
    col = db["things"]
    col.insert_one({"_id": "d", "_v": 1, "n": 1})
    return db, col


def test_a_version_claim_left_by_a_dead_writer_does_not_block_the_document(claimed):
    db, col = claimed
    # As if a writer claimed version 2 and was killed before writing it.
    db[mongo.CLAIMS].insert_one({"_id": "things:d@2", "at": utcnow() - timedelta(seconds=30)})
    assert update_with_events(col, {"_id": "d"}, {"n": 2}, [])
    doc = col.find_one({"_id": "d"})
    assert (doc["n"], doc["_v"]) == (2, 3)  # version 2 was skipped, not reused


def test_a_fresh_version_claim_makes_the_second_writer_retry_not_overwrite(claimed):
    db, col = claimed
    db[mongo.CLAIMS].insert_one({"_id": "things:d@2", "at": utcnow()})
    with pytest.raises(mongo.Conflict):
        mongo.write_guarded(col, "d", 1, {"n": 5})
    assert col.find_one({"_id": "d"})["n"] == 1


def test_old_version_claims_are_purged(config):
    db = get_database(config, "tracking")
    if not is_ferretdb(db):
        assert mongo.purge_version_claims(db) == 0
        return
    db[mongo.CLAIMS].insert_many([
        {"_id": "x:1@2", "at": utcnow() - timedelta(hours=2)},
        {"_id": "x:1@3", "at": utcnow()}])
    assert mongo.purge_version_claims(db) == 1
    assert [c["_id"] for c in db[mongo.CLAIMS].find()] == ["x:1@3"]


def test_the_relay_sweep_query_uses_its_index_where_the_server_has_them(config):
    db = get_database(config, "intake")
    if not has_indexed_queries(db):
        pytest.skip("FerretDB 1.x answers only `_id` from an index; the relay sweeps rarely there")
    db["applications"].create_index([(OUTBOX_AT, 1)], sparse=True)
    plan = db["applications"].find({OUTBOX_AT: {"$lte": 0}}).explain()
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])


def test_a_batch_read_by_id_uses_the_id_index(config):
    """`{_id: {$in: [...]}}` (sla's bucket of clocks, one read) is an index search: on MongoDB
    natively, on FerretDB through our change to its SQLite backend (scripts/ferretdb)."""
    db = get_database(config, "sla")
    db["batch"].insert_many([{"_id": f"c{n}"} for n in range(20)])
    query = {"_id": {"$in": ["c3", "c7", "absent"]}}
    assert sorted(doc["_id"] for doc in db["batch"].find(query)) == ["c3", "c7"]
    plan = db.command("explain", {"find": "batch", "filter": query})
    if is_ferretdb(db):
        assert plan["filterPushdown"] is True and "USING INDEX" in str(plan["queryPlanner"])
    else:
        assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])


def test_a_bulk_of_many_replacements_completes(config):
    """FerretDB 1.24 as released kept every statement's read open to the end of an `update`
    command and hung at 100 (its connection pool); scripts/ferretdb closes each in turn."""
    db = get_database(config, "sla")
    db["bulk"].insert_many([{"_id": f"b{n}", "n": 0} for n in range(150)])
    result = db["bulk"].bulk_write(
        [ReplaceOne({"_id": f"b{n}"}, {"n": 1}) for n in range(150)], ordered=False)
    assert result.modified_count == 150
    assert db["bulk"].count_documents({"n": 1}) == 150


def test_a_delete_by_ids_deletes_exactly_those_and_counts_them(config):
    """Our FerretDB deletes `{_id: {$in: [...]}}` by id without reading the documents first
    (scripts/ferretdb/delete_ids.go): the same documents go, and the count is theirs, ids named
    twice or absent included; any other filter still goes through the documents."""
    db = get_database(config, "sla")
    db["gone"].insert_many([{"_id": f"d{n}", "n": n} for n in range(10)] + [{"_id": 7, "n": 70}])
    assert db["gone"].delete_many({"_id": {"$in": ["d1", "d2", "d2", "absent"]}}
                                  ).deleted_count == 2
    assert db["gone"].delete_many({"_id": {"$in": ["d3", 7]}}).deleted_count == 2
    assert db["gone"].delete_many({"_id": {"$in": ["d4", "d5"]}, "n": 5}).deleted_count == 1
    assert db["gone"].delete_one({"_id": {"$in": ["d6", "d8"]}}).deleted_count == 1
    assert db["gone"].delete_many({"_id": {"$in": [f"x{n}" for n in range(1500)] + ["d9"]}}
                                  ).deleted_count == 1
    left = sorted(doc["_id"] for doc in db["gone"].find())
    assert left in (["d0", "d4", "d7", "d8"], ["d0", "d4", "d6", "d7"])
