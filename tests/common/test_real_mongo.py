"""Real-MongoDB integration: what the embedded store cannot prove.

Run with a server: `TEST_MONGO_URI=mongodb://127.0.0.1:27017/?replicaSet=rs0 make test` (the whole
suite then runs against it too). Without one these are skipped: no MongoDB server can be
installed on our build machines.
"""
import os

import eventlet
import pytest

from services.common.mongo import get_database, is_embedded
from services.common.outbox import OUTBOX_AT, fold_once
from services.common.runner import SERVICES

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_MONGO_URI") or is_embedded(os.environ["TEST_MONGO_URI"]),
    reason="needs a real MongoDB: set TEST_MONGO_URI",
)


def test_every_store_creates_its_declared_indexes_on_a_real_server(config):
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


def test_concurrent_folds_of_one_document_lose_no_update(config):
    # Real I/O lets greenlets interleave between read and write: the version guard must hold.
    col = get_database(config, "routing")["folds"]

    def add(event_id):
        return fold_once(col, "doc", event_id,
                         lambda current: ({"n": (current or {}).get("n", 0) + 1}, []))

    pool = eventlet.GreenPool(20)
    results = list(pool.imap(add, [f"e{i}" for i in range(50)]))
    assert all(results)
    assert col.find_one({"_id": "doc"})["n"] == 50


def test_the_relay_sweep_query_uses_its_index(config):
    db = get_database(config, "intake")
    db["applications"].create_index([(OUTBOX_AT, 1)], sparse=True)
    plan = db["applications"].find({OUTBOX_AT: {"$lte": 0}}).explain()
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])
