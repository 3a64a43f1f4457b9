"""Helpers the test modules share: publishing events, waiting for handlers, staff headers."""
from __future__ import annotations

from contextlib import contextmanager

import pymongo
from nameko.amqp.publish import Publisher
from nameko.testing.services import entrypoint_waiter
from pymongo.database import Database

from services.common import topology
from services.common.auth import mint_token
from services.common.mongo import database_name, new_client

# A valid web submission (a fictitious citizen with a well-formed TCKN), as the README's example.
SAMPLE_APPLICATION = {
    "kind": "complaint", "category": "road_damage", "channel": "web",
    "description": "Sokağımızda büyük bir çukur var.",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"},
    "citizen": {"tckn": "10000000146", "first_name": "Ayşe", "last_name": "Demir",
                "phone": "0555 111 22 33"},
}


_inspectors: dict[str, pymongo.MongoClient] = {}


def database(config: dict, service_name: str) -> Database:
    """A service's database as a test inspects it, on one test-side client per server.

    The services open their own (their composition roots own their clients); this one only
    looks at what they stored, and writes fixtures into it.
    """
    uri = config["MONGO_URI"]
    client = _inspectors.get(uri)
    if client is None:
        client = _inspectors[uri] = new_client(uri)
    return client[database_name(config, service_name)]


def publish(config: dict, envelope: dict) -> None:
    """Publish an envelope to its producer's exchange, exactly as the outbox relay does."""
    Publisher(config["AMQP_URI"]).publish(
        envelope, exchange=topology.event_exchange(envelope["producer"]),
        routing_key=envelope["type"])


def handler_of(container, event_type: str) -> str:
    """The method of `container` that handles `event_type` (a batched one handles many)."""
    return next(entrypoint.method_name for entrypoint in container.entrypoints
                if getattr(entrypoint, "event_type", None) == event_type)


def given_events(worker_ctx, event_type: str | None = None) -> list[dict]:
    """The envelopes a handler's worker was given (one, or a batch), of `event_type` if named."""
    given = worker_ctx.args[0] if worker_ctx.args else None
    given = given if isinstance(given, list) else [given]
    return [event for event in given if isinstance(event, dict)
            and (event_type is None or event.get("type") == event_type)]


def deliver(config: dict, container, envelope: dict, timeout: float = 15) -> dict:
    """Publish `envelope` and wait until `container`'s handler of it has finished (a batched
    handler: the batch holding it).

    Re-raises what the handler raised; other events handled meanwhile are not waited for.
    """
    def this_event(worker_ctx, result, exc_info) -> bool:
        return any(event.get("event_id") == envelope["event_id"]
                   for event in given_events(worker_ctx))

    with entrypoint_waiter(container, handler_of(container, envelope["type"]),
                           callback=this_event, timeout=timeout) as waited:
        publish(config, envelope)
    waited.get()
    return envelope


def bearer(config: dict, role: str = "coordinator", unit: str | None = None,
           user: str = "staff-test", institution: str | None = None) -> dict:
    """Authorization headers carrying a staff token signed with the test config's secret."""
    token = mint_token(config["STAFF_TOKEN_SECRET"], user, role, unit, institution)
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def serve(app):
    """Serve a WSGI `app` over real HTTP on a free port of this machine (a green thread of the
    test process) for the block; yields its base URL."""
    import eventlet
    from eventlet import wsgi

    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(wsgi.server, listener, app, log_output=False)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.kill()
        listener.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, below the kernel's ephemeral range."""
    return free_port_block(1)


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
def all_in_one(amqp_uri: str, databases: dict, workdir, **env: str):
    """`python -m services.all` as `make run` starts it, on a free port; yields its base URL.

    Starts on an empty bus (topology reset), the `databases` given and a sink under `workdir`.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests

    topology.reset(amqp_uri, retry_delay_ms=50)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mark = new_mark()
    environment = dict(os.environ, **databases, AMQP_URI=amqp_uri,
                       HTTP_PORT=str(port), DEV_SINK_DIR=str(Path(workdir) / "sink"),
                       EVENT_RETRY_DELAY_MS="50", LOG_LEVEL="WARNING", PUBLIC_BASE_URL=base,
                       **{MARK: mark})
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
            kill_marked(mark)


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


MARK = "ACIKKAPI_TEST_MARK"  # in the environment of every process a test's system starts


def new_mark() -> str:
    """A value for `MARK` naming one started system."""
    import uuid

    return uuid.uuid4().hex


def kill_marked(mark: str) -> list[int]:
    """SIGKILL every process whose environment carries `MARK=mark`; the pids killed.

    The environment is inherited by every process a system forks, so this finds what a tree
    walk misses: a child forked while its supervisor was being killed, reparented to init.
    """
    import contextlib
    import os
    import signal
    from pathlib import Path

    needle = f"{MARK}={mark}".encode()
    killed = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            found = needle in environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(environ.parent.name), signal.SIGKILL)
                killed.append(int(environ.parent.name))
    return killed


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (Linux /proc), zombies excluded; parents before their
    children."""
    from pathlib import Path

    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: dict[int, None] = {}  # insertion-ordered: breadth first
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            if child not in found:
                found[child] = None
                todo.append(child)
    return list(found)


def ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux, else IANA's 49152)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def free_port_block(count: int) -> int:
    """The first of `count` consecutive TCP ports free on 127.0.0.1 right now.

    Chosen below the ephemeral range: a port in it may be free when checked and then taken
    by any client socket of the suite (a driver's pooled connection lives for minutes) before
    the service binds it, which failed the local-run test with "Address already in use".
    """
    import random
    import socket

    top = min(ephemeral_floor(), 65536) - count
    for _ in range(200):
        first = random.randrange(10_000, top)
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} free ports in a row")


class LocalSystem:
    """`make run`'s process tree (supervisord, seven services, nginx) on free ports.

    `start()` waits until every service answers `/health`; `stop()` sends SIGTERM (as Ctrl-C
    or an operator would) and returns the seconds until the whole tree is gone; `kill()` sends
    SIGKILL to every process of the tree at once.
    """

    SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")

    def __init__(self, amqp_uri: str, databases: dict, workdir, **env: str):
        from pathlib import Path

        self.workdir = Path(workdir)
        self.first_port = free_port_block(len(self.SERVICES) + 1)
        self.front = self.first_port + len(self.SERVICES)
        self.base = f"http://127.0.0.1:{self.front}"
        self.mark = new_mark()
        self.env = {**databases, "AMQP_URI": amqp_uri, "LOG_LEVEL": "WARNING", MARK: self.mark,
                    "DEV_SINK_DIR": str(self.workdir / "sink"), "PUBLIC_BASE_URL": self.base,
                    "EVENT_RETRY_DELAY_MS": "50", "OUTBOX_GRACE_SECONDS": "0.5", **env}
        self.process = None
        self.starts = 0

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.first_port + self.SERVICES.index(name)}"

    def start(self, seconds: float = 60) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        import requests

        self.starts += 1
        log = (self.workdir / f"run-{self.starts}.log").open("w")
        root = str(Path(__file__).resolve().parents[1])
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run_local.py", "--listen", f"127.0.0.1:{self.front}",
             "--first-port", str(self.first_port), "--run-dir", str(self.workdir / "run")],
            cwd=root, env=dict(os.environ, **self.env), stdout=log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            for name in self.SERVICES:
                try:
                    if requests.get(f"{self.service_url(name)}/health",
                                    timeout=2).status_code != 200:
                        return False
                except requests.RequestException:
                    return False
            try:
                return requests.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        ok = poll(healthy, lambda up: up or self.process.poll() is not None, seconds, every=0.2)
        assert ok, (self.workdir / f"run-{self.starts}.log").read_text()[-3000:]

    def tree(self) -> list[int]:
        """The supervisor and every process below it, parents before their children."""
        return [self.process.pid, *descendants(self.process.pid)] if self.process else []

    def service_pids(self) -> dict[str, int]:
        """The process of each service, from the command lines below the supervisor."""
        from pathlib import Path

        found = {}
        for pid in self.tree():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for name in self.SERVICES:
                if f"services.{name}".encode() in argv:
                    found[name] = pid
        return found

    def stop(self, limit: float = 60) -> float:
        """SIGTERM the supervisor; the seconds until every process of the tree has exited."""
        import time

        pids = self.tree()
        started = time.monotonic()
        self.process.terminate()
        gone = poll(lambda: [p for p in pids if _alive(p)], lambda left: not left, limit, 0.05)
        self.process.wait(timeout=5)
        self.process = None
        assert not gone, f"still running after {limit} s: {gone}"
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the whole tree at once, as a power cut or the OOM killer would.

        Parents go first: a supervisor (or nginx's master) that saw a child die before its own
        turn would start a new one, outside the list and left running after the test.
        """
        import contextlib
        import os
        import signal

        pids = self.tree()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        poll(lambda: [p for p in pids if _alive(p)], lambda left: not left, 10, 0.05)
        self.process = None
        kill_marked(self.mark)  # and whatever escaped the tree anyway

    def close(self) -> None:
        """Kill what is still running, and anything of this system's that escaped the tree."""
        if self.process is not None:
            self.kill()
        else:
            kill_marked(self.mark)


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def valid_tckns(count: int, offset: int = 0) -> list[str]:
    """`count` distinct well-formed (fictitious) TC Kimlik numbers, so no two applications
    filed with them are duplicates of each other."""
    from stdnum.tr import tckimlik

    found = []
    stem = 200_000_000 + offset
    while len(found) < count:
        digits = str(stem)
        number = digits + tckimlik.calc_check_digits(digits)
        if tckimlik.is_valid(number):
            found.append(number)
        stem += 1
    return found


class Clock:
    """A clock a test sets (`clock.now = …`) and the code under test calls."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now
