"""Root test configuration: eventlet first, then a real broker and a fresh store per test."""
import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import os  # noqa: E402
import uuid  # noqa: E402

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


@pytest.fixture(scope="session")
def amqp_uri() -> str:
    """The broker the tests use: TEST_AMQP_URI, else the `acikkapi-test` vhost, else `/`."""
    uri = os.environ.get("TEST_AMQP_URI")
    if uri:
        return uri
    # `make test` creates the test vhost so tests never touch a running local system's queues.
    return TEST_VHOST_URI if _reachable(TEST_VHOST_URI) else DEFAULT_URI


@pytest.fixture
def config(amqp_uri, tmp_path):
    """A config with a fresh embedded store and a freshly declared, empty bus topology."""
    from services.common import topology
    from services.common.config import load_config
    from services.common.mongo import forget_clients

    mongo_uri = os.environ.get("TEST_MONGO_URI") or f"mongomock://{uuid.uuid4().hex}"
    cfg = load_config(
        env={},
        AMQP_URI=amqp_uri,
        MONGO_URI=mongo_uri,
        EVENT_RETRY_DELAY_MS="50",
        EVENT_MAX_ATTEMPTS="3",
        OUTBOX_SWEEP_SECONDS="0.5",
        OUTBOX_GRACE_SECONDS="0.2",
        DEV_SINK_DIR=str(tmp_path / "sink"),
    )
    if not mongo_uri.startswith("mongomock://"):
        # A real server: fresh databases per test, one per service as in production.
        run = uuid.uuid4().hex[:8]
        for service in ("intake", "routing", "sla", "notify", "tracking", "reporting"):
            cfg[f"MONGO_DB_{service.upper()}"] = f"acikkapi_test_{run}_{service}"
    topology.reset(amqp_uri, retry_delay_ms=50)
    yield cfg
    forget_clients()
