"""What the database server does per operation, and which writes stay atomic under concurrency.

`python -m benchmarks.store_ops [--documents N] [--writers W]` runs against `MONGO_URI` (default:
the local FerretDB of `make db`) in a database of its own, dropped afterwards, and prints:

1. operations per second, one client, for the shapes the stores use: insert, `find_one` and
   `replace_one` by `_id`, and — for comparison — a lookup on a uniquely indexed secondary field
   and an update guarded by `{_id, _v}` (both scans on FerretDB 1.24), at N documents;
2. what W concurrent writers leave of 200 writes each: `$inc`, a `{_id, _v}`-guarded replace, and
   the project's own `write_guarded` (services/common/mongo.py), which must keep every write.

These are the figures `docs/architecture.md` ("Storage") quotes. Only 127.0.0.1 (or MONGO_URI)
is contacted; the whole run is bounded by N and W.
"""
from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

import pymongo

from benchmarks.processes import store_name


def rate(count: int, action) -> float:
    started = time.perf_counter()
    for i in range(count):
        action(i)
    return count / (time.perf_counter() - started)


def concurrent(writers: int, each: int, action) -> None:
    threads = [threading.Thread(target=lambda w=w: [action(w, i) for i in range(each)])
               for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_ops")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGO_URI") or "mongodb://127.0.0.1:27018/"
    name = f"bench_store_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(uri, tz_aware=True, maxPoolSize=args.writers + 4)
    db = client[name]
    n = args.documents
    try:
        print(f"store operations: {store_name(uri)}, {n} documents, {os.cpu_count()} cores")
        col = db["ops"]
        col.create_index([("code", 1)], unique=True)
        figures = {
            "insert_one": rate(n, lambda i: col.insert_one({"_id": f"d{i}", "code": f"c{i}",
                                                           "_v": 1, "body": "x" * 200})),
            "find_one by _id": rate(n, lambda i: col.find_one({"_id": f"d{i}"})),
            "replace_one by _id": rate(n, lambda i: col.replace_one(
                {"_id": f"d{i}"}, {"code": f"c{i}", "_v": 2, "body": "y" * 200})),
            "find_one by unique secondary": rate(min(n, 300), lambda i: col.find_one(
                {"code": f"c{i}"})),
            "update_one guarded {_id, _v}": rate(min(n, 300), lambda i: col.update_one(
                {"_id": f"d{i}", "_v": 2}, {"$set": {"_v": 3}})),
        }
        for label, per_second in figures.items():
            print(f"  {label:32s} {per_second:10,.0f} /s")

        each, writers = 200, args.writers
        expected = each * writers
        counter = db["counter"]
        counter.insert_one({"_id": "n", "n": 0, "_v": 0})
        concurrent(writers, each, lambda w, i: counter.update_one({"_id": "n"},
                                                                   {"$inc": {"n": 1}}))
        inc_kept = counter.find_one({"_id": "n"})["n"]

        counter.replace_one({"_id": "n"}, {"n": 0, "_v": 0})

        def guarded_by_filter(w: int, i: int) -> None:
            while True:
                doc = counter.find_one({"_id": "n"})
                if counter.update_one({"_id": "n", "_v": doc["_v"]},
                                      {"$set": {"n": doc["n"] + 1, "_v": doc["_v"] + 1}}
                                      ).matched_count:
                    return

        concurrent(writers, each, guarded_by_filter)
        filter_kept = counter.find_one({"_id": "n"})["n"]

        from services.common.mongo import Conflict, write_guarded

        counter.replace_one({"_id": "n"}, {"n": 0, "_v": 1})

        def guarded_by_claim(w: int, i: int) -> None:
            while True:
                doc = counter.find_one({"_id": "n"})
                try:
                    write_guarded(counter, "n", doc["_v"], {"n": doc["n"] + 1})
                    return
                except Conflict:
                    continue

        concurrent(writers, each, guarded_by_claim)
        claim_kept = counter.find_one({"_id": "n"})["n"]
        print(f"  {writers} concurrent writers × {each} writes = {expected}:")
        print(f"    $inc                             kept {inc_kept:5d} of {expected}")
        print(f"    update guarded by {{_id, _v}}      kept {filter_kept:5d} of {expected}")
        print(f"    write_guarded (the project's)    kept {claim_kept:5d} of {expected}")
    finally:
        client.drop_database(name)
        client.close()


if __name__ == "__main__":
    main()
