"""What an SLA sweep costs against open timers, and against timers falling due.

`python -m benchmarks.sla_sweep [--open 10000,100000,1000000] [--due 1000,10000] [--sweepers N]`
runs against `MONGO_URI` (default: the local FerretDB of `make db`) in a database of its own,
dropped afterwards, and prints:

1. for each count of open clocks (all due in the coming 30 days): the sweep when no minute has
   ended since the last (one cursor read), and when a minute has ended with nothing due in it
   (cursor, the hour's minute list, two cursor writes) — median and p95 over many sweeps;
2. with the largest count still open: `--due` clocks falling due in one minute, swept by
   `--sweepers` processes at once (four buckets at a time each; default 1): seconds from the
   first sweep's start until every one has fired (and with the processes' own start, as a
   restarted service would see it), and firings per second. Each
   firing is stored with its events in the clock's outbox in one write; publishing them is the
   relay's work and not timed here.

Clocks are real (`domain.open_clock`), seeded in bulk with the bucket and hour documents the
store's `schedule` writes one by one (`seed_clocks`, shared with the two-process test).
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import pymongo  # noqa: E402

from benchmarks.processes import store_name  # noqa: E402
from services.common.events import load_event, make_event  # noqa: E402
from services.common.mongo import VERSION, new_client  # noqa: E402
from services.sla import domain  # noqa: E402
from services.sla.deadlines import Deadlines  # noqa: E402
from services.sla.policy import Policy, clock_calendar  # noqa: E402
from services.sla.store import (  # noqa: E402
    BUCKET_SIZE,
    SPREAD,
    SlaStore,
    minute_key,
    pack_clock,
)

POLICY = Policy(read_hours=4, resolve_hours=24, calendar="round_the_clock")
LADDER = ["exp", "sup", "dir", "dep", "mayor"]


def template_clock(routed_at: datetime) -> dict:
    """One real clock, routed at `routed_at`, read due 4 hours later (round the clock)."""
    routed = load_event(make_event("application_routed", "template", {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli", "unit": "mezitli_bld.works",
        "unit_name": "Fen İşleri", "rule": "bench", "priority": "normal", "read_hours": 4,
        "resolve_hours": 24}, occurred_at=routed_at))
    return domain.open_clock(routed, POLICY, clock_calendar(POLICY, None))


def seed_clocks(db: pymongo.database.Database, count: int, *, first_due: datetime,
                spread_minutes: int, prefix: str, first_slot: int = 0) -> list[str]:
    """`count` clocks whose read deadlines fall in `spread_minutes` minutes from `first_due`,
    with their wake-up buckets and hour lists, as `SlaStore.schedule` leaves them. A later
    seeding of the same minutes starts at another `first_slot` (chains must stay unbroken)."""
    per_minute: dict[str, list[str]] = defaultdict(list)
    batch, ids = [], []
    shapes: dict[int, dict] = {}
    for i in range(count):
        offset = i % spread_minutes
        if offset not in shapes:
            shapes[offset] = template_clock(first_due + timedelta(minutes=offset)
                                            - timedelta(hours=4))
        app_id = f"{prefix}{i:08d}"
        doc = dict(shapes[offset], _id=app_id, application_id=app_id, **{VERSION: 1})
        doc["wake"] = minute_key(doc["next_due_at"])
        per_minute[doc["wake"]].append(app_id)
        batch.append(pack_clock(doc))
        ids.append(app_id)
        if len(batch) == 5000:
            db["clocks"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        db["clocks"].insert_many(batch, ordered=False)
    buckets, hours = [], defaultdict(set)
    for minute, apps in per_minute.items():
        hours[minute[:10]].add(minute)
        if first_slot and len(apps) > BUCKET_SIZE * (SPREAD - first_slot):
            raise ValueError("too many for the chains left in this minute")
        for k in range(0, len(apps), BUCKET_SIZE):
            buckets.append({"_id": f"{minute}|{first_slot + k // BUCKET_SIZE}",
                            "apps": apps[k:k + BUCKET_SIZE], VERSION: 1})
    for k in range(0, len(buckets), 5000):
        db["wakeups"].insert_many(buckets[k:k + 5000], ordered=False)
    for hour, minutes in hours.items():
        found = db["wake_hours"].find_one({"_id": hour})
        merged = sorted(minutes | set((found or {}).get("minutes", [])))
        db["wake_hours"].replace_one({"_id": hour}, {"minutes": merged, VERSION: 1},
                                     upsert=True)
    return ids


def sweep_once(uri: str, database: str, now_iso: str) -> None:
    """One sweeping process: sweep until the minute is done, print what it did as JSON."""
    now = datetime.fromisoformat(now_iso)
    client = new_client(uri)
    deadlines = Deadlines(SlaStore(client[database]), lambda unit: LADDER, clock=lambda: now)
    woken = fired = 0
    cpu = time.process_time()
    began = time.time()  # wall clock: compared across processes
    while True:
        report = deadlines.sweep(now)
        woken, fired = woken + report.woken, fired + report.fired
        if report.caught_up:
            break
        time.sleep(0.2)  # another process still holds a bucket of the minute
    print(json.dumps({"woken": woken, "fired": fired, "cpu": time.process_time() - cpu,
                      "began": began, "ended": time.time()}))
    client.close()


def sweep_in_processes(count: int, uri: str, database: str, now: datetime) -> dict:
    """`count` processes sweep the same store at once: woken and events summed, CPU seconds
    summed, and the sweep's span (the first process's first sweep to the last one's end)."""
    processes = [subprocess.Popen(  # noqa: S603 - this module, with our own arguments
        [sys.executable, "-m", "benchmarks.sla_sweep", "--sweep-once", uri, database,
         now.isoformat()], stdout=subprocess.PIPE, text=True) for _ in range(count)]
    results = [json.loads(process.communicate()[0].strip().splitlines()[-1])
               for process in processes]
    return {"woken": sum(r["woken"] for r in results),
            "fired": sum(r["fired"] for r in results), "cpu": sum(r["cpu"] for r in results),
            "span": max(r["ended"] for r in results) - min(r["began"] for r in results)}


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", default="10000,100000,1000000")
    parser.add_argument("--due", default="1000,10000")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--sweepers", type=int, default=1,
                        help="processes sweeping the due minute together")
    parser.add_argument("--sweep-once", nargs=3, metavar=("URI", "DATABASE", "NOW"),
                        help=argparse.SUPPRESS)  # one sweeping process (used by --sweepers)
    args = parser.parse_args(argv)
    if args.sweep_once:
        sweep_once(*args.sweep_once)
        return
    uri = os.environ.get("MONGO_URI") or "mongodb://127.0.0.1:27018/"
    client = new_client(uri)
    name = f"bench_sla_{uuid.uuid4().hex[:8]}"
    db = client[name]
    store = SlaStore(db)
    store.ensure_indexes()
    now = datetime(2027, 1, 4, 6, 0, tzinfo=UTC)
    deadlines = Deadlines(store, lambda unit: LADDER, clock=lambda: now)
    print(f"store: {store_name(uri)}; database {name}")
    try:
        seeded = 0
        print("\n| open clocks | sweep, no minute ended | sweep, a minute ended, nothing due |")
        print("|---:|---|---|")
        for round_, target in enumerate(int(n) for n in args.open.split(",")):
            started = time.perf_counter()
            seed_clocks(db, target - seeded, first_due=now + timedelta(days=1),
                        spread_minutes=30 * 24 * 60, prefix=f"o{target}-", first_slot=round_)
            seed_s = time.perf_counter() - started
            seeded = target
            store.reset_cursor(minute_key(now - timedelta(minutes=1)))
            idle, ended = [], []
            for _ in range(args.samples):
                t = time.perf_counter()
                deadlines.sweep(now)
                idle.append(time.perf_counter() - t)
            for k in range(1, args.samples + 1):
                t = time.perf_counter()
                report = deadlines.sweep(now + timedelta(minutes=k))
                ended.append(time.perf_counter() - t)
                assert report.woken == 0 and report.caught_up
            store.reset_cursor(minute_key(now - timedelta(minutes=1)))
            print(f"| {target:,} | {percentiles(idle)} | {percentiles(ended)} |"
                  f"  (seeded in {seed_s:.0f} s)")

        print(f"\n| due in one minute (with {seeded:,} open) | sweeping processes | swept in | "
              "with the processes' start | firings/s | events stored | sweepers' CPU |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        due_minute = now + timedelta(minutes=3)
        for due in [int(n) for n in args.due.split(",")]:
            ids = seed_clocks(db, due, first_due=due_minute, spread_minutes=1,
                              prefix=f"d{due}-")
            store.reset_cursor(minute_key(due_minute - timedelta(minutes=1)))
            later = due_minute + timedelta(minutes=1, seconds=1)
            deadlines.clock = lambda later=later: later
            started = time.perf_counter()
            swept = sweep_in_processes(args.sweepers, uri, name, later)
            elapsed = time.perf_counter() - started
            sample = ids[:: max(len(ids) // 200, 1)]
            fired = sum(1 for app in sample
                        if (db["clocks"].find_one({"_id": app}) or {}).get("level") == 1)
            print(f"| {due:,} | {args.sweepers} | {swept['span']:.2f} s | {elapsed:.2f} s | "
                  f"{due / swept['span']:,.0f} | {swept['fired']:,} (level 1 in {fired} of "
                  f"{len(sample)} sampled) | {swept['cpu']:.1f} s |")
            deadlines.clock = lambda: now
            due_minute += timedelta(minutes=10)
    finally:
        client.drop_database(name)
        client.close()


if __name__ == "__main__":
    main()
