"""Benchmark: 10,000 random code guesses against a real process, and the timing of "no".

`python -m benchmarks.tracking_guesses` starts `python -m services.all` (its own databases on
the real server, private vhost), files a few applications, then

1. sends 10,000 guesses — random tracking codes from many clients, random security codes for one
   real tracking code, and everything from one client — and prints the statuses (no 200 and no
   5xx expected; 429 once the limits bite);
2. times "unknown tracking code" against "known code, wrong security code", interleaved on one
   keep-alive connection, each guess from a fresh client address (so no limit is reached), and
   prints both latency distributions: they should be alike.

Bounded (20,000 requests in all), only 127.0.0.1 is contacted.
"""
from __future__ import annotations

import http.client
import json
import random
import statistics
import time
from collections import Counter

from benchmarks.tracking_system import (
    System,
    load,
    request_bytes,
    seed_applications,
    wait_quiet,
    wait_tracked,
)
from services.common.codes import new_security_code, new_tracking_code

TRACK = "/api/v1/track"


def guess(code: str, client: str) -> bytes:
    return request_bytes(TRACK, {"tracking_code": code, "security_code": new_security_code()},
                         client)


def main() -> None:
    with System() as system:
        created = seed_applications(system, 300)
        wait_tracked(system, created)
        wait_quiet(system.pid())
        known = created[0]["tracking_code"]
        rng = random.Random(7)
        guesses = ([guess(new_tracking_code(), f"10.3.{n // 250}.{n % 250}") for n in range(4000)]
                   + [guess(known, f"10.4.{n // 250}.{n % 250}") for n in range(3000)]
                   + [guess(new_tracking_code(), "198.51.100.66") for _ in range(3000)])
        rng.shuffle(guesses)
        result = load(system.port, guesses, connections=8, seconds=120, max_requests=10_000)
        print(f"10,000 guesses in {result.seconds:.1f} s: statuses "
              f"{dict(sorted(result.statuses.items()))}; hits (200): {result.statuses[200]}; "
              f"5xx: {sum(n for s, n in result.statuses.items() if s >= 500)}")

        # Timing: one request at a time over one keep-alive connection, alternating.
        connection = http.client.HTTPConnection("127.0.0.1", system.port, timeout=10)
        timings: dict[str, list[float]] = {"unknown tracking code": [],
                                           "wrong security code": []}
        statuses: dict[str, Counter] = {name: Counter() for name in timings}
        known_codes = [c["tracking_code"] for c in created[1:]]
        for n in range(2000):
            name = "unknown tracking code" if n % 2 else "wrong security code"
            code = new_tracking_code() if n % 2 else known_codes[n // 2 % len(known_codes)]
            body = json.dumps({"tracking_code": code, "security_code": new_security_code()})
            headers = {"Content-Type": "application/json",
                       "X-Forwarded-For": f"10.5.{n // 250}.{n % 250}"}
            began = time.perf_counter()
            connection.request("POST", TRACK, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read()
            timings[name].append(time.perf_counter() - began)
            statuses[name][answer.status] += 1
        connection.close()
        for name, values in timings.items():
            values.sort()
            print(f"{name}: {dict(statuses[name])}; median "
                  f"{statistics.median(values) * 1000:.3f} ms, p90 "
                  f"{values[int(len(values) * 0.9)] * 1000:.3f} ms")


if __name__ == "__main__":
    main()
