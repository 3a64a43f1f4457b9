"""MongoDB access shared by every service: clients, the embedded store, indexes.

`MONGO_URI` chooses the server; `mongomock://` selects the in-process embedded store used by the
one-command local run and the tests. Each service owns one database (`MONGO_DB`, default
`acikkapi_<service>`), declares its indexes in code and creates them at start-up.

mongomock answers every query by scanning the whole collection, even `{"_id": x}`, and checks
unique indexes on insert the same way. Our hot paths are therefore keyed by `_id` (uniqueness of
tracking codes, citizens, idempotency keys lives in `_id`-keyed collections) and
`install_embedded_fast_paths` teaches mongomock to answer `_id` equality and `$in` by dictionary
lookup. Real MongoDB is unaffected.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pymongo
from nameko.extensions import DependencyProvider
from pymongo.database import Database

EMBEDDED_SCHEME = "mongomock://"

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
_patched = False
_ID_SCALARS = (str, int, bytes)


@dataclass(frozen=True)
class Index:
    """One index declared in code: `keys` as pymongo expects, plus options."""

    keys: list[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


def install_embedded_fast_paths() -> None:
    """Make mongomock answer `_id` equality / `$in` without scanning the collection."""
    global _patched
    if _patched:
        return
    from mongomock import collection as mm_collection
    from mongomock.filtering import filter_applies

    original = mm_collection.Collection._iter_documents

    def _iter_documents(self, filter):  # noqa: A002 - mongomock's own signature
        if isinstance(filter, dict) and "_id" in filter:
            wanted = filter["_id"]
            ids: list | None = None
            if isinstance(wanted, _ID_SCALARS):
                ids = [wanted]
            elif isinstance(wanted, dict) and set(wanted) == {"$in"}:
                ids = [i for i in wanted["$in"] if isinstance(i, _ID_SCALARS)]
                if len(ids) != len(wanted["$in"]):
                    ids = None
            if ids is not None:
                store = self._store
                found = []
                for one in dict.fromkeys(ids):
                    try:
                        doc = store[one]  # one lock round, not two (`in` then `[]`)
                    except KeyError:
                        continue
                    if filter_applies(filter, doc):
                        found.append(doc)
                return iter(found)
        return original(self, filter)

    mm_collection.Collection._iter_documents = _iter_documents
    # mongomock compares the pymongo version with literals (`version.parse("4.0")`) on every
    # insert and update; a parsed version never changes, so each literal is parsed once.
    import functools
    import types

    from packaging import version

    mm_collection.version = types.SimpleNamespace(parse=functools.cache(version.parse))
    _install_fast_datetime_walks()
    _install_lock_free_store()
    _install_fast_copies()
    _patched = True


def _install_fast_copies() -> None:
    """Copy documents in and out of mongomock without `copy`'s generic machinery.

    mongomock copies every document it returns (`_copy_field`, leaf by leaf with `copy.copy`)
    and snapshots every document it updates (`copy.deepcopy`). For the dicts, lists, strings,
    numbers and datetimes documents are made of, dispatching on the exact type is several
    times faster; immutable leaves (datetimes included) need no copy at all. Any other type
    goes through `copy` as before.
    """
    import copy
    import types
    from datetime import datetime

    from mongomock import collection as mm_collection

    immutable = _SCALARS | {datetime}

    def deepcopy(value, memo=None):
        kind = type(value)
        if kind in immutable:
            return value
        if kind is dict:
            return {k: deepcopy(v) for k, v in value.items()}
        if kind is list:
            return [deepcopy(item) for item in value]
        return copy.deepcopy(value, memo)

    original_copy_field = mm_collection._copy_field

    def copy_field(obj, container):
        kind = type(obj)
        if kind in immutable:
            return obj
        if kind is list:
            return [copy_field(item, container) for item in obj]
        if kind is dict:
            new = container()
            for key, value in obj.items():
                new[key] = copy_field(value, container)
            return new
        return original_copy_field(obj, container)

    mm_collection._copy_field = copy_field
    mm_collection.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)


def _install_lock_free_store() -> None:
    """Drop mongomock's per-access reader/writer lock where every thread is a green thread.

    The lock keeps real threads from mutating a collection's dictionary while another iterates
    it. Under eventlet's monkey patching all our "threads" are greenlets of one OS thread, and a
    mongomock operation never yields (it does no I/O), so it runs atomically anyway — while
    taking the lock cost five lock round trips per document access, a tenth of a submission's
    CPU. Without monkey patching (plain threads) the lock stays.
    """
    import eventlet.patcher
    from mongomock.store import CollectionStore

    if not eventlet.patcher.is_monkey_patched("thread"):
        return

    def expire(store) -> None:
        if store._ttl_indexes:
            store._remove_expired_documents()

    def contains(self, key):
        expire(self)
        return key in self._documents

    def getitem(self, key):
        expire(self)
        return self._documents[key]

    def setitem(self, key, value):
        self._documents[key] = value

    def delitem(self, key):
        del self._documents[key]

    def length(self):
        expire(self)
        return len(self._documents)

    def documents(self):
        expire(self)
        yield from self._documents.values()

    CollectionStore.__contains__ = contains
    CollectionStore.__getitem__ = getitem
    CollectionStore.__setitem__ = setitem
    CollectionStore.__delitem__ = delitem
    CollectionStore.__len__ = length
    CollectionStore.documents = property(documents)


_SCALARS = frozenset((str, int, float, bool, bytes, type(None)))


def _install_fast_datetime_walks() -> None:
    """Same results as mongomock's two datetime walks, without their per-value isinstance loops.

    mongomock walks every document written (aware → naive UTC, milliseconds) and, with
    `tz_aware`, every document read (naive → aware). Those walks were a sixth of a request's
    CPU on intake's and tracking's hot paths; dispatching on the exact type first makes them
    cheap for the scalars documents are mostly made of.
    """
    from collections import OrderedDict
    from datetime import datetime

    from mongomock import helpers

    original_patch = helpers.patch_datetime_awareness_in_document
    utc = helpers.utc

    def patch_in(value):
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is dict:
            return {k: patch_in(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [patch_in(item) for item in value]
        if kind is datetime:
            mongo_us = (value.microsecond // 1000) * 1000
            if value.tzinfo:
                return (value - value.utcoffset()).replace(tzinfo=None, microsecond=mongo_us)
            return value.replace(microsecond=mongo_us)
        if isinstance(value, OrderedDict):
            return OrderedDict((k, patch_in(v)) for k, v in value.items())
        return original_patch(value)  # other dicts, lists, datetimes, Timestamps: as before

    def aware_out(value):
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is dict:
            return {k: aware_out(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [aware_out(item) for item in value]
        if isinstance(value, dict):
            return {k: aware_out(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return [aware_out(item) for item in value]
        if isinstance(value, datetime):
            return value.replace(tzinfo=utc)
        return value

    helpers.patch_datetime_awareness_in_document = patch_in
    helpers.make_datetime_timezone_aware_in_document = aware_out


def get_client(uri: str):
    """A process-wide client per URI, so a service's nameko side and Flask side share data."""
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            if uri.startswith(EMBEDDED_SCHEME):
                import mongomock

                install_embedded_fast_paths()
                client = mongomock.MongoClient(tz_aware=True)
            else:
                client = pymongo.MongoClient(uri, tz_aware=True, uuidRepresentation="standard")
            _clients[uri] = client
        return client


def forget_clients() -> None:
    """Drop cached clients (tests use a fresh embedded store each time)."""
    with _clients_lock:
        for uri, client in _clients.items():
            if not uri.startswith(EMBEDDED_SCHEME):
                client.close()
        _clients.clear()


def is_embedded(uri: str) -> bool:
    """True when `uri` selects the in-process embedded store."""
    return uri.startswith(EMBEDDED_SCHEME)


def database_name(config: dict, service_name: str) -> str:
    """The service's database: `MONGO_DB_<SERVICE>`, `MONGO_DB`, else `acikkapi_<service>`."""
    return (
        config.get(f"MONGO_DB_{service_name.upper()}")
        or config.get("MONGO_DB")
        or f"acikkapi_{service_name}"
    )


def get_database(config: dict, service_name: str) -> Database:
    """The service's own database, from `MONGO_URI` in `config`."""
    return get_client(config["MONGO_URI"])[database_name(config, service_name)]


def ensure_indexes(db: Database, indexes: dict[str, list[Index]]) -> None:
    """Create the declared indexes; safe to call at every start."""
    for collection, declared in indexes.items():
        for index in declared:
            db[collection].create_index(index.keys, **index.options)


class Mongo(DependencyProvider):
    """Injects a service's store, built by `store_factory(database)` once at container setup."""

    def __init__(self, store_factory):
        self.store_factory = store_factory
        self.store = None

    def setup(self) -> None:
        db = get_database(self.container.config, self.container.service_name)
        self.store = self.store_factory(db)
        self.store.ensure_indexes()

    def get_dependency(self, worker_ctx):
        return self.store
