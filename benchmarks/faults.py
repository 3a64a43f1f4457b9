"""The fault suite: nothing accepted is lost and nothing is sent twice, whatever breaks.

`python -m benchmarks.faults [--applications N] [--concurrency C] [--only NAME …]` runs the whole
system as `make run` does — supervisord, seven service processes, nginx — on a FerretDB server and
a RabbitMQ vhost of its own (both removed afterwards), and for each fault in turn:

1. submits N applications (default 5,000) over HTTP through nginx, C at a time;
2. a third of the way in, injects the fault: SIGTERM to every service in turn, as a rolling
   upgrade does, or `kill -9` of one service (the supervisor restarts it), a RabbitMQ restart,
   the database stopped for 10 s then started, every event of the run delivered a second
   time, or a poison message;
3. waits until the system is quiet, then checks every application answered 201: it is in
   tracking's read model with status `assigned`, there is exactly one "received" SMS for it in
   the sink, and reporting counts it once; that no document of any service still holds an
   outbox entry; and lists the dead-letter queue.

It prints one row per fault: accepted, lost, doubled SMS, whether reporting's count matches, and
what the dead-letter queue holds. A fault that makes a submission fail (a 5xx or a refused
connection while intake restarts) is not a loss: the citizen was not told "accepted".
Everything runs on 127.0.0.1; every wait is bounded.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymongo
import requests

from benchmarks.processes import (
    HOST,
    ROOT,
    bench_databases,
    free_port,
    private_vhost,
    rabbitmqctl,
)
from services.common.outbox import OUTBOX
from tests.support import SAMPLE_APPLICATION, LocalSystem, poll, valid_tckns

FAULTS = ("none", "term-each", "kill-intake", "kill-routing", "kill-sla", "kill-notify",
          "kill-tracking", "kill-reporting", "restart-rabbitmq", "stop-database", "duplicates",
          "poison")
QUIET_SECONDS = 600
RETRIES = 8  # a client's attempts per application (backing off up to ~12 s)


class PrivateDatabase:
    """A FerretDB server of the run's own (scripts/ensure-ferretdb.sh with its own port and
    directory), so stopping it touches nothing else."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.env = dict(os.environ, FERRETDB_ADDR=f"{HOST}:{self.port}",
                        FERRETDB_DIR=str(workdir / "ferretdb"))
        self.uri = f"mongodb://{HOST}:{self.port}/"

    def start(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "ensure-ferretdb.sh")], env=self.env,  # noqa: S603
                       check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "ensure-ferretdb.sh"), "stop"],  # noqa: S603
                       env=self.env, check=True, capture_output=True)


def submit_all(system: LocalSystem, numbers: list[str], concurrency: int,
               at_third: threading.Event) -> tuple[list[dict], Counter]:
    """Submit one application per TCKN; the 201 answers, and a count of everything else."""
    accepted: list[dict] = []
    refused: Counter = Counter()
    lock = threading.Lock()
    session = requests.Session()
    third = len(numbers) // 3

    def one(index_tckn: tuple[int, str]) -> None:
        index, tckn = index_tckn
        if index == third:
            at_third.set()
        body = dict(SAMPLE_APPLICATION, citizen=dict(SAMPLE_APPLICATION["citizen"], tckn=tckn))
        # As a careful client would: retry what was not answered, with the same key, so a
        # retry of a request that was in fact accepted is answered, not filed twice.
        headers = {"Idempotency-Key": f"fault-{uuid.uuid4().hex}"}
        for attempt in range(RETRIES):
            try:
                answer = session.post(f"{system.base}/api/v1/applications", json=body,
                                      headers=headers, timeout=30)
            except requests.RequestException as exc:
                outcome: object = type(exc).__name__
            else:
                if answer.status_code == 201:
                    with lock:
                        accepted.append(answer.json())
                    return
                outcome = answer.status_code
                if answer.status_code < 500:
                    break  # refused for what it is: a retry would be refused again
            with lock:
                refused[f"{outcome} (retried)" if attempt < RETRIES - 1 else outcome] += 1
            time.sleep(min(2.0, 0.1 * 2 ** attempt))

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, enumerate(numbers)))
    return accepted, refused


def inject(fault: str, system: LocalSystem, database: PrivateDatabase, amqp_uri: str) -> str:
    """Break one thing; returns what was done, for the table."""
    if fault == "none":
        return "nothing broken"
    if fault == "term-each":
        # As a rolling upgrade does: every service in turn is asked to stop (it finishes what
        # it holds and flushes its outbox) and its supervisor starts it again.
        for name in system.SERVICES:
            old = system.service_pids()[name]
            os.kill(old, signal.SIGTERM)
            poll(lambda name=name: system.service_pids().get(name),
                 lambda pid, old=old: pid not in (None, old), 60, every=0.1)
        return f"SIGTERM to each of the {len(system.SERVICES)} services in turn"
    if fault.startswith("kill-"):
        name = fault.removeprefix("kill-")
        pids = system.service_pids()
        os.kill(pids[name], 9)
        return f"kill -9 {name} (pid {pids[name]})"
    if fault == "restart-rabbitmq":
        rabbitmqctl("stop_app")
        time.sleep(3)
        rabbitmqctl("start_app")
        return "rabbitmqctl stop_app, 3 s, start_app"
    if fault == "stop-database":
        database.stop()
        time.sleep(10)
        database.start()
        return "database stopped 10 s"
    if fault == "poison":
        from kombu import Connection, Exchange, Producer

        with Connection(amqp_uri) as conn:
            Producer(conn.channel()).publish(
                {"type": "application_received", "not": "an envelope"},
                exchange=Exchange("intake.events", type="topic"),
                routing_key="application_received", serializer="json")
        return "a malformed application_received published"
    raise ValueError(fault)


class Capture:
    """A queue bound to every producer's exchange: a copy of every event of the run."""

    PRODUCERS = ("intake", "routing", "sla", "notify", "tracking")

    def __init__(self, amqp_uri: str):
        from kombu import Connection, Exchange, Queue

        self.conn = Connection(amqp_uri)
        self.queue = Queue("fault-capture", durable=False, auto_delete=False)
        channel = self.conn.channel()
        self.queue.bind(channel).declare()
        for producer in self.PRODUCERS:
            exchange = Exchange(f"{producer}.events", type="topic", durable=True)
            exchange.bind(channel).declare()
            self.queue.bind(channel).bind_to(exchange=exchange, routing_key="#")

    def republish_all(self) -> int:
        """Publish every captured event once more, exactly as it was; returns how many."""
        from kombu import Exchange, Producer

        channel = self.conn.channel()
        captured = []
        while (message := channel.basic_get("fault-capture", no_ack=True)) is not None:
            captured.append(json.loads(message.body))
        self.queue.bind(channel).delete()  # or it would capture what is published again
        producer = Producer(channel)
        for envelope in captured:
            producer.publish(envelope, exchange=Exchange(f"{envelope['producer']}.events",
                                                         type="topic", durable=True),
                             routing_key=envelope["type"], serializer="json",
                             delivery_mode=2)
        return len(captured)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # gone already after a republish
            self.queue.bind(self.conn.channel()).delete()
        self.conn.release()


def queued(vhost: str) -> int:
    """Messages waiting or unacknowledged in the vhost's queues (the dead letters aside)."""
    done = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name",  # noqa: S603, S607
                           "messages"], capture_output=True, text=True, timeout=60, check=False)
    total = 0
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and "dead-letter" not in parts[0] \
                and parts[0] != "fault-capture":
            total += int(parts[1])
    return total


def check(system: LocalSystem, accepted: list[dict], client: pymongo.MongoClient,
          vhost: str) -> dict:
    """Wait until quiet, then count what was lost and what was sent twice."""
    poll(lambda: queued(vhost), lambda n: n == 0, QUIET_SECONDS, every=1.0)
    tracking = client[system.env["MONGO_DB_TRACKING"]]["applications"]
    ids = [one["application_id"] for one in accepted]

    def assigned() -> int:
        return sum(1 for doc in tracking.find({"status": "assigned"}, {"_id": 1})
                   if doc["_id"] in set(ids))

    poll(assigned, lambda n: n == len(ids), QUIET_SECONDS, every=1.0)
    tracked = {doc["_id"]: doc.get("status") for doc in tracking.find({}, {"status": 1})}
    lost = [i for i in ids if tracked.get(i) != "assigned"]
    sink = system.workdir / "sink" / "sms.jsonl"

    def received_texts() -> Counter:
        counts: Counter = Counter()
        if sink.exists():
            for line in sink.read_text(encoding="utf-8").splitlines():
                text = json.loads(line)["text"]
                if "alındı" in text:
                    counts[text.split("alındı: ")[1].split(".")[0]] += 1
        return counts

    codes = [one["tracking_code"] for one in accepted]
    sms = poll(received_texts, lambda c: all(c[code] >= 1 for code in codes), 120, every=1.0)
    doubled = sum(1 for code in codes if sms[code] > 1)
    no_sms = sum(1 for code in codes if sms[code] == 0)
    facts = client[system.env["MONGO_DB_REPORTING"]]["applications"]
    counted = poll(lambda: facts.count_documents({"_id": {"$in": ids}}),
                   lambda n: n == len(ids), 120, every=1.0)
    return {"lost": len(lost), "no_sms": no_sms, "doubled": doubled,
            "counts_match": counted == len(ids),
            # a relay clears an entry just after the broker confirms it: give it a moment
            "outbox_left": poll(lambda: outbox_left(system, client), lambda n: n == 0, 30,
                                every=0.5)}


def outbox_left(system: LocalSystem, client: pymongo.MongoClient) -> int:
    """Documents of any service still holding events to publish, once everything is quiet
    (a scan of every collection: fine for a benchmark's databases)."""
    left = 0
    for name in system.SERVICES:
        if f"MONGO_DB_{name.upper()}" not in system.env:
            continue
        db = client[system.env[f"MONGO_DB_{name.upper()}"]]
        for collection in db.list_collection_names():
            left += db[collection].count_documents({f"{OUTBOX}.0": {"$exists": True}})
    return left


def run_one(fault: str, count: int, concurrency: int, offset: int,
            replicas: str = "") -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"acikkapi-fault-{fault}-"))
    database = PrivateDatabase(workdir)
    database.start()
    vhost = private_vhost()
    amqp_uri = f"amqp://guest:guest@{HOST}:5672/{vhost}"
    settings = dict(bench_databases(), MONGO_URI=database.uri)
    system = LocalSystem(amqp_uri, settings, workdir, REPLICAS=replicas)
    client = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=30_000)
    row = {"fault": fault, "replicas": replicas or "one each"}
    capture = None
    try:
        system.start()
        if fault == "duplicates":
            capture = Capture(amqp_uri)
        at_third = threading.Event()
        injected: list[str] = []

        def injector() -> None:
            if at_third.wait(timeout=QUIET_SECONDS) and fault != "duplicates":
                injected.append(inject(fault, system, database, amqp_uri))

        thread = threading.Thread(target=injector)
        thread.start()
        started = time.monotonic()
        accepted, refused = submit_all(system, valid_tckns(count, offset), concurrency, at_third)
        thread.join()
        row["load_seconds"] = round(time.monotonic() - started, 1)
        if capture is not None:  # after the first deliveries: every event a second time
            check(system, accepted, client, vhost)
            injected.append(f"{capture.republish_all()} events published a second time")
        row.update(done=injected[0] if injected else "-", accepted=len(accepted),
                   refused=dict(refused))
        row.update(check(system, accepted, client, vhost))
        # until the last application is assigned in tracking and its SMS is in the sink
        row["end_to_end_seconds"] = round(time.monotonic() - started, 1)
        from services.common.dlq import list_dead_letters

        row["dead_letters"] = Counter(f"{d.origin_queue}:{d.event_type}:{d.error}"
                                      for d in list_dead_letters(amqp_uri))
    finally:
        if capture is not None:
            capture.close()
        system.close()
        database.stop()
        client.close()
        rabbitmqctl("delete_vhost", vhost)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults")
    parser.add_argument("--applications", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--only", nargs="*", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("--replicas", default="",
                        help="e.g. intake=2,routing=2,tracking=2,notify=2 (make run's REPLICAS)")
    parser.add_argument("--scale", type=int, default=0, metavar="N",
                        help="run each fault twice, side by side: one process per service, "
                             "then N processes of every service")
    args = parser.parse_args(argv)
    layouts = [args.replicas]
    if args.scale:
        layouts = ["", ",".join(f"{name}={args.scale}" for name in LocalSystem.SERVICES)]
    rows = []
    for index, fault in enumerate(args.only):
        for layout_index, replicas in enumerate(layouts):
            row = run_one(fault, args.applications, args.concurrency,
                          offset=(index * len(layouts) + layout_index) * 1_000_000,
                          replicas=replicas)
            rows.append(row)
            print(json.dumps(row, default=dict, ensure_ascii=False), file=sys.stderr,
                  flush=True)
    print(f"\nfault suite: {args.applications} applications per fault, "
          f"{args.concurrency} at a time, system as `make run` runs it")
    print(f"{'fault':18s} {'replicas':24s} {'accepted':>8s} {'lost':>5s} {'no SMS':>6s} "
          f"{'doubled':>7s} {'counts':>6s} {'outbox':>6s} {'accepted/s':>10s} "
          f"{'end-to-end/s':>12s}  dead letters / refused")
    for row in rows:
        print(f"{row['fault']:18s} {row['replicas'][:24]:24s} {row['accepted']:8d} "
              f"{row['lost']:5d} {row['no_sms']:6d} {row['doubled']:7d} "
              f"{'yes' if row['counts_match'] else 'NO':>6s} "
              f"{row['outbox_left']:6d} "
              f"{row['accepted'] / row['load_seconds']:10.0f} "
              f"{row['accepted'] / row['end_to_end_seconds']:12.0f}  "
              f"{dict(row['dead_letters']) or '-'} / {row['refused'] or '-'}")


if __name__ == "__main__":
    main()
