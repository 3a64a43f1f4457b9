"""Two sla processes on one store: 10,000 deadlines falling due together fire 10,000 times,
none twice, and a kill -9 of one process in the middle loses none.

Each process is `python -m services.sla`, as `make run` starts it, on the test's database and
RabbitMQ vhost. The clocks are seeded in bulk (`benchmarks.sla_sweep.seed_clocks`: real clocks
and the buckets `schedule` writes), due a minute ago, and the sweep cursor is put before them.
Every clock's read deadline breaches once: `sla_breached` is counted on a queue of its own. The
relay may publish an event twice after a kill (at least once on the bus); a second *firing*
would carry another event id, so the count is of distinct event ids per case.
"""
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta

from benchmarks.processes import ROOT
from benchmarks.sla_sweep import seed_clocks
from services.common.events import utcnow
from services.sla.store import SlaStore, minute_key
from tests.support import database, free_port

DUE = int(os.environ.get("SLA_TEST_DUE", "10000"))


def start_sla(config: dict, log_path) -> subprocess.Popen:
    env = {**os.environ, **{k: str(v) for k, v in config.items()},
           "HTTP_PORT": str(free_port()), "SLA_CLAIM_LEASE_SECONDS": "5", "LOG_LEVEL": "WARNING",
           # the survivor publishes what the killed process stored but never sent
           "OUTBOX_BACKSTOP_SECONDS": "10"}
    return subprocess.Popen(
        [sys.executable, "-m", "services.sla"], cwd=ROOT, env=env,
        stdout=log_path.open("w"), stderr=subprocess.STDOUT)


def test_two_sla_processes_fire_ten_thousand_deadlines_once_through_a_kill(
    config, probe, tmp_path
):
    db = database(config, "sla")
    store = SlaStore(db)
    due = utcnow() - timedelta(minutes=2)
    ids = seed_clocks(db, DUE, first_due=due, spread_minutes=1, prefix="c")
    store.reset_cursor(minute_key(due - timedelta(minutes=1)))
    breached = probe("sla", "sla_breached")

    first = start_sla(config, tmp_path / "sla-1.log")
    second = start_sla(config, tmp_path / "sla-2.log")
    seen: dict[str, set[str]] = defaultdict(set)
    killed = False
    deadline = time.monotonic() + 240
    try:
        while len(seen) < DUE and time.monotonic() < deadline:
            for event in breached.take(None, timeout=1) or breached.take(1, timeout=2):
                seen[event["application_id"]].add(event["event_id"])
            if not killed and len(seen) >= DUE // 4:
                first.send_signal(signal.SIGKILL)  # mid-sweep, claims and all
                killed = True
        # anything fired twice would still be on its way: give it time to arrive
        for event in breached.take(None, timeout=3):
            seen[event["application_id"]].add(event["event_id"])
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    # never left running: it would take later tests' events on this vhost
                    process.kill()
                    process.wait(timeout=10)
    assert killed
    assert len(seen) == DUE, (f"{DUE - len(seen)} deadlines never fired; "
                              + (tmp_path / "sla-2.log").read_text()[-2000:])
    assert set(seen) == set(ids)
    twice = {app: events for app, events in seen.items() if len(events) > 1}
    assert not twice, f"{len(twice)} fired twice"
    sample = ids[::97]
    assert {db["clocks"].find_one({"_id": app})["level"] for app in sample} == {1}
