"""Root test configuration: eventlet first, then a real broker and fresh databases per test."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import os  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import pytest  # noqa: E402
from kombu import Connection  # noqa: E402

TEST_VHOST_URI = "amqp://guest:guest@127.0.0.1:5672/acikkapi-test"
DEFAULT_URI = "amqp://guest:guest@127.0.0.1:5672/"


def _reachable(uri: str) -> bool:
    try:
        with Connection(uri, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def amqp_uri():
    """The broker the tests use: TEST_AMQP_URI, else a private vhost for this run.

    Tests reset the topology (delete and re-declare every queue), so two runs sharing a vhost
    would pull the floor from under each other; a vhost per run keeps them apart. Without
    rabbitmqctl we fall back to the `acikkapi-test` vhost `make test` creates, then `/`.
    """
    uri = os.environ.get("TEST_AMQP_URI")
    if uri:
        yield uri
        return
    vhost = f"acikkapi-test-{uuid.uuid4().hex[:8]}"
    if _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"
    ):
        yield f"{DEFAULT_URI}{vhost}"
        _rabbitmqctl("delete_vhost", vhost)
        return
    yield TEST_VHOST_URI if _reachable(TEST_VHOST_URI) else DEFAULT_URI


@contextmanager
def _own_vhost(fallback: str):
    """A vhost of its own for a system of processes, deleted afterwards (which also closes
    the connections of any process that outlived its test); `fallback` without rabbitmqctl.

    A process left behind by a killed process tree consumes its service's queues wherever it
    is connected: in the run's shared vhost it would take later tests' events and answer their
    RPCs, with a database already dropped.
    """
    vhost = f"acikkapi-test-{uuid.uuid4().hex[:8]}"
    if os.environ.get("TEST_AMQP_URI") is None and _rabbitmqctl("add_vhost", vhost) and (
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")):
        try:
            yield f"{DEFAULT_URI}{vhost}"
        finally:
            _rabbitmqctl("delete_vhost", vhost)
        return
    yield fallback


@pytest.fixture
def own_amqp_uri(amqp_uri):
    """A vhost for this test alone (a process tree it starts)."""
    with _own_vhost(amqp_uri) as uri:
        yield uri


@pytest.fixture(scope="module")
def module_amqp_uri(amqp_uri):
    """A vhost for this module alone (one process tree serving its tests)."""
    with _own_vhost(amqp_uri) as uri:
        yield uri


SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
DEFAULT_TEST_MONGO_URI = "mongodb://127.0.0.1:27018/"  # scripts/ensure-ferretdb.sh's server


@pytest.fixture(scope="session")
def mongo_uri():
    """The database server the tests use: TEST_MONGO_URI, else the local FerretDB.

    Every test gets databases of its own on it (`databases`), named after this run, so runs
    and tests never see each other's data, as each run has its own RabbitMQ vhost.
    """
    import pymongo

    uri = os.environ.get("TEST_MONGO_URI") or DEFAULT_TEST_MONGO_URI
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        pytest.exit(f"no database server answers at {uri} ({exc}); "
                    "`make test` starts one (scripts/ensure-ferretdb.sh)", returncode=3)
    yield uri
    client.close()


_RUN = uuid.uuid4().hex[:8]
_counter = iter(range(1, 10**9))


@contextmanager
def fresh_databases(mongo_uri: str):
    """`{MONGO_URI, MONGO_DB_<SERVICE>: …}` naming new databases; dropped on leaving."""
    from services.common.config import is_local
    from services.common.mongo import new_client

    prefix = f"t{_RUN}_{next(_counter)}"
    names = {f"MONGO_DB_{service.upper()}": f"{prefix}_{service}" for service in SERVICES}
    settings = dict(names, MONGO_URI=mongo_uri)
    if not is_local(mongo_uri):  # a server off this machine: the service demands real secrets
        settings.update({key: f"test-{key.lower()}-not-a-real-secret"
                         for key in ("STAFF_TOKEN_SECRET", "CODE_PEPPER", "LINK_SECRET")})
    try:
        yield settings
    finally:
        client = new_client(mongo_uri)
        for name in names.values():
            client.drop_database(name)
        client.close()


@pytest.fixture
def databases(mongo_uri):
    """Fresh databases for this test, dropped after it."""
    with fresh_databases(mongo_uri) as settings:
        yield settings


@pytest.fixture(scope="module")
def module_databases(mongo_uri):
    """Fresh databases for a module's tests (a separate process serving them all)."""
    with fresh_databases(mongo_uri) as settings:
        yield settings


@pytest.fixture
def container_factory(databases, container_factory):
    """nameko's, set up after (so torn down before) the test's databases.

    nameko's autouse `fast_teardown` sets `container_factory` up first: its containers would be
    killed only after `databases` had closed the client, and a relay sweeping in between died of
    it mid-kill.
    """
    return container_factory


@pytest.fixture
def config(amqp_uri, databases, tmp_path):
    """A config with fresh databases and a freshly declared, empty bus topology."""
    from services.common import topology
    from services.common.config import load_config

    cfg = load_config(
        env={},
        AMQP_URI=amqp_uri,
        CHANNEL_WEBHOOK_SECRET="test-webhook-secret",  # noqa: S106 - a test value
        EVENT_RETRY_DELAY_MS="50",
        EVENT_MAX_ATTEMPTS="3",
        OUTBOX_SWEEP_SECONDS="0.5",
        OUTBOX_GRACE_SECONDS="0.2",
        DEV_SINK_DIR=str(tmp_path / "sink"),
        NOTIFY_QUIET_HOURS="off",  # tests of the quiet hours set their own clock
        # argon2 hashes cost 0.1 s each: only the console's own tests load the sample staff
        CONSOLE_SAMPLE_ACCOUNTS="false",
        **databases,
    )
    topology.reset(amqp_uri, retry_delay_ms=50)
    return cfg


class Probe:
    """A private queue bound to one event: what was published, as a consumer would see it."""

    def __init__(self, amqp_uri: str, producer: str, event_type: str):
        from kombu import Queue

        from services.common.topology import event_exchange

        self.conn = Connection(amqp_uri)
        self.queue = Queue(f"probe-{event_type}-{uuid.uuid4().hex[:8]}",
                           exchange=event_exchange(producer), routing_key=event_type,
                           queue_arguments={"x-expires": 120_000})  # gone even if we crash
        self.channel = self.conn.channel()
        self.queue.bind(self.channel).declare()

    def take(self, count: int | None = None, timeout: float = 10) -> list[dict]:
        """`count` messages (waiting up to `timeout` for each), or all waiting now if None.

        Polls with `basic.get`: a consumer would prefetch more than it returns, and what it
        holds stays unacked on the connection's channel, out of every later `take`'s reach.
        """
        import time

        got = []
        queue = self.queue.bind(self.channel)
        waited_since = time.monotonic()
        while count is None or len(got) < count:
            message = queue.get(no_ack=False)
            if message is None:
                if count is None or time.monotonic() - waited_since > timeout:
                    break
                time.sleep(0.02)
                continue
            got.append(message.payload)
            message.ack()
            waited_since = time.monotonic()
        return got

    def others(self, *seen: dict) -> list[dict]:
        """What is waiting now besides the `seen` events.

        The outbox publishes at least once: when the inline publish is slower than the
        relay's grace, the relay sends the same event again, with the same `event_id`, and
        consumers drop it. "Published once" means one distinct event, so copies are left out.
        """
        ids = {event["event_id"] for event in seen}
        return [event for event in self.take() if event["event_id"] not in ids]

    def close(self) -> None:
        self.queue.bind(self.conn.channel()).delete()
        self.conn.release()


@pytest.fixture
def probe(config):
    """`probe(producer, event_type)` binds a fresh queue to that event; removed after the test."""
    made = []

    def make(producer: str, event_type: str) -> Probe:
        made.append(Probe(config["AMQP_URI"], producer, event_type))
        return made[-1]

    yield make
    for one in made:
        one.close()
