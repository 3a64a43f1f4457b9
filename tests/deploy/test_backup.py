"""scripts/backup.py: a tested restore (issue 14) on the local database server.

Data of every BSON type the services store goes into a uniquely named `acikkapi_*` database
on the local FerretDB (mongodb://127.0.0.1:27018, or MONGO_URI), is dumped with the command
docs/operations.md gives, the database is dropped, restored with the documented command, and
compared document by document, with its indexes. The databases are dropped afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson import Binary, Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "backup.py"
URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27018/")


@pytest.fixture
def mongo():
    client = MongoClient(URI, tz_aware=True, uuidRepresentation="standard",
                         serverSelectionTimeoutMS=3000)
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        pytest.skip(f"no database server at {URI} (scripts/ensure-ferretdb.sh): {error}")
    yield client
    client.close()


@pytest.fixture
def database(mongo):
    name = f"acikkapi_backuptest_{uuid.uuid4().hex[:10]}"
    names = [name, f"{name}_copy"]
    yield mongo[name]
    for each in names:
        mongo.drop_database(each)


def _documents() -> list[dict]:
    when = datetime(2026, 3, 9, 7, 30, 15, 123000, tzinfo=UTC)
    return [
        {"_id": "01J8ZQ3Y5N4V2C7XK9M6B1T0AD", "tckn_hash": "aG9wZQ==", "name": "Çağrı Öztürk",
         "text": "Sokak lambası yanmıyor — İnönü Cd. ğüşıöç", "received_at": when,
         "attempts": 3, "big": Int64(2**53 + 1), "ratio": 0.125, "open": True,
         "closed_at": None, "tags": ["yol", "aydınlatma"],
         "location": {"type": "Point", "coordinates": [34.6415, 36.8121]},
         "history": [{"step": "received", "at": when}, {"step": "routed", "at": when}],
         "_v": 2},
        {"_id": ObjectId("65f0a1b2c3d4e5f607182930"), "uuid": uuid.UUID(int=42),
         "photo": Binary(b"\x89PNG\r\n\x1a\n\x00\xff", 0), "empty": {}, "nothing": []},
        *({"_id": f"case-{i:04d}", "institution": "mersin_bb", "n": i} for i in range(2500)),
    ]


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=300, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _snapshot(db) -> dict:
    return {
        name: (list(db[name].find().sort("_id", 1)),
               sorted((index["name"], tuple(index["key"].items()), bool(index.get("unique")))
                      for index in db[name].list_indexes()))
        for name in sorted(db.list_collection_names())
    }


def test_dump_drop_restore_gives_back_the_same_documents_and_indexes(database, tmp_path):
    database["applications"].insert_many(_documents())
    database["applications"].create_index([("institution", ASCENDING), ("n", DESCENDING)],
                                          name="by_institution")
    database["outbox"].insert_one({"_id": "evt-1", "event": {"type": "application_received"}})
    database["outbox"].create_index([("event.type", ASCENDING)], name="by_type", unique=True)
    database.create_collection("empty_one")
    before = _snapshot(database)
    assert len(before["applications"][0]) == 2502

    out = _run("dump", "--uri", URI, "--out", str(tmp_path / "dump"), "--db", database.name)
    assert f"{database.name}: 2503 documents in 3 collections" in out
    manifest = json.loads((tmp_path / "dump" / "manifest.json").read_text())
    assert manifest["databases"][database.name] == {"applications": 2502, "empty_one": 0,
                                                    "outbox": 1}

    database.client.drop_database(database.name)
    assert database.name not in database.client.list_database_names()

    out = _run("restore", "--uri", URI, "--from", str(tmp_path / "dump"))
    assert f"{database.name}: restored 2503 documents in 3 collections" in out
    after = _snapshot(database)
    assert after == before
    first = database["applications"].find_one({"_id": "01J8ZQ3Y5N4V2C7XK9M6B1T0AD"})
    assert first["received_at"].tzinfo is not None and isinstance(first["big"], int)


def test_restore_refuses_to_mix_into_existing_data_unless_told(database, tmp_path):
    database["cases"].insert_many([{"_id": i, "v": i} for i in range(5)])
    _run("dump", "--uri", URI, "--out", str(tmp_path / "dump"), "--db", database.name)
    database["cases"].insert_one({"_id": 99, "v": "written after the backup"})

    done = subprocess.run([sys.executable, str(SCRIPT), "restore", "--uri", URI, "--from",
                           str(tmp_path / "dump")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode != 0 and "not empty" in done.stderr
    assert database["cases"].count_documents({}) == 6

    _run("restore", "--uri", URI, "--from", str(tmp_path / "dump"), "--drop")
    assert sorted(d["_id"] for d in database["cases"].find()) == [0, 1, 2, 3, 4]

    # a restore drill beside the live database: --into another name
    copy = f"{database.name}_copy"
    _run("restore", "--uri", URI, "--from", str(tmp_path / "dump"), "--db", database.name,
         "--into", copy)
    assert database.client[copy]["cases"].count_documents({}) == 5
