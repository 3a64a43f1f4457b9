"""Acceptance: 10,000 random code guesses — no hit, rate limiting observed, no 5xx.

The guesses go through tracking's HTTP app (the lookup's fast path) with the limits as
configured for production, from three kinds of guesser: many clients trying random tracking
codes, many clients attacking the security code of one real application, and one client trying
everything. Every answer must be the same "not found" or the same "too many attempts".
"""
from __future__ import annotations

import io
import json
import random
import secrets
from collections import Counter

from services.common.codes import ALPHABET, new_security_code, new_tracking_code

TRACK = "/api/v1/track"


def post(app, payload: dict, address: str) -> tuple[int, bytes]:
    """One request through the app's WSGI interface, as the server hands it over (a test
    client builds the same environ, only slower: 10,000 of them add seconds)."""
    raw = json.dumps(payload).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": TRACK, "SCRIPT_NAME": "",
               "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": address,
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
               "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http",
               "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
               "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0)}
    started: list[str] = []
    body = b"".join(app(environ, lambda status, headers: started.append(status)))
    return int(started[0].split()[0]), body


def test_ten_thousand_random_guesses_find_nothing_and_are_rate_limited(
    make_app, concluded_application
):
    app = make_app()  # its limiter counts at one instant: all the guesses in one window
    _, known_code = concluded_application()
    rng = random.Random(5)  # which client sends which guess; the guesses come from the CSPRNG
    guesses = (
        [(f"10.1.{n // 250}.{n % 250}", new_tracking_code()) for n in range(4000)]
        + [(f"10.2.{n // 250}.{n % 250}", known_code) for n in range(3000)]
        + [("198.51.100.66", new_tracking_code()) for _ in range(3000)]
    )
    rng.shuffle(guesses)
    statuses: Counter = Counter()
    bodies: dict[int, set[bytes]] = {}
    for address, code in guesses:
        security = new_security_code() if secrets.randbelow(2) else "".join(
            secrets.choice(ALPHABET) for _ in range(6))
        status, body = post(app, {"tracking_code": code, "security_code": security}, address)
        statuses[status] += 1
        bodies.setdefault(status, set()).add(body)
    print(f"10,000 guesses: {dict(statuses)}")
    assert sum(statuses.values()) == 10_000
    assert statuses[200] == 0  # no hit
    assert not [status for status in statuses if status >= 500]  # no 5xx
    assert set(statuses) == {404, 429}
    assert statuses[429] > 3000  # the lone client and the attack on one code were stopped
    # Unknown code, wrong security code: one answer; limited client, locked code: one answer.
    assert len(bodies[404]) == 1 and len(bodies[429]) == 1
