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

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pymongo
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

@dataclass(frozen=True)
class Index:
    """One index declared in code: `keys` as pymongo expects, plus options."""

    keys: list[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


class ServiceDatabase(Database):
    """A service's own database as its composition root opened it (`open_database`).

    It carries what the server is (`ferretdb`, asked once) and the process's outbox hints for
    it (`hints`, read by that service's relay), so the code that writes and the relay that
    publishes share them through the database they both hold, not through a module registry.
    """

    def __init__(self, client: pymongo.MongoClient, name: str, *, ferretdb: bool,
                 hints: Any = None):
        super().__init__(client, name)
        self.ferretdb = ferretdb
        self.hints = hints


def new_client(uri: str) -> pymongo.MongoClient:
    """A client for `uri` as every service opens one (timezone-aware, standard UUIDs)."""
    return pymongo.MongoClient(uri, tz_aware=True, uuidRepresentation="standard",
                               serverSelectionTimeoutMS=10_000)


def database_name(config: dict, service_name: str) -> str:
    """The service's database: `MONGO_DB_<SERVICE>`, `MONGO_DB`, else `acikkapi_<service>`."""
    return (
        config.get(f"MONGO_DB_{service_name.upper()}")
        or config.get("MONGO_DB")
        or f"acikkapi_{service_name}"
    )


def open_database(config: dict, service_name: str, *, hints: Any = None) -> ServiceDatabase:
    """Open the service's own database on a client of its own (the caller closes
    `db.client`); `hints` is where its writes tell its relay about new outbox entries."""
    client = new_client(config["MONGO_URI"])
    ferretdb = "ferretdbVersion" in client.admin.command("buildInfo")
    return ServiceDatabase(client, database_name(config, service_name), ferretdb=ferretdb,
                           hints=hints)


def is_ferretdb(db: Database) -> bool:
    """Whether the server is FerretDB (`buildInfo` names it; a `ServiceDatabase` knows)."""
    if isinstance(db, ServiceDatabase):
        return db.ferretdb
    return "ferretdbVersion" in db.client.admin.command("buildInfo")


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


def claim_versions(collection: Collection, wanted: list[tuple[Any, int]]) -> set[Any]:
    """Claim many documents' next versions in one insert (FerretDB; see `_claim_version`).

    Returns the ids whose version was won. A lost one — another writer, or a claim its writer
    left behind — is the caller's to retry one by one (`write_guarded`, which takes stale
    claims over). One command instead of one per document: a sweep writes hundreds at once.
    """
    now = utcnow()
    lost = insert_new(collection.database[CLAIMS],
                      [{"_id": f"{collection.name}:{doc_id}@{version}", "at": now}
                       for doc_id, version in wanted])
    return {doc_id for i, (doc_id, _) in enumerate(wanted) if i not in lost}


INSERT_CHUNK = 200  # documents per insert command


def insert_new(collection: Collection, docs: list[dict]) -> set[int]:
    """Insert documents whose `_id` may be taken already, `INSERT_CHUNK` per command (on FerretDB
    a tenth of the cost of a write each); returns the positions in `docs` of those left out
    because their `_id` existed. Any other write error is raised."""
    taken: set[int] = set()
    for at in range(0, len(docs), INSERT_CHUNK):
        try:
            collection.insert_many(docs[at:at + INSERT_CHUNK], ordered=False)
        except pymongo.errors.BulkWriteError as error:
            failures = error.details.get("writeErrors", ())
            if any(failure.get("code") != 11000 for failure in failures):
                raise
            taken.update(at + failure["index"] for failure in failures)
    return taken


_DATE = "$t"


def _encode(value: object) -> object:
    if type(value) is datetime and value.tzinfo is UTC and not value.microsecond % 1000:
        # most dates: stored once already, or made here in UTC to the millisecond
        return {_DATE: value.isoformat()}
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as pymongo stores a naive datetime: UTC
            value = value.replace(tzinfo=UTC)
        # milliseconds, as a date field holds them: a value reads the same packed or not
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        return {_DATE: value.astimezone(UTC).isoformat()}
    raise TypeError(f"cannot pack {type(value).__name__}")


def _decode(obj: dict) -> object:
    if len(obj) == 1 and _DATE in obj:
        return datetime.fromisoformat(obj[_DATE])
    return obj


def pack(value: object) -> str:
    """A value as one JSON text, dates included. FerretDB's cost follows the number of values a
    document holds, not its bytes (`benchmarks/store_shapes.py`): what is only ever read whole
    by `_id` is cheaper stored as one string."""
    return pack_bytes(value).decode()


def pack_bytes(value: object) -> bytes:
    """`pack`'s text as UTF-8 bytes, without a copy as a string (a journal of tens of MB)."""
    # orjson: several times the standard library's speed, same text (dates through `_encode`)
    return orjson.dumps(value, default=_encode,
                        option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS)


def unpack(text: str | bytes) -> Any:
    """What `pack` stored, dates as aware datetimes."""
    return json.loads(text, object_hook=_decode)


def as_stored(value: Any) -> Any:
    """`value` as it reads back once stored: dates to the millisecond."""
    return unpack(pack(value))


IDS_PER_READ = 1000  # FerretDB's `$in` on `_id` (scripts/ferretdb) takes up to 1,000


def find_by_ids(collection: Collection, ids: list[Any], projection: dict | None = None,
                spawn_map: Callable | None = None) -> dict[Any, dict]:
    """The documents with these `_id`s (absent ones left out), one read per 1,000: an index
    search on MongoDB, and on our FerretDB build (upstream 1.24 walks the table for `$in`).
    With `spawn_map` the reads run side by side: the server answers one while this process
    decodes another."""
    found: dict[Any, dict] = {}
    chunks = [ids[at:at + IDS_PER_READ] for at in range(0, len(ids), IDS_PER_READ)]
    for docs in (spawn_map or map)(
            lambda chunk: list(collection.find({"_id": {"$in": chunk}}, projection)), chunks):
        for doc in docs:
            found[doc["_id"]] = doc
    return found


def purge_version_claims(db: Database, now: datetime | None = None) -> int:
    """Forget version claims older than `CLAIM_KEEP` (FerretDB has no TTL indexes)."""
    if has_atomic_guards(db):
        return 0
    cutoff = (now or utcnow()) - CLAIM_KEEP
    return db[CLAIMS].delete_many({"at": {"$lt": cutoff}}).deleted_count


def first_false(taken: Callable[[int], bool]) -> int:
    """The first n for which `taken(n)` is False, given it is True exactly below some count:
    where the next insert-once slot `<key>#<n>` of a list goes, in O(log count) reads by `_id`
    (doubling, then halving)."""
    if not taken(0):
        return 0
    high = 1
    while taken(high):
        high *= 2
    low = high // 2  # taken(low) is True, taken(high) is False
    while high - low > 1:
        middle = (low + high) // 2
        if taken(middle):
            low = middle
        else:
            high = middle
    return high


def slots(collection: Collection, key: str) -> Iterator[dict]:
    """The insert-once slot list `<key>#0`, `<key>#1`, … in order, each read by `_id`, up to the
    first missing one (a list of an application's messages, notes, merged duplicates…: on
    FerretDB only `_id` lookups use an index)."""
    n = 0
    while (slot := collection.find_one({"_id": f"{key}#{n}"})) is not None:
        yield slot
        n += 1


def list_once(collection: Collection, key: str, field: str, value: Any) -> None:
    """Append `{field: value}` to the slot list `key` unless a slot already holds it. Each slot
    is an insert of a unique `_id`, atomic on FerretDB too: a writer that loses a slot to
    another reads it and goes on to the next."""
    n = 0
    while True:
        slot = collection.find_one({"_id": f"{key}#{n}"})
        if slot is None:
            try:
                collection.insert_one({"_id": f"{key}#{n}", field: value})
                return
            except DuplicateKeyError:
                continue  # another writer took this slot: read it
        if slot.get(field) == value:
            return
        n += 1
