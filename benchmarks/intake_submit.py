"""Applications accepted per second over HTTP by a real `python -m services.intake` process.

Starts the intake service alone (databases of its own on the real server — the local FerretDB,
or `MONGO_URI` — and a private RabbitMQ vhost, both removed afterwards) on a free port of
127.0.0.1, drives `POST /api/v1/applications` with wrk (50 connections, a Lua
script giving every request its own citizen and place, so each one is a new original
application), then waits until every accepted application's event has been confirmed by the
broker (the outbox drained). Prints throughput, p50/p95/p99 latency, server CPU per
application, resident memory and the drain. Bounded: `--seconds` of load (default 20) plus
at most 120 s of draining. On two or more CPUs the service runs on CPU 0 and wrk on CPU 1
(`--no-pin` to let the scheduler place them): the load generator must not take the measured
process's core.

    .venv/bin/python -m benchmarks.intake_submit [--seconds 20] [--connections 50] [--no-pin]

Needs `wrk` (Debian: `apt-get install -y wrk`) and RabbitMQ with `rabbitmqctl`.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

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

LUA = Path(__file__).with_name("intake_submit.lua")
DRAIN_TIMEOUT = 120


def metric(base: str, name: str, labels: dict[str, str]) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    text = urlopen(f"{base}/metrics", timeout=10).read().decode()  # noqa: S310 - our http URL
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intake_submit")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="run the service on CPU 0 and wrk on CPU 1 (taskset), so the "
                             "load generator does not take the measured process's core")
    args = parser.parse_args(argv)
    pin = args.pin and bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    service_cpu, client_cpu = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if pin else ([], [])
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    vhost = private_vhost()
    if vhost is None:
        raise SystemExit("could not create a RabbitMQ vhost (rabbitmqctl)")
    port = free_port()
    base = f"http://{HOST}:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="acikkapi-bench-intake-"))
    databases = bench_databases()
    env = dict(os.environ, AMQP_URI=f"amqp://guest:guest@{HOST}:5672/{vhost}", **databases,
               HTTP_HOST=HOST,
               HTTP_PORT=str(port), LOG_LEVEL="WARNING", DEV_SINK_DIR=str(workdir / "sink"),
               PYTHONWARNINGS="ignore")
    log_file = (workdir / "log").open("w")
    process = subprocess.Popen([*service_cpu, sys.executable, "-m", "services.intake"],  # noqa: S603
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        for _ in range(300):
            try:
                if urlopen(f"{base}/health", timeout=1).status == 200:  # noqa: S310
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"intake did not start; see {workdir / 'log'}")
        rss_before = rss_mib(process.pid)
        # warm-up (imports, first writes), not measured
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s", str(LUA), base, "--", "1"],  # noqa: S603, S607
                       check=True, capture_output=True)
        accepted_before = metric(base, "acikkapi_http_requests_total",
                                 {"route": "/api/v1/applications", "status": "201"})
        published_before = metric(base, "acikkapi_events_published_total",
                                  {"producer": "intake"})
        cpu_before = cpu_seconds(process.pid)
        started = time.perf_counter()
        command = [*client_cpu, "wrk", f"-t{args.threads}", f"-c{args.connections}",
                   f"-d{args.seconds}s", "--latency", "-s", str(LUA), base, "--", "2"]
        run = subprocess.run(command, check=True, capture_output=True,  # noqa: S603
                             text=True)
        load_seconds = time.perf_counter() - started
        rss_peak = rss_mib(process.pid)
        figures = dict(re.findall(r"WRK (\w+)=(\d+)", run.stdout) + re.findall(
            r"WRK \w+=\d+ (\w+)=(\d+)", run.stdout))
        found = re.search(r"WRK requests=(\d+) duration_us=(\d+) errors_status=(\d+) "
                          r"errors_socket=(\d+)", run.stdout)
        requests, duration_us, bad_status, socket_errors = map(int, found.groups())
        accepted = metric(base, "acikkapi_http_requests_total",
                          {"route": "/api/v1/applications", "status": "201"}) - accepted_before
        # drained: every accepted application's event confirmed by the broker
        deadline = time.perf_counter() + DRAIN_TIMEOUT
        while True:
            published = metric(base, "acikkapi_events_published_total",
                               {"producer": "intake"}) - published_before
            if published >= accepted or time.perf_counter() > deadline:
                break
            time.sleep(0.2)
        drained_after = time.perf_counter() - started - load_seconds
        cpu_per = (cpu_seconds(process.pid) - cpu_before) / max(accepted, 1)
        seconds = duration_us / 1e6
        wall = f"{seconds:.1f} s measured by wrk, {load_seconds:.1f} s wall"
        print(f"intake submit benchmark: {args.connections} connections, {args.threads} wrk "
              f"threads, {args.seconds} s, one `python -m services.intake` process, "
              f"store {store_name(databases['MONGO_URI'])}, {os.cpu_count()} cores"
              f"{' (service on CPU 0, wrk on CPU 1)' if pin else ''}")
        print(f"  requests           {requests}  (non-2xx {bad_status}, socket errors "
              f"{socket_errors})")
        print(f"  accepted (201)     {int(accepted)}  = {accepted / seconds:,.0f} per second "
              f"({wall})")
        print(f"  latency            p50 {int(figures['p50_us']) / 1000:.1f} ms   "
              f"p95 {int(figures['p95_us']) / 1000:.1f} ms   "
              f"p99 {int(figures['p99_us']) / 1000:.1f} ms")
        print(f"  events confirmed   {int(published)} of {int(accepted)}"
              f"{' (outbox drained)' if published >= accepted else ' (NOT drained)'}; "
              f"last one {max(drained_after, 0):.1f} s after the load stopped")
        end_to_end = accepted / (load_seconds + max(drained_after, 0))
        print(f"  end to end         {end_to_end:,.0f} per second accepted AND confirmed "
              f"(accepted ÷ time until the last event was confirmed)")
        print(f"  server CPU         {cpu_per * 1e6:,.0f} µs per accepted application, "
              f"relay included (one whole core ≈ {1 / cpu_per:,.0f} per second)")
        print(f"  resident memory    {rss_before:.0f} MiB at start, {rss_peak:.0f} MiB after "
              f"the load")
    finally:
        stop(process)
        drop_databases(databases)
        rabbitmqctl("delete_vhost", vhost)
        log_file.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
