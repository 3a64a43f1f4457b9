"""End to end, not only intake: how fast the whole pipeline gets applications through.

`python -m benchmarks.pipeline [--applications N] [--concurrency C] [--replicas SPEC …]` runs
the system as `make run` does (supervisord, each service its own process, nginx in front) on a
FerretDB server and a RabbitMQ vhost of its own, once per replica layout (default: one process
per service, then two each of intake, routing, tracking and notify), and for each:

1. submits N applications over HTTP through nginx, C at a time, timing each 201;
2. meanwhile samples every event queue's depth (a passive declare, every 0.25 s) and which
   applications tracking shows as `assigned` (every 0.5 s);
3. waits until the last application is assigned in tracking and its "received" SMS is in the
   sink.

It prints, side by side: accepted/s over HTTP during the load, applications/s end to end (until
the last one is assigned and texted), submit → assigned latency p50/p95/p99 (to the sampling
step), each queue's peak depth and when it drained, and the CPU seconds each kind of process
used (services, FerretDB, RabbitMQ, nginx) — where the time goes. One run, so the layouts are
compared on the same machine in the same state.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymongo
import requests
from kombu import Connection

from benchmarks.faults import PrivateDatabase
from benchmarks.processes import HOST, bench_databases, cpu_seconds, private_vhost, rabbitmqctl
from services.common.topology import SUBSCRIPTIONS
from tests.support import SAMPLE_APPLICATION, LocalSystem, poll, valid_tckns

DEFAULT_LAYOUTS = ("", "intake=2,routing=2,tracking=2,notify=2")
QUEUE_EVERY = 0.25
ASSIGNED_EVERY = 0.5
END_TO_END_LIMIT = 900


class QueueWatcher(threading.Thread):
    """Samples the ready messages of every event queue; keeps each one's peak and the last
    moment it held anything."""

    def __init__(self, amqp_uri: str, started: float):
        super().__init__(daemon=True)
        self.amqp_uri = amqp_uri
        self.started = started
        self.peak: Counter = Counter()
        self.last_busy: dict[str, float] = {}
        self.running = True

    def run(self) -> None:
        names = sorted({sub.queue_name for sub in SUBSCRIPTIONS})
        with Connection(self.amqp_uri) as conn:
            channel = conn.channel()
            while self.running:
                now = time.monotonic() - self.started
                for name in names:
                    try:
                        depth = channel.queue_declare(name, passive=True).message_count
                    except Exception:  # a queue not declared yet, or the broker restarting
                        channel = conn.channel()
                        continue
                    self.peak[name] = max(self.peak[name], depth)
                    if depth:
                        self.last_busy[name] = now
                time.sleep(QUEUE_EVERY)


def process_groups(system: LocalSystem, database: PrivateDatabase) -> dict[str, list[int]]:
    """The pids of each kind of process: every service replica, FerretDB, RabbitMQ, nginx."""
    groups: dict[str, list[int]] = defaultdict(list)
    for pid in system.tree():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv)
        for name in LocalSystem.SERVICES:
            if f"services.{name}".encode() in text:
                groups[name].append(pid)
        if argv and argv[0].startswith(b"nginx"):
            groups["nginx"].append(pid)
    pid_file = Path(database.env["FERRETDB_DIR"]) / "ferretdb.pid"
    groups["ferretdb"].append(int(pid_file.read_text()))
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"beam.smp" in (proc / "cmdline").read_bytes():
                    groups["rabbitmq"].append(int(proc.name))
            except OSError:
                continue
    return groups


def cpu_of(groups: dict[str, list[int]]) -> dict[str, float]:
    used = {}
    for name, pids in groups.items():
        total = 0.0
        for pid in pids:
            try:
                total += cpu_seconds(pid)
            except OSError:
                continue
        used[name] = total
    return used


def run_layout(replicas: str, count: int, concurrency: int, offset: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="acikkapi-pipeline-"))
    database = PrivateDatabase(workdir)
    database.start()
    vhost = private_vhost()
    amqp_uri = f"amqp://guest:guest@{HOST}:5672/{vhost}"
    system = LocalSystem(amqp_uri, dict(bench_databases(), MONGO_URI=database.uri), workdir,
                         REPLICAS=replicas)
    client = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=30_000)
    try:
        system.start()
        groups = process_groups(system, database)
        cpu_before = cpu_of(groups)
        started = time.monotonic()
        watcher = QueueWatcher(amqp_uri, started)
        watcher.start()
        answered: dict[str, float] = {}  # application id → seconds when its 201 came
        codes: dict[str, str] = {}
        lock = threading.Lock()
        local = threading.local()

        def submit(tckn: str) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            body = dict(SAMPLE_APPLICATION, citizen=dict(SAMPLE_APPLICATION["citizen"],
                                                         tckn=tckn))
            answer = session.post(f"{system.base}/api/v1/applications", json=body, timeout=60)
            if answer.status_code == 201:
                created = answer.json()
                with lock:
                    answered[created["application_id"]] = time.monotonic() - started
                    codes[created["application_id"]] = created["tracking_code"]

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(submit, valid_tckns(count, offset)))
        load_seconds = time.monotonic() - started

        tracking = client[system.env["MONGO_DB_TRACKING"]]["applications"]
        seen_assigned: dict[str, float] = {}

        def assigned_all() -> bool:
            now = time.monotonic() - started
            for doc in tracking.find({"status": "assigned"}, {"_id": 1}):
                seen_assigned.setdefault(doc["_id"], now)
            return all(i in seen_assigned for i in answered)

        poll(assigned_all, bool, END_TO_END_LIMIT, every=ASSIGNED_EVERY)
        sink = workdir / "sink" / "sms.jsonl"

        def texted() -> int:
            if not sink.exists():
                return 0
            sent = {json.loads(line)["text"].split("alındı: ")[1].split(".")[0]
                    for line in sink.read_text(encoding="utf-8").splitlines()
                    if "alındı" in line}
            return sum(1 for code in codes.values() if code in sent)

        poll(texted, lambda n: n == len(codes), END_TO_END_LIMIT, every=ASSIGNED_EVERY)
        end_to_end = time.monotonic() - started
        watcher.running = False
        watcher.join()
        cpu_after = cpu_of(groups)
        latencies = sorted(seen_assigned[i] - answered[i] for i in answered
                           if i in seen_assigned)
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        return {
            "replicas": replicas or "one each",
            "accepted": len(answered),
            "accepted_per_s": len(answered) / load_seconds,
            "end_to_end_s": end_to_end,
            "end_to_end_per_s": len(answered) / end_to_end,
            "assigned_p50": cuts[49], "assigned_p95": cuts[94], "assigned_p99": cuts[98],
            "queues": {name: (watcher.peak[name], watcher.last_busy.get(name))
                       for name in sorted(watcher.peak)},
            "cpu": {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after},
            "processes": {name: len(pids) for name, pids in groups.items()},
        }
    finally:
        system.close()
        database.stop()
        client.close()
        rabbitmqctl("delete_vhost", vhost)


def report(rows: list[dict], count: int, concurrency: int) -> None:
    width = max(28, *(len(row["replicas"]) + 2 for row in rows))
    print(f"\npipeline: {count} applications per layout, {concurrency} clients, "
          f"system as `make run` runs it, FerretDB (SQLite) of its own")
    print(f"{'':38s}" + "".join(f"{row['replicas']:>{width}s}" for row in rows))

    def line(label: str, cells: list[str]) -> None:
        print(f"{label:38s}" + "".join(f"{cell:>{width}s}" for cell in cells))

    line("accepted (201)", [f"{r['accepted']:,}" for r in rows])
    line("accepted/s over HTTP", [f"{r['accepted_per_s']:,.0f}" for r in rows])
    line("end to end (s, last assigned+SMS)", [f"{r['end_to_end_s']:.1f}" for r in rows])
    line("applications/s end to end", [f"{r['end_to_end_per_s']:,.0f}" for r in rows])
    line("submit → assigned p50/p95/p99 (s)",
         [f"{r['assigned_p50']:.1f} / {r['assigned_p95']:.1f} / {r['assigned_p99']:.1f}"
          for r in rows])
    print("queue peak depth, drained at (s after the first submission)")
    for name in sorted({q for r in rows for q in r["queues"]}):
        cells = []
        for r in rows:
            peak, busy = r["queues"].get(name, (0, None))
            cells.append(f"{peak:,} / {busy:.1f}" if busy is not None else f"{peak:,} / -")
        line(f"  {name}", cells)
    print("CPU seconds used during the run (processes)")
    for name in sorted({k for r in rows for k in r["cpu"]}):
        line(f"  {name}", [f"{r['cpu'].get(name, 0):.1f} ({r['processes'].get(name, 0)})"
                           for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline")
    parser.add_argument("--applications", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--replicas", nargs="*", default=list(DEFAULT_LAYOUTS),
                        help='layouts as make run\'s REPLICAS; "" is one process per service')
    args = parser.parse_args(argv)
    rows = []
    for index, layout in enumerate(args.replicas):
        rows.append(run_layout(layout, args.applications, args.concurrency,
                               offset=7_000_000 + index * 1_000_000))
        print(json.dumps(rows[-1], default=str, ensure_ascii=False), file=sys.stderr,
              flush=True)
    report(rows, args.applications, args.concurrency)


if __name__ == "__main__":
    main()
