"""Back up and restore the services' databases with pymongo, where mongodump is missing.

Production MongoDB is backed up with MongoDB's own tools (docs/operations.md); this script is
for the places those are not installed — Debian 12 packages neither mongo-tools nor
mongodb-database-tools — and for FerretDB, which it reaches through the same wire protocol.

    python scripts/backup.py dump    --uri URI --out DIR [--db acikkapi_intake ...]
    python scripts/backup.py restore --uri URI --from DIR [--db acikkapi_intake ...] [--drop]
                                     [--into OTHER_DB]

A dump is a directory: `manifest.json` (when, which databases, how many documents each
collection had), then `<db>/<collection>.jsonl` with one document per line in canonical
Extended JSON (bson.json_util; dates, ObjectIds, UUIDs, binaries and 64-bit integers keep their
types) and `<db>/<collection>.indexes.json`. Without `--db`, every `acikkapi_*` database on the
server is dumped (services/common/mongo.py: one database per service, `acikkapi_<service>`).

It is not a point-in-time snapshot across collections: stop the services (or at least the
writers) first, or use mongodump --oplog on a replica set. A restore refuses a collection that
already holds documents unless `--drop` is given, so it never mixes two states silently.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pymongo
from bson import json_util
from bson.binary import UuidRepresentation
from bson.json_util import CANONICAL_JSON_OPTIONS

PREFIX = "acikkapi_"
BATCH = 1000
# The services' client settings (services/common/mongo.py `new_client`), so that what comes
# back is what they wrote: timezone-aware dates and standard UUIDs.
JSON_OPTIONS = CANONICAL_JSON_OPTIONS.with_options(
    tz_aware=True, tzinfo=UTC, uuid_representation=UuidRepresentation.STANDARD)


def client(uri: str) -> pymongo.MongoClient:
    """A client configured as the services configure theirs."""
    return pymongo.MongoClient(uri, tz_aware=True, uuidRepresentation="standard",
                               serverSelectionTimeoutMS=10_000)


def service_databases(mongo: pymongo.MongoClient) -> list[str]:
    """Every `acikkapi_*` database on the server."""
    return sorted(name for name in mongo.list_database_names() if name.startswith(PREFIX))


def dump(mongo: pymongo.MongoClient, out: Path, databases: Iterable[str]) -> dict:
    """Write each database's collections and indexes under `out`; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"created": datetime.now(UTC).isoformat(), "format": 1, "databases": {}}
    for name in databases:
        db = mongo[name]
        folder = out / name
        folder.mkdir(exist_ok=True)
        counts = {}
        for collection in sorted(db.list_collection_names()):
            if collection.startswith("system."):
                continue
            count = 0
            with (folder / f"{collection}.jsonl").open("w", encoding="utf-8") as lines:
                # _id order: the same data always gives the same file (diffable dumps)
                for document in db[collection].find().sort("_id", 1):
                    lines.write(json_util.dumps(document, json_options=JSON_OPTIONS) + "\n")
                    count += 1
            indexes = [
                {"key": [[field, direction] for field, direction in spec["key"]],
                 "options": {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
                 | {"name": index_name}}
                for index_name, spec in db[collection].index_information().items()
                if index_name != "_id_"
            ]
            (folder / f"{collection}.indexes.json").write_text(
                json_util.dumps(indexes, json_options=JSON_OPTIONS, indent=1), encoding="utf-8")
            counts[collection] = count
        manifest["databases"][name] = counts
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def restore(mongo: pymongo.MongoClient, source: Path, databases: Iterable[str] | None = None,
            *, drop: bool = False, into: str | None = None) -> dict[str, dict[str, int]]:
    """Load a dump made by `dump` back; returns the documents restored per collection."""
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    names = list(databases) if databases else list(manifest["databases"])
    if into and len(names) != 1:
        raise SystemExit("--into renames one database: name it with --db")
    restored: dict[str, dict[str, int]] = {}
    for name in names:
        if name not in manifest["databases"]:
            raise SystemExit(f"{name} is not in the dump at {source}")
        target = mongo[into or name]
        restored[target.name] = {}
        for collection, expected in manifest["databases"][name].items():
            if drop:
                target.drop_collection(collection)
            elif target[collection].estimated_document_count():
                raise SystemExit(f"{target.name}.{collection} is not empty: restore with --drop "
                                 "to replace it")
            count = 0
            batch: list[dict] = []
            with (source / name / f"{collection}.jsonl").open(encoding="utf-8") as lines:
                for line in lines:
                    batch.append(json_util.loads(line, json_options=JSON_OPTIONS))
                    if len(batch) >= BATCH:
                        count += len(target[collection].insert_many(batch).inserted_ids)
                        batch = []
            if batch:
                count += len(target[collection].insert_many(batch).inserted_ids)
            if count == 0 and collection not in target.list_collection_names():
                target.create_collection(collection)  # an empty collection is restored too
            indexes = json_util.loads(
                (source / name / f"{collection}.indexes.json").read_text(encoding="utf-8"),
                json_options=JSON_OPTIONS)
            for index in indexes:
                target[collection].create_index([tuple(pair) for pair in index["key"]],
                                                **index["options"])
            if count != expected:
                raise SystemExit(f"{target.name}.{collection}: restored {count} documents, "
                                 f"the dump recorded {expected}")
            restored[target.name][collection] = count
    return restored


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python scripts/backup.py",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dumping = sub.add_parser("dump", help="write the databases to a directory")
    dumping.add_argument("--uri", required=True, help="MongoDB URI (MONGO_URI)")
    dumping.add_argument("--out", required=True, type=Path)
    dumping.add_argument("--db", action="append", help="a database (default: every acikkapi_*)")
    loading = sub.add_parser("restore", help="load a dump back")
    loading.add_argument("--uri", required=True, help="MongoDB URI (MONGO_URI)")
    loading.add_argument("--from", dest="source", required=True, type=Path)
    loading.add_argument("--db", action="append", help="a database (default: all in the dump)")
    loading.add_argument("--drop", action="store_true", help="replace collections that exist")
    loading.add_argument("--into", help="restore the one --db under this name instead")
    args = parser.parse_args(argv)
    mongo = client(args.uri)
    try:
        if args.command == "dump":
            manifest = dump(mongo, args.out, args.db or service_databases(mongo))
            for name, counts in manifest["databases"].items():
                print(f"{name}: {sum(counts.values())} documents in {len(counts)} collections")
        else:
            for name, counts in restore(mongo, args.source, args.db, drop=args.drop,
                                        into=args.into).items():
                print(f"{name}: restored {sum(counts.values())} documents "
                      f"in {len(counts)} collections")
    finally:
        mongo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
