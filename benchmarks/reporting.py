"""Reporting's two targets (issue 12), on the real database server and the real broker:

    python -m benchmarks.reporting ingest --applications 3000 [--processes 2] [--backlog]
    python -m benchmarks.reporting query [--applications 10000000] [--repeat 40]

`ingest`: reporting processes (`python -m services.reporting`, each its own process, on a
private RabbitMQ vhost and databases of their own) take a synthetic history published to the
bus all at once (per application: received, routed, acknowledged, read outcome, resolved,
closed, resolve outcome: 7 events), and the clock runs until every event is projected (no event
waiting, the summary counts every application). Prints events per second end to end. With
`--backlog` the history is published before the processes start (a backlog after an outage):
the clock, from their start, then times reporting alone, not this process publishing on the
same cores.

`query`: writes the buckets that N applications over 36 months would leave (counters of the
size and spread a metropolitan municipality's would have: 40 institutions, 400 units, 300
categories, 30 districts, 2,000 neighbourhoods) and times the reports a manager asks for: a
month, a month of one unit, of an institution's family, of one category, of a unit and a
category together, and 30 days across two months. Prints p50 / p95 / max per question.
"""
from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from urllib.request import urlopen

import pymongo
from kombu import Connection, Producer

from benchmarks.processes import (
    HOST,
    ROOT,
    bench_databases,
    cpu_seconds,
    drop_databases,
    free_port,
    peak_memory_mb,
    private_vhost,
    rabbitmqctl,
    stop,
    store_name,
)
from services.common import topology
from services.common.codes import new_tracking_code, security_digest
from services.common.config import DEV_SECRET
from services.common.events import make_event, new_event_id
from services.common.topology import event_exchange
from services.reporting import aggregates, domain
from services.reporting.reports import Reports
from services.reporting.store import ReportingStore

# -- ingest -------------------------------------------------------------------------------------

UNITS = [(f"inst{i:02d}", f"inst{i:02d}.unit{u}") for i in range(8) for u in range(5)]
CATEGORIES = [f"cat{c:03d}" for c in range(60)]
DISTRICTS = [f"District {d}" for d in range(13)]


def history(count: int, rng: random.Random) -> list[tuple[str, dict]]:
    """`(producer, envelope)` for `count` applications of the last days, 7 events each."""
    out = []
    now = datetime.now(UTC)
    for _ in range(count):
        at = now - timedelta(days=rng.randint(1, 20), seconds=rng.randint(0, 86_000))
        app = new_event_id()
        institution, unit = rng.choice(UNITS)
        category = rng.choice(CATEGORIES)
        code = new_tracking_code()
        out.append(("intake", make_event("application_received", app, {
            "tracking_code": code, "security_digest": security_digest(DEV_SECRET, "S3CRET1"),
            "kind": "complaint", "category": category, "channel": rng.choice(("web", "sms")),
            "location": {"province": "Mersin", "district": rng.choice(DISTRICTS),
                         "neighbourhood": f"N{rng.randint(1, 200)}"}, "received_at": at},
            occurred_at=at)))
        out.append(("routing", make_event("application_routed", app, {
            "tracking_code": code, "category": category, "tier": "metropolitan",
            "institution": institution, "institution_name": institution, "unit": unit,
            "unit_name": unit, "rule": "bench", "priority": "normal", "read_hours": 24,
            "resolve_hours": 72}, occurred_at=at + timedelta(minutes=1))))
        for step, (etype, state) in enumerate((("case_acknowledged", "acknowledged"),
                                               ("case_resolved", "resolved"),
                                               ("case_closed", "closed")), start=1):
            out.append(("routing", make_event(etype, app, {
                "state": state, "tracking_code": code},
                occurred_at=at + timedelta(hours=step * 7))))
        for step, deadline in enumerate(("read", "resolve"), start=1):
            out.append(("sla", make_event("sla_outcome_recorded", app, {
                "tracking_code": code, "unit": unit, "deadline": deadline, "outcome": "met",
                "completed_at": at + timedelta(hours=step * 7), "hours": 72,
                "used_hours": 7.0 * step, "overrun_hours": 0.0},
                occurred_at=at + timedelta(hours=step * 7))))
    rng.shuffle(out)  # separate queues: no order across types
    return out


def ingest(applications: int, processes: int, backlog: bool = False) -> None:
    vhost = private_vhost()
    amqp = f"amqp://guest:guest@{HOST}:5672/{vhost or 'acikkapi-test'}"
    databases = bench_databases()
    print(f"store: {store_name(databases['MONGO_URI'])}; broker vhost {vhost}; "
          f"{processes} reporting process(es); "
          f"{'a backlog published before they start' if backlog else 'published live'}")
    events = history(applications, random.Random(12))
    topology.declare(amqp)  # the queues exist before anything is published to them
    procs, ports = [], []
    log = open(os.devnull, "w")  # noqa: SIM115 - closed below

    def publish() -> float:
        begun = time.perf_counter()
        with Connection(amqp) as conn:
            producer = Producer(conn.channel())
            for _, envelope in events:  # as the outbox relay sends them
                exchange = event_exchange(envelope["producer"])
                producer.publish(envelope, exchange=exchange, routing_key=envelope["type"],
                                 serializer="json", delivery_mode=2, declare=[exchange])
        return time.perf_counter() - begun

    try:
        # backlog: the broker holds every event before reporting starts, so the clock (from
        # the processes' start, their imports included) times reporting alone; live: this
        # process publishes on the same cores while reporting consumes, as a burst would
        published = publish() if backlog else 0.0
        started = time.perf_counter()
        for _ in range(processes):
            port = free_port()
            env = dict(os.environ, AMQP_URI=amqp, **databases, HTTP_PORT=str(port),
                       HTTP_HOST=HOST, LOG_LEVEL="WARNING")
            procs.append(subprocess.Popen([sys.executable, "-m", "services.reporting"],
                                          cwd=ROOT, env=env, stdout=log, stderr=log))
            ports.append(port)
        for port in ports:
            _wait_healthy(f"http://{HOST}:{port}/health")
        client = pymongo.MongoClient(databases["MONGO_URI"], tz_aware=True)
        db = client[databases["MONGO_DB_REPORTING"]]
        cpu_before = [0.0 if backlog else cpu_seconds(p.pid) for p in procs]
        if not backlog:
            started = time.perf_counter()
            published = publish()
        stored = None  # when the handlers had taken every event (projected or waiting)
        for poll in itertools.count():
            # the processes' own count of the events their batches took, until it covers the
            # history (or every 5 s: events retried one by one are not in it): counting the
            # facts kept reads them all, and every 0.2 s that load on the server slowed down
            # what it measured
            taken = sum(_batch_metrics(f"http://{HOST}:{port}/metrics")[2] for port in ports)
            if taken >= len(events) and stored is None:
                stored = time.perf_counter() - started
            if taken >= len(events) or poll % 25 == 24:
                kept = ReportingStore(db).fact_count()
                waiting = db["pending_events"].estimated_document_count()
                if kept >= len(events) and waiting == 0 and db["projector"].find_one(
                        {"_id": "journal"}) is None:
                    break
            if time.perf_counter() - started > 1800:
                raise RuntimeError("not projected after 30 min")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p.pid) - before for p, before in zip(procs, cpu_before,
                                                                     strict=True))
        reports = Reports(ReportingStore(db))
        counted = reports.summary(date.today() - timedelta(days=25), date.today())["total"]
        print(f"{len(events)} events of {applications} applications: published in "
              f"{published:.1f} s, all stored by the handlers after {stored or elapsed:.1f} s, "
              f"all projected after {elapsed:.1f} s")
        print(f"ingestion end to end: {len(events) / elapsed:,.0f} events/s "
              f"(reporting CPU {cpu:.1f} s); summary counts {counted} applications")
        batches = [_batch_metrics(f"http://{HOST}:{port}/metrics") for port in ports]
        count, seconds = sum(b[0] for b in batches), sum(b[1] for b in batches)
        peak = max(peak_memory_mb(p.pid) for p in procs)
        print(f"batches: {count}, {len(events) / max(count, 1):,.0f} events each on average, "
              f"{seconds:.1f} s spent in them; reporting's peak memory {peak:.0f} MB")
        client.close()
    finally:
        for process in procs:
            stop(process)
        log.close()
        drop_databases(databases)
        if vhost:
            rabbitmqctl("delete_vhost", vhost)


def _batch_metrics(url: str) -> tuple[int, float, int]:
    """`(batches, seconds in them, events in them)` of a reporting process's batched handler."""
    with urlopen(url, timeout=5) as answer:  # noqa: S310 - local
        text = answer.read().decode()
    count, seconds, events = 0, 0.0, 0
    for line in text.splitlines():
        if line.startswith("acikkapi_event_batch_seconds_count"):
            count += int(float(line.split()[-1]))
        elif line.startswith("acikkapi_event_batch_seconds_sum"):
            seconds += float(line.split()[-1])
        elif line.startswith("acikkapi_event_batch_events_sum"):
            events += int(float(line.split()[-1]))
    return count, seconds, events


def _wait_healthy(url: str) -> None:
    until = time.monotonic() + 60
    while time.monotonic() < until:
        try:
            with urlopen(url, timeout=2) as answer:  # noqa: S310 - local
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy within 60 s")


# -- query --------------------------------------------------------------------------------------

def _counts(rng: random.Random, total: int, values: list[str], prefix: str) -> dict[str, int]:
    weights = [rng.random() ** 3 for _ in values]
    scale = total / sum(weights)
    return {f"{prefix}:{v}": max(1, int(w * scale)) for v, w in zip(values, weights,
                                                                    strict=True)}


def synthetic_counters(rng: random.Random, total: int, units: list[str], categories: list[str],
                       institutions: list[str], districts: list[str],
                       neighbourhoods: list[str]) -> dict[str, int]:
    """The counters of a bucket key holding `total` applications, spread like real ones."""
    counters = {"received": total, "concluded": int(total * 0.8), "open": total // 5,
                "overdue": total // 40, "referred": total // 20, "escalated": total // 12}
    for prefix, values in (("category", categories), ("unit", units),
                           ("institution", institutions), ("district", districts),
                           ("neighbourhood", neighbourhoods),
                           ("channel", ["web", "sms", "desk", "call_centre", "muhtar", "mobile",
                                        "email", "cimer"]),
                           ("kind", ["complaint", "request", "suggestion", "information"]),
                           ("status", ["assigned", "acknowledged", "in_progress", "closed",
                                       "waiting_citizen", "resolved", "referred"]),
                           ("level", ["0", "1", "2", "3", "4"]),
                           ("satisfaction", ["~", "1", "2", "3", "4", "5"]),
                           ("read_sla", ["~", "met", "breached"]),
                           ("resolve_sla", ["~", "met", "breached"]),
                           ("reopen_count", ["0", "1", "2"]),
                           ("caller_type", ["citizen", "muhtar"]),
                           ("tier", ["metropolitan", "district", "governorship", "outside"]),
                           ("hours", [str(h) for h in range(0, 720, 4)])):
        counters.update(_counts(rng, total, values, prefix))
    for prefix, values in (("sla_unit", units), ("sla_category", categories)):
        for value in values:
            for outcome in ("read|met", "read|breached", "resolve|met", "resolve|breached"):
                counters[f"{prefix}:{value}|{outcome}"] = rng.randint(1, max(2, total // 500))
    return counters


def seed_buckets(store: ReportingStore, applications: int, months: int = 36) -> list[str]:
    """The month buckets (all, each institution, unit, category, the cells of one unit) and
    the week and day buckets of the last two months that `applications` over `months` would
    leave (the `all` level; the questions' other levels are months).
    Returns the months written, oldest first."""
    rng = random.Random(7)
    institutions = [f"inst{i:02d}" for i in range(40)]
    units = [f"{inst}.unit{u}" for inst in institutions for u in range(10)]
    categories = [f"cat{c:03d}" for c in range(300)]
    districts = [f"District {d}" for d in range(30)]
    neighbourhoods = [f"Mahalle {n}" for n in range(2000)]
    per_month = applications // months
    first = date(2024, 1, 1)
    written = []
    for m in range(months):
        month = (first.replace(day=1) + timedelta(days=31 * m)).replace(day=1)
        period = month.isoformat()[:7]
        written.append(period)
        docs = [{"_id": f"m|{period}|all", "keys": {aggregates.ALL: synthetic_counters(
            rng, per_month, units, categories, institutions, districts, neighbourhoods)}}]
        if m >= months - 2:  # the questions' months: every key of every level
            for level, values, share in (("institution", institutions, 40),
                                         ("unit", units, 400), ("category", categories, 300)):
                for value in values:
                    docs.append({"_id": aggregates.bucket_id("m", period, level, value),
                                 "keys": {value: synthetic_counters(
                                     rng, per_month // share, units[:3], categories[:8],
                                     [value.split(".")[0]], districts, neighbourhoods[:300])}})
            cells, unit_cells = {}, {}
            for district in districts:
                for category in categories[:6]:
                    key = f"inst01|inst01.unit1|{category}|{district}"
                    cells[key] = {"refs": per_month // 4000}
                    unit_cells[key] = synthetic_counters(
                        rng, per_month // 4000, ["inst01.unit1"], [category], ["inst01"],
                        [district], neighbourhoods[:40])
            docs.append({"_id": aggregates.bucket_id("m", period, "cell",
                                                     "inst01|inst01.unit1|*"),
                         "keys": unit_cells})  # the unit's cells: one document
            docs.append({"_id": f"m|{period}|cells", "keys": cells})
            weeks = set()
            for day in range(31):
                when = month + timedelta(days=day)
                if when.month != month.month:
                    break
                weeks.add("{}-W{:02d}".format(*when.isocalendar()[:2]))
                docs.append({"_id": f"d|{when.isoformat()}|all",
                             "keys": {aggregates.ALL: synthetic_counters(
                                 rng, per_month // 30, units, categories, institutions,
                                 districts, neighbourhoods)}})
            for week in sorted(weeks):
                docs.append({"_id": f"w|{week}|all",
                             "keys": {aggregates.ALL: synthetic_counters(
                                 rng, per_month // 4, units, categories, institutions,
                                 districts, neighbourhoods)}})
        store.write_buckets([{**doc, "names": {}, "batches": []} for doc in docs])
    return written


def query(applications: int, repeat: int) -> None:
    databases = bench_databases()
    print(f"store: {store_name(databases['MONGO_URI'])}")
    client = pymongo.MongoClient(databases["MONGO_URI"], tz_aware=True)
    try:
        store = ReportingStore(client[databases["MONGO_DB_REPORTING"]])
        started = time.perf_counter()
        months = seed_buckets(store, applications)
        print(f"buckets of {applications:,} applications over {len(months)} months written "
              f"in {time.perf_counter() - started:.0f} s "
              f"({store.buckets.estimated_document_count():,} documents)")
        last = date.fromisoformat(f"{months[-1]}-01")
        month_end = (last.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        reports = Reports(store, domain.DEFAULT_TIMEZONE)
        reports.catch_up = lambda: None  # nothing waits: the buckets were written directly
        questions = [
            ("a month, everything", last, month_end, {}),
            ("a month, one unit", last, month_end, {"unit": "inst01.unit1"}),
            ("a month, an institution's family (5)", last, month_end,
             {"institution": {"$in": [f"inst0{i}" for i in range(5)]}}),
            ("a month, one category", last, month_end, {"category": "cat007"}),
            ("a month, a unit and a category", last, month_end,
             {"unit": "inst01.unit1", "category": "cat003"}),
            ("30 days across two months", last - timedelta(days=15),
             last + timedelta(days=14), {}),
        ]
        print(f"{'question':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  total")
        for title, first, end, match in questions:
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                answer = reports.summary(first, end, match)
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            print(f"{title:40} {statistics.median(times):8.1f} "
                  f"{times[int(len(times) * 0.95) - 1]:8.1f} {times[-1]:8.1f}  "
                  f"{answer['total']:,}")
    finally:
        client.drop_database(databases["MONGO_DB_REPORTING"])
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("ingest")
    one.add_argument("--applications", type=int, default=3000)
    one.add_argument("--processes", type=int, default=1)
    one.add_argument("--backlog", action="store_true",
                     help="publish every event before reporting starts")
    two = sub.add_parser("query")
    two.add_argument("--applications", type=int, default=10_000_000)
    two.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args(argv)
    if args.what == "ingest":
        ingest(args.applications, args.processes, args.backlog)
    else:
        query(args.applications, args.repeat)


if __name__ == "__main__":
    main()
