"""MongoDB-wire access shared by every service: clients, what the server can do, indexes, and the
one conditional write every document change goes through.

`MONGO_URI` chooses the server: FerretDB 1.24 on its SQLite backend for `make run` and the tests
(`scripts/ensure-ferretdb.sh`), a MongoDB replica set in production. Each service owns one
database (`MONGO_DB_<SERVICE>`, `MONGO_DB`, else `acikkapi_<service>`), declares its indexes in
code and creates them at start-up.

What FerretDB 1.24 does differently, measured on it (docs/architecture.md, "The store"):

- Only a filter that is exactly `{"_id": <string>}` reaches SQLite's index. Any other filter —
  a second key, a secondary field, `$in`, a range — decodes and tests every document of the
  collection. Hot paths therefore read and write by `_id` alone.
- An update is not atomic: FerretDB reads the matching document, computes the new one and writes
  it by `_id` in a separate statement. Two writers to one document lose one write (`$inc` lost
  73 % of 800 concurrent increments), a `{_id, _v}` guard lets both through, and
  `find_one_and_update` can claim one document twice. Insert with a unique `_id` and delete by
  `_id` are atomic.

So a document changes only through `write_guarded`: on MongoDB a replace filtered on the version
read (atomic there); on FerretDB first an insert-once *version claim* `<collection>:<id>@<v>` —
the one writer whose insert succeeds may write version v, by `_id` alone.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pymongo
from nameko.extensions import DependencyProvider
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import utcnow

log = logging.getLogger(__name__)
VERSION = "_v"
CLAIMS = "_version_claims"
# A claim whose writer has not written within this time is taken as dead (a kill -9 between
# claiming and writing): the next writer claims the version after it instead of waiting forever.
CLAIM_LEASE = timedelta(seconds=10)
# Claims older than this are purged: no writer holds a read for that long.
CLAIM_KEEP = timedelta(hours=1)

# One client per URI and process (pymongo pools connections; the nameko side and the Flask side
# of a service share it), and what each server is, asked once.
_clients: dict[str, pymongo.MongoClient] = {}
_ferretdb: dict[int, bool] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Index:
    """One index declared in code: `keys` as pymongo expects, plus options."""

    keys: list[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


def get_client(uri: str) -> pymongo.MongoClient:
    """The process's client for `uri`."""
    with _lock:
        client = _clients.get(uri)
        if client is None:
            client = pymongo.MongoClient(uri, tz_aware=True, uuidRepresentation="standard",
                                         serverSelectionTimeoutMS=10_000)
            _clients[uri] = client
        return client


def forget_clients() -> None:
    """Close and drop every client (tests, between runs of a service in one process)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _ferretdb.clear()


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


def is_ferretdb(db: Database) -> bool:
    """Whether the server is FerretDB (asked once per client: `buildInfo` names it)."""
    client = db.client
    known = _ferretdb.get(id(client))
    if known is None:
        known = _ferretdb[id(client)] = "ferretdbVersion" in client.admin.command("buildInfo")
    return known


def has_atomic_guards(db: Database) -> bool:
    """Whether a filtered update is atomic on this server (MongoDB: yes; FerretDB 1.x: no)."""
    return not is_ferretdb(db)


def has_indexed_queries(db: Database) -> bool:
    """Whether a query on a secondary index uses it (MongoDB: yes; FerretDB 1.x: only `_id`)."""
    return not is_ferretdb(db)


def ensure_indexes(db: Database, indexes: dict[str, list[Index]]) -> None:
    """Create the declared indexes (and the version claims' own); safe at every start."""
    for collection, declared in indexes.items():
        for index in declared:
            db[collection].create_index(index.keys, **index.options)
    if not has_atomic_guards(db):
        db[CLAIMS].create_index([("at", 1)])


class Conflict(Exception):
    """Another writer changed the document first; read it again and retry."""


def write_guarded(collection: Collection, doc_id: Any, read_version: int | None,
                  new: dict) -> int:
    """Store `new` as document `doc_id` if it is still at `read_version` (None: absent; 0: stored
    without a version).

    Returns the version written. Raises `Conflict` when another writer got there first, and
    `DuplicateKeyError` from the insert of a document that someone else created meanwhile.
    """
    if read_version is None:
        new = dict(new, _id=doc_id, **{VERSION: 1})
        collection.insert_one(new)
        return 1
    version = read_version + 1
    if has_atomic_guards(collection.database):
        new = dict(new, _id=doc_id, **{VERSION: version})
        # a document stored without a version (0) matches `None`: the field is absent
        guard = {"_id": doc_id, VERSION: read_version or None}
        if not collection.replace_one(guard, new).matched_count:
            raise Conflict(doc_id)
        return version
    version = _claim_version(collection, doc_id, version)
    collection.replace_one({"_id": doc_id}, dict(new, _id=doc_id, **{VERSION: version}))
    return version


def _claim_version(collection: Collection, doc_id: Any, version: int) -> int:
    """Win the right to write `version` of the document, or raise `Conflict`.

    A claim left by a writer that died before writing would block its version forever; once it
    is older than the lease, the version after it is claimed instead (all contenders agree on
    which, and the insert picks one of them).
    """
    claims = collection.database[CLAIMS]
    prefix = f"{collection.name}:{doc_id}@"
    for _ in range(5):
        try:
            claims.insert_one({"_id": f"{prefix}{version}", "at": utcnow()})
            return version
        except DuplicateKeyError:
            held = claims.find_one({"_id": f"{prefix}{version}"})
            at: datetime | None = held.get("at") if held else None
            if at is not None and utcnow() - at < CLAIM_LEASE:
                raise Conflict(doc_id) from None
            stored = collection.find_one({"_id": doc_id}, {VERSION: 1})
            if stored is None or stored.get(VERSION, 0) >= version:
                raise Conflict(doc_id) from None  # it was written after all
            version += 1
    raise Conflict(doc_id)


def purge_version_claims(db: Database, now: datetime | None = None) -> int:
    """Forget version claims older than `CLAIM_KEEP` (FerretDB has no TTL indexes)."""
    if has_atomic_guards(db):
        return 0
    cutoff = (now or utcnow()) - CLAIM_KEEP
    return db[CLAIMS].delete_many({"at": {"$lt": cutoff}}).deleted_count


class Mongo(DependencyProvider):
    """Injects a service's store, built by `store_factory(database)` once at container setup.

    On FerretDB it also purges the service's old version claims every `CLAIM_PURGE_SECONDS`.
    """

    def __init__(self, store_factory):
        self.store_factory = store_factory
        self.store = None
        self.db: Database | None = None
        self._purger = None

    def setup(self) -> None:
        self.db = get_database(self.container.config, self.container.service_name)
        self.store = self.store_factory(self.db)
        self.store.ensure_indexes()

    def start(self) -> None:
        if not has_atomic_guards(self.db):
            seconds = float(self.container.config.get("CLAIM_PURGE_SECONDS", 600))
            self._purger = self.container.spawn_managed_thread(
                lambda: self._purge_every(seconds), identifier="version_claim_purge")

    def _purge_every(self, seconds: float) -> None:
        import eventlet

        while True:
            eventlet.sleep(seconds)
            try:
                purge_version_claims(self.db)
            except pymongo.errors.PyMongoError:
                log.warning("purging version claims failed; next round", exc_info=True)

    def stop(self) -> None:
        if self._purger is not None:
            self._purger.kill()
            self._purger = None

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.store
