"""How many database commands an application costs, end to end, and which.

`python -m benchmarks.store_commands [--applications N]` runs all six services in this process
(nameko containers on a private RabbitMQ vhost, databases of their own on the real server),
submits N applications through intake's HTTP app, waits until no service has sent a command for
3 s, and prints the commands per application by (command, collection, filter keys). Every
filter should be exactly `{_id: …}` (FerretDB 1.x uses no
other index): a row with other keys is a scan.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import pymongo.monitoring as monitoring  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from benchmarks.processes import (  # noqa: E402
    HOST,
    bench_databases,
    drop_databases,
    private_vhost,
    rabbitmqctl,
)
from services.common import topology  # noqa: E402
from services.common.bootstrap import parts_of  # noqa: E402
from services.common.config import load_config  # noqa: E402
from services.common.runner import SERVICES, service_class  # noqa: E402
from services.intake.web import create_app  # noqa: E402
from tests.support import SAMPLE_APPLICATION, valid_tckns  # noqa: E402

QUIET_SECONDS = 3.0


def _shape(command: dict, name: str) -> tuple[str, str, tuple[str, ...]]:
    collection = command.get(name)
    found = command.get("filter")
    if name in ("update", "delete"):
        found = (command.get("updates") or command.get("deletes") or [{}])[0].get("q")
    keys = tuple(sorted(found)) if isinstance(found, dict) else ()
    return name, collection if isinstance(collection, str) else "", keys


class Counting(monitoring.CommandListener):
    """Counts each command by shape, and when the last one started."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.last = time.monotonic()

    def started(self, event) -> None:
        self.counts[_shape(event.command, event.command_name)] += 1
        self.last = time.monotonic()

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_commands")
    parser.add_argument("--applications", type=int, default=200)
    args = parser.parse_args(argv)
    listener = Counting()
    monitoring.register(listener)  # before any client exists: every service's is counted
    vhost = private_vhost()
    amqp_uri = f"amqp://guest:guest@{HOST}:5672/{vhost}"
    databases = bench_databases()
    config = load_config(env={}, AMQP_URI=amqp_uri, **databases)
    topology.declare(amqp_uri, 1000)
    runner = ServiceRunner(config)
    for name in SERVICES:
        runner.add_service(service_class(name))
    runner.start()
    try:
        client = create_app(parts_of(runner.service_map["intake"])).test_client()
        listener.counts.clear()
        for tckn in valid_tckns(args.applications, 5_000_000):
            body = dict(SAMPLE_APPLICATION, citizen=dict(SAMPLE_APPLICATION["citizen"],
                                                         tckn=tckn))
            answer = client.post("/api/v1/applications", json=body)
            assert answer.status_code == 201, answer.get_json()
        while time.monotonic() - listener.last < QUIET_SECONDS:
            eventlet.sleep(0.5)
        n = args.applications
        total = sum(listener.counts.values())
        print(f"\n{n} applications, all six services, until quiet: "
              f"{total / n:.1f} database commands per application")
        print(f"{'per application':>16s}  command, collection, filter keys")
        for shape, count in sorted(listener.counts.items(), key=lambda kv: -kv[1]):
            print(f"{count / n:16.2f}  {shape}")
    finally:
        runner.stop()
        rabbitmqctl("delete_vhost", vhost)
        drop_databases(databases)


if __name__ == "__main__":
    main()
