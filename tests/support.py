"""Helpers the test modules share: publishing events, waiting for handlers, staff headers."""
from __future__ import annotations

from contextlib import contextmanager

from nameko.amqp.publish import Publisher
from nameko.testing.services import entrypoint_waiter

from services.common import topology
from services.common.auth import mint_token

# A valid web submission (a fictitious citizen with a well-formed TCKN), as the README's example.
SAMPLE_APPLICATION = {
    "kind": "complaint", "category": "road_damage", "channel": "web",
    "description": "Sokağımızda büyük bir çukur var.",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"},
    "citizen": {"tckn": "10000000146", "first_name": "Ayşe", "last_name": "Demir",
                "phone": "0555 111 22 33"},
}


def publish(config: dict, envelope: dict) -> None:
    """Publish an envelope to its producer's exchange, exactly as the outbox relay does."""
    Publisher(config["AMQP_URI"]).publish(
        envelope, exchange=topology.event_exchange(envelope["producer"]),
        routing_key=envelope["type"])


def deliver(config: dict, container, envelope: dict, timeout: float = 15) -> dict:
    """Publish `envelope` and wait until `container`'s handler of it has finished.

    Re-raises what the handler raised; other events handled meanwhile are not waited for.
    """

    def this_event(worker_ctx, result, exc_info) -> bool:
        return worker_ctx.args[0]["event_id"] == envelope["event_id"]

    with entrypoint_waiter(container, f"handle_{envelope['type']}", callback=this_event,
                           timeout=timeout) as waited:
        publish(config, envelope)
    waited.get()
    return envelope


def bearer(config: dict, role: str = "coordinator", unit: str | None = None,
           user: str = "staff-test") -> dict:
    """Authorization headers carrying a staff token signed with the test config's secret."""
    token = mint_token(config["STAFF_TOKEN_SECRET"], user, role, unit)
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(fetch, done, seconds: float, every: float = 0.05):
    """Call `fetch` until `done(result)` or `seconds` pass; returns the last result.

    Only for a separate process (the all-in-one run, a browser): no entrypoint waiter reaches
    into those.
    """
    import time

    until = time.monotonic() + seconds
    while True:
        result = fetch()
        if done(result) or time.monotonic() > until:
            return result
        time.sleep(every)


@contextmanager
def all_in_one(amqp_uri: str, workdir, **env: str):
    """`python -m services.all` as `make run` starts it, on a free port; yields its base URL.

    Starts on an empty bus (topology reset), a fresh embedded store and a sink under `workdir`.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests

    topology.reset(amqp_uri, retry_delay_ms=50)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = dict(os.environ, AMQP_URI=amqp_uri, MONGO_URI=f"mongomock://{port}",
                       HTTP_PORT=str(port), DEV_SINK_DIR=str(Path(workdir) / "sink"),
                       EVENT_RETRY_DELAY_MS="50", LOG_LEVEL="WARNING", PUBLIC_BASE_URL=base)
    environment.update(env)
    log_path = Path(workdir) / "all.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.all"], env=environment,
                                   cwd=Path(__file__).resolve().parents[1],
                                   stdout=log, stderr=subprocess.STDOUT)

        def health():
            try:
                return requests.get(f"{base}/health", timeout=2).status_code
            except requests.ConnectionError:
                return None

        try:
            started = poll(health, lambda code: code == 200 or process.poll() is not None, 40)
            assert started == 200, log_path.read_text()[-3000:]
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


# A category an admin adds through routing's API (not in the sample catalogue file).
GRAFFITI = {"code": "graffiti", "name_tr": "Duvar yazısı", "name_en": "Graffiti",
            "kinds": ["complaint"], "tier": "district", "institution": None,
            "read_hours": 24.0, "resolve_hours": 96.0, "priority": "low", "reopen_days": 10,
            "first_contact": False, "muhtar": False}


def category_saved(definition: dict, *, removed: bool = False, at=None) -> dict:
    """The `category_saved` envelope routing publishes for `definition`."""
    from services.common.events import make_event

    return make_event("category_saved", f"category:{definition['code']}",
                      dict(definition, removed=removed), occurred_at=at)
