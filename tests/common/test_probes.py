"""The liveness and readiness probes, against the real broker and store.

`/health/live` answers while the process serves; `/health/ready` only when the store answers,
the broker answers and the service's queues are declared, and names what failed otherwise.
"""
import socket

import pytest
from kombu import Connection

from services.common import topology
from services.common.web import create_app, mongo_check
from services.notify.bootstrap import build
from services.notify.web import create_app as notify_app


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released, by us)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def parts(config):
    """Notify's parts as the runner gives them to its Flask app."""
    parts = build(config)
    yield parts
    parts.close()


def test_a_ready_service_answers_both_probes_and_health(parts):
    # the `config` fixture has declared the topology on this run's vhost
    client = notify_app(parts).test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json() == {"service": "notify", "status": "ok", "failures": {}}
    assert client.get("/health/live").status_code == 200
    assert client.get("/health").status_code == 200


def test_the_broker_out_of_reach_is_not_ready_but_still_live(parts):
    config = dict(parts.config, AMQP_URI=f"amqp://guest:guest@127.0.0.1:{closed_port()}/",
                  READY_TIMEOUT_SECONDS="1")
    client = create_app("notify", config, [], title="t",
                        health_checks=[mongo_check(parts.db)]).test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "fail" and set(body["failures"]) == {"broker"}
    assert "guest" not in ready.get_data(as_text=True)  # no credentials in the answer
    assert client.get("/health/live").status_code == 200
    assert client.get("/health").status_code == 200  # /health checks the store only


def test_undeclared_queues_are_not_ready_and_are_named(parts):
    topology_queue = topology.service_queue_names("notify")[0]
    with Connection(parts.config["AMQP_URI"]) as conn:
        conn.channel().queue_delete(topology_queue)
    try:
        ready = notify_app(parts).test_client().get("/health/ready")
        assert ready.status_code == 503
        failures = ready.get_json()["failures"]
        assert set(failures) == {"queues"}
        assert topology_queue in failures["queues"]
    finally:
        topology.declare(parts.config["AMQP_URI"], 50)


def test_the_store_out_of_reach_is_not_ready(parts):
    import pymongo

    dead = pymongo.MongoClient(f"mongodb://127.0.0.1:{closed_port()}/",
                               serverSelectionTimeoutMS=300)
    try:
        client = create_app("notify", parts.config, [], title="t",
                            health_checks=[mongo_check(dead["x"])]).test_client()
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert set(ready.get_json()["failures"]) == {"mongo"}
        assert client.get("/health/live").status_code == 200
        assert client.get("/health").status_code == 503
    finally:
        dead.close()


def test_a_service_without_queues_of_its_own_is_ready_on_the_shared_ones(parts):
    # the console consumes no events: ready means the broker answers and the retry and
    # dead-letter queues it would republish to exist
    assert topology.service_queue_names("console") == []
    client = create_app("console", parts.config, [], title="t",
                        health_checks=[mongo_check(parts.db)]).test_client()
    assert client.get("/health/ready").status_code == 200
