"""Shared by the tracking benchmarks: a real `python -m services.all` and a fast HTTP load client.

`System` starts the all-in-one process on a free port of 127.0.0.1 with databases of its own on the
real server and a private RabbitMQ vhost (removed afterwards), trusting one proxy hop so a
benchmark can stand in for many clients with `X-Forwarded-For` (the limits stay on: every request
still does the counting work). `load` drives keep-alive connections with raw asyncio streams — a
Python HTTP library would spend more time per request than the server does — bounded in time and
count.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import Request, urlopen

from benchmarks.processes import (
    HOST,
    ROOT,
    bench_databases,
    cpu_seconds,
    drop_databases,
    free_port,
    private_vhost,
    rabbitmqctl,
    stop,
    store_name,
)


class System:
    """`python -m services.all` on a free local port; a context manager."""

    def __init__(self, **env: str):
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.env = env
        self.vhost: str | None = None
        self.process: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="acikkapi-bench-"))

    def __enter__(self) -> System:
        amqp = os.environ.get("AMQP_URI")
        if not amqp:
            self.vhost = private_vhost()
            amqp = f"amqp://guest:guest@{HOST}:5672/{self.vhost or 'acikkapi-test'}"
        self.databases = bench_databases()
        self.store = store_name(self.databases["MONGO_URI"])
        env = dict(os.environ, AMQP_URI=amqp, **self.databases,
                   HTTP_PORT=str(self.port), HTTP_HOST=HOST, PROXY_HOPS="1",
                   DEV_SINK_DIR=str(self.workdir / "sink"), LOG_LEVEL="WARNING",
                   PUBLIC_BASE_URL=self.base, **self.env)
        self.log = (self.workdir / "all.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "services.all"], cwd=ROOT,
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)
        until = time.monotonic() + 60
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "all.log").read_text()[-3000:])
            try:
                with urlopen(f"{self.base}/health", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the system did not become healthy within 60 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop(self.process)
        self.log.close()
        drop_databases(self.databases)
        if self.vhost:
            rabbitmqctl("delete_vhost", self.vhost)

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def post_json(self, path: str, payload: dict, headers: dict | None = None) -> tuple[int, dict]:
        request = Request(f"{self.base}{path}", data=json.dumps(payload).encode(),  # noqa: S310
                          headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read())
        except OSError as error:  # urllib's HTTPError is an OSError with a body
            body = getattr(error, "read", lambda: b"{}")()
            return getattr(error, "code", 0), json.loads(body or b"{}")


def wait_quiet(pid: int, seconds: float = 120, idle: float = 0.10) -> float:
    """Until the process uses less than `idle` of a core over a second (the events of the
    seeded applications all handled); returns how long that took."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < idle:
            break
    return time.monotonic() - began


def request_bytes(path: str, body: dict, client: str) -> bytes:
    """One HTTP/1.1 keep-alive POST with a JSON body, as the client would send it."""
    raw = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"X-Forwarded-For: {client}\r\nContent-Length: {len(raw)}\r\n\r\n").encode() + raw


@dataclass
class Result:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else 0.0


async def _worker(port: int, requests: list[bytes], start: int, step: int, until: float,
                  budget: list[int], result: Result) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    index = start
    try:
        while budget[0] > 0 and time.perf_counter() < until:
            budget[0] -= 1
            payload = requests[index % len(requests)]
            index += step
            began = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - began)
            result.statuses[int(head[9:12])] += 1
    finally:
        writer.close()


def load(port: int, requests: list[bytes], *, connections: int, seconds: float,
         max_requests: int) -> Result:
    """Send `requests` round-robin over `connections` keep-alive connections, closed loop,
    until `seconds` have passed or `max_requests` were sent."""
    result = Result()

    async def main() -> None:
        until = time.perf_counter() + seconds
        budget = [max_requests]
        began = time.perf_counter()
        await asyncio.gather(*(_worker(port, requests, n, connections, until, budget, result)
                               for n in range(connections)))
        result.seconds = time.perf_counter() - began

    asyncio.run(main())
    return result


def seed_applications(system: System, count: int) -> list[dict]:
    """File `count` anonymous web applications through intake's API; their codes."""
    districts = [("Mezitli", "Tece"), ("Yenişehir", "Limonluk"), ("Toroslar", "Akbelen")]
    categories = ["road_damage", "cleaning", "noise", "stray_animals", "park_maintenance"]
    created = []
    for n in range(count):
        district, neighbourhood = districts[n % len(districts)]
        status, body = system.post_json("/api/v1/applications", {
            "kind": "complaint", "category": categories[n % len(categories)], "channel": "web",
            "description": f"Benchmark başvurusu {n}", "anonymous": True,
            "location": {"province": "Mersin", "district": district,
                         "neighbourhood": neighbourhood},
        }, headers={"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"})
        if status != 201:
            raise RuntimeError(f"seeding failed: {status} {body}")
        created.append(body)
    return created


def wait_tracked(system: System, codes: list[dict], seconds: float = 120) -> None:
    """Until the last applications answer a lookup (tracking has folded their receipts)."""
    until = time.monotonic() + seconds
    for created in codes[-5:]:
        while True:
            status, _ = system.post_json("/api/v1/track", {
                "tracking_code": created["tracking_code"],
                "security_code": created["security_code"]},
                headers={"X-Forwarded-For": "10.255.255.254"})
            if status == 200:
                break
            if time.monotonic() > until:
                raise RuntimeError(f"not tracked in time (last answer {status})")
            time.sleep(0.2)
