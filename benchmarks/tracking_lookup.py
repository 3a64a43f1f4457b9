"""Benchmark: citizen lookups (`POST /api/v1/track`) per second and their latency, real process.

`python -m benchmarks.tracking_lookup [--applications N] [--seconds S] [--connections C]` starts
`python -m services.all` (its own databases on the real server, private vhost), files N
applications through intake's API, waits until tracking has them, then looks them up with their
real codes over C keep-alive connections for S seconds (at most 200,000 requests), each request
from one of 1,000 client addresses (X-Forwarded-For; the per-client and per-code limits stay on and
are counted on every request, none is exceeded). Prints lookups per second, p50/p95/p99 latency,
the statuses seen and the server's CPU use. Target on the 2-core machine: ≥ 3,000/s, p99 < 20 ms.
Only 127.0.0.1 is contacted.
"""
from __future__ import annotations

import argparse
import os

from benchmarks.processes import cpu_seconds
from benchmarks.tracking_system import (
    System,
    load,
    request_bytes,
    seed_applications,
    wait_quiet,
    wait_tracked,
)

CLIENTS = 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking_lookup")
    parser.add_argument("--applications", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args(argv)
    # Within the per-code limit (30 per 15 minutes) at the target rate.
    args.seconds = min(args.seconds, 20.0)
    with System() as system:
        print(f"system up on 127.0.0.1:{system.port}; filing {args.applications} applications…")
        created = seed_applications(system, args.applications)
        wait_tracked(system, created)
        quiet = wait_quiet(system.pid())
        print(f"tracked; the system went quiet {quiet:.0f} s later")
        requests = [
            request_bytes("/api/v1/track", {"tracking_code": c["tracking_code"],
                                            "security_code": c["security_code"]},
                          f"10.1.{n % CLIENTS // 250}.{n % 250}")
            for n, c in enumerate(created)
        ]
        load(system.port, requests[::-1], connections=args.connections,
             seconds=args.warmup, max_requests=2_000)  # warm up; a few lookups per code
        cpu_before = cpu_seconds(system.pid())
        result = load(system.port, requests, connections=args.connections,
                      seconds=args.seconds, max_requests=200_000)
        cpu = cpu_seconds(system.pid()) - cpu_before
        print(f"lookups: {len(result.latencies)} in {result.seconds:.1f} s over "
              f"{args.connections} connections, {len(created)} applications, "
              f"{CLIENTS} client addresses")
        print(f"throughput: {result.rate:,.0f} lookups/s")
        print(f"latency: p50 {result.percentile(0.50):.2f} ms, p95 {result.percentile(0.95):.2f}"
              f" ms, p99 {result.percentile(0.99):.2f} ms, max {result.percentile(1.0):.2f} ms")
        print(f"statuses: {dict(sorted(result.statuses.items()))}")
        per_lookup = cpu / max(1, len(result.latencies))
        print(f"server CPU: {cpu:.1f} s over {result.seconds:.1f} s "
              f"({100 * cpu / result.seconds:.0f}% of one core); machine load average "
              f"{os.getloadavg()[0]:.2f}")
        # The server is one eventlet process: one core is its ceiling, whatever else runs.
        print(f"server CPU per lookup: {per_lookup * 1e6:.0f} µs → capacity of one whole core "
              f"≈ {1 / per_lookup:,.0f} lookups/s")


if __name__ == "__main__":
    main()
