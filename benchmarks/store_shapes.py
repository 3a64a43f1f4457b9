"""What a document's shape costs the server: the same SLA clock stored as fields, packed, and
packed with its outbox entries as text; and one string of the same size.

`python -m benchmarks.store_shapes [--documents 3000]` runs against `MONGO_URI` (default: the
local FerretDB of `make db`) in a database of its own, dropped afterwards, and prints for each
shape: `replace_one` by `_id` (16 overlapped) and reads of 100 ids in one `$in`, per second.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import bson  # noqa: E402
from eventlet.greenpool import GreenPool  # noqa: E402

from benchmarks.processes import store_name  # noqa: E402
from benchmarks.sla_sweep import LADDER, template_clock  # noqa: E402
from services.common.mongo import new_client  # noqa: E402
from services.common.outbox import OUTBOX, attach_events  # noqa: E402
from services.sla import domain  # noqa: E402
from services.sla.store import pack_clock  # noqa: E402


def fired_clock() -> dict:
    """A clock after its read deadline passed: level 1, two events in its outbox."""
    routed_at = datetime(2027, 1, 4, 6, 0, tzinfo=UTC)
    clock, events = domain.tick(template_clock(routed_at), routed_at + timedelta(hours=5),
                                dict(enumerate(LADDER)))
    return attach_events(clock, events)


def shapes() -> dict[str, dict]:
    fired = fired_clock()
    packed = pack_clock(fired)
    events_as_documents = dict(packed, **{OUTBOX: fired[OUTBOX]})
    return {
        "a fired clock, as fields": fired,
        "packed, its events as documents": events_as_documents,
        "packed, its events as text (as stored)": packed,
        "one string of the same size": {"blob": "x" * len(bson.encode(fired))},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=3000)
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGO_URI") or "mongodb://127.0.0.1:27018/"
    client = new_client(uri)
    name = f"bench_shapes_{uuid.uuid4().hex[:8]}"
    db = client[name]
    n = args.documents
    pool = GreenPool(16)
    print(f"store: {store_name(uri)}; {n:,} documents per shape\n")
    print("| shape | bytes | values | replace_one/s | read by `$in` of 100, documents/s |")
    print("|---|---:|---:|---:|---:|")
    try:
        for k, (label, base) in enumerate(shapes().items()):
            collection = db[f"shape{k}"]
            docs = [dict(base, _id=f"a{i:08d}") for i in range(n)]
            collection.insert_many(docs)
            started = time.perf_counter()
            list(pool.imap(lambda doc, c=collection: c.replace_one(
                {"_id": doc["_id"]}, dict(doc, level=2)), docs))
            replaced = n / (time.perf_counter() - started)
            started = time.perf_counter()
            for at in range(0, n, 100):
                list(collection.find({"_id": {"$in": [d["_id"] for d in docs[at:at + 100]]}}))
            read = n / (time.perf_counter() - started)
            print(f"| {label} | {len(bson.encode(base)):,} | {_values(base)} | "
                  f"{replaced:,.0f} | {read:,.0f} |")
    finally:
        client.drop_database(name)
        client.close()


def _values(value: object) -> int:
    """How many values a document holds, nested ones counted."""
    if isinstance(value, dict):
        return sum(_values(v) for v in value.values())
    if isinstance(value, list):
        return sum(_values(v) for v in value) or 1
    return 1


if __name__ == "__main__":
    main()
