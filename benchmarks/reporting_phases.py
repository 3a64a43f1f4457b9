"""Where a reporting batch's time goes, on the real database server:

    python -m benchmarks.reporting_phases [--applications 300] [--batch 20000]

Folds the synthetic history of `benchmarks.reporting` (7 events per application), loaded as
the batched handler receives it, in batches of `--batch` as the service folds a batch off the
bus (`Reports.record_batch`, eventlet, reads and writes overlapped 16 at a time), and prints
the time of each batch and of each store call. Monkey-patched first, as
`python -m services.reporting` is.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import pymongo  # noqa: E402
from eventlet.greenpool import GreenPool  # noqa: E402

from benchmarks.processes import (  # noqa: E402
    bench_databases,
    drop_databases,
    peak_memory_mb,
    store_name,
)
from benchmarks.reporting import history  # noqa: E402
from services.common.config import DEFAULTS  # noqa: E402
from services.common.events import load_event  # noqa: E402
from services.reporting.reports import Reports  # noqa: E402
from services.reporting.store import ReportingStore  # noqa: E402

TIMED = ("summaries", "write_journal", "write_summaries", "keep_facts", "read_buckets",
         "write_buckets", "clear_journal", "take_lease")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=300)
    parser.add_argument("--batch", type=int, default=int(DEFAULTS["EVENT_BATCH_SIZE"]))
    args = parser.parse_args(argv)
    databases = bench_databases()
    client = pymongo.MongoClient(databases["MONGO_URI"], tz_aware=True)
    try:
        store = ReportingStore(client[databases["MONGO_DB_REPORTING"]])
        store.ensure_indexes()
        # as the handlers receive them: JSON off the bus, loaded and validated
        events = [load_event(json.loads(json.dumps(envelope, default=str)))
                  for _, envelope in history(args.applications, random.Random(12))]
        spent: Counter = Counter()
        for name in TIMED:
            call = getattr(store, name)

            def timed(*a, _call=call, _name=name, **k):
                begun = time.perf_counter()
                try:
                    return _call(*a, **k)
                finally:
                    spent[_name] += time.perf_counter() - begun

            setattr(store, name, timed)
        reports = Reports(store, spawn_map=GreenPool(16).imap)
        print(f"history loaded: peak memory {peak_memory_mb(os.getpid()):.0f} MB")
        print(f"store: {store_name(databases['MONGO_URI'])}")
        folded = 0.0
        for at in range(0, len(events), args.batch):
            batch = events[at:at + args.batch]
            began = time.perf_counter()
            reports.record_batch(batch)
            took = time.perf_counter() - began
            folded += took
            # counted outside the time: FerretDB reads every bucket to count them
            print(f"  batch of {len(batch)} events: {took:.2f} s, "
                  f"{store.buckets.estimated_document_count():,} buckets stored, peak memory "
                  f"{peak_memory_mb(os.getpid()):.0f} MB")
        print(f"{len(events)} events of {args.applications} applications folded in "
              f"{folded:.2f} s ({len(events) / folded:,.0f}/s)")
        for name, seconds in spent.most_common():
            print(f"  {name:16s} {seconds:6.2f} s")
        print(f"  {'(folding, CPU)':16s} {folded - sum(spent.values()):6.2f} s")
    finally:
        drop_databases(databases)
        client.close()


if __name__ == "__main__":
    main()
