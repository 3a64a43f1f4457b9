"""`AMQP_QUEUE_TYPE=quorum` on the real broker, on a vhost of its own.

The topology declares quorum queues that take, deliver and dead-letter messages at-least-once;
a service's event handlers declare their queues with the same arguments, so the service starts
on them (RabbitMQ refuses a re-declaration whose arguments differ).
"""
import subprocess
import uuid

import eventlet
import pytest
from kombu import Connection, Exchange, Producer, Queue

from services.common import dlq, topology
from services.common.config import load_config
from services.common.runner import service_class
from tests.support import poll

RETRY_DELAY_MS = 50


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def quorum_uri():
    """A vhost of its own with the topology declared as quorum queues; deleted afterwards."""
    vhost = f"acikkapi-quorum-{uuid.uuid4().hex[:8]}"
    try:
        made = rabbitmqctl("add_vhost", vhost).returncode == 0 and rabbitmqctl(
            "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        made = False
    if not made:
        pytest.skip("rabbitmqctl cannot make a vhost here")
    uri = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    topology.declare(uri, RETRY_DELAY_MS, "quorum")
    yield uri
    rabbitmqctl("delete_vhost", vhost)


def queue_types(uri: str) -> dict[str, str]:
    vhost = uri.rsplit("/", 1)[1]
    listed = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name", "type")
    return dict(line.split("\t")[:2] for line in listed.stdout.splitlines() if "\t" in line)


def take(channel, queue: str, timeout: float = 10):
    """One message from `queue` (unacked), waiting up to `timeout` seconds (None: none came)."""
    return poll(lambda: channel.basic_get(queue, no_ack=False), lambda got: got is not None,
                timeout, every=0.02)
    raise AssertionError(f"nothing arrived on {queue}")


def test_classic_is_the_default_and_other_types_are_refused():
    # a typo must stop the start (runner's topology.declare), not declare classic queues
    # on a cluster, to be lost with their node
    assert load_config(env={})["AMQP_QUEUE_TYPE"] == "classic"
    assert topology.queue_arguments("classic", topology.EVENT) == {}
    with pytest.raises(ValueError, match="AMQP_QUEUE_TYPE"):
        topology.queue_arguments("mirrored")


def test_quorum_arguments_dead_letter_at_least_once():
    event = topology.queue_arguments("quorum", topology.EVENT)
    retry = topology.queue_arguments("quorum", topology.RETRY)
    for arguments in (event, retry):
        assert arguments["x-queue-type"] == "quorum"
        assert arguments["x-dead-letter-strategy"] == "at-least-once"
        # RabbitMQ accepts at-least-once only with reject-publish overflow
        assert arguments["x-overflow"] == "reject-publish"
    assert event["x-dead-letter-routing-key"] == topology.DEAD_LETTER_QUEUE
    assert topology.queue_arguments("quorum", topology.DEAD_LETTERS) == {
        "x-queue-type": "quorum"}


def test_every_durable_queue_is_a_quorum_queue(quorum_uri):
    types = queue_types(quorum_uri)
    expected = {sub.queue_name for sub in topology.SUBSCRIPTIONS} | {
        topology.RETRY_QUEUE, topology.DEAD_LETTER_QUEUE}
    assert expected <= set(types), expected - set(types)
    assert {types[name] for name in expected} == {"quorum"}
    topology.declare(quorum_uri, RETRY_DELAY_MS, "quorum")  # idempotent


def test_an_event_is_delivered_retried_and_dead_lettered_on_quorum_queues(quorum_uri):
    sub = next(s for s in topology.SUBSCRIPTIONS if s.service == "routing")
    # the broker never reads the body: any envelope-shaped JSON does
    event = {"type": sub.event_type, "event_id": uuid.uuid4().hex, "data": {}}
    with Connection(quorum_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        producer.publish(event, exchange=topology.event_exchange(sub.producer),
                         routing_key=sub.event_type, delivery_mode=2, mandatory=True)
        channel = conn.channel()
        delivered = take(channel, sub.queue_name)
        assert delivered.headers["x-delivery-count"] == 0  # only quorum queues count them

        # a failed handler's path: the retry queue hands it back after its wait (the broker's
        # own dead-lettering, at-least-once)
        producer.publish(delivered.body, exchange=Exchange(topology.RETRY_EXCHANGE, "fanout"),
                         routing_key=sub.queue_name, delivery_mode=2, mandatory=True,
                         content_type=delivered.content_type, serializer=None)
        channel.basic_ack(delivered.delivery_tag)
        returned = take(channel, sub.queue_name)
        assert returned.body == delivered.body
        assert returned.headers["x-death"][0]["queue"] == topology.RETRY_QUEUE

        # a delivery rejected without requeue goes to the dead-letter queue, not nowhere
        channel.basic_reject(returned.delivery_tag, requeue=False)
        channel.close()
    letters = poll(lambda: dlq.list_dead_letters(quorum_uri), bool, 10)
    assert [(x.origin_queue, x.event_id) for x in letters] == [
        (sub.queue_name, event["event_id"])]
    assert dlq.replay(quorum_uri) == 1  # back to the queue it left
    with Connection(quorum_uri) as conn:
        channel = conn.channel()
        again = take(channel, sub.queue_name)
        assert again.body == returned.body
        channel.basic_ack(again.delivery_tag)
        channel.close()


def test_a_service_starts_consuming_from_quorum_queues(quorum_uri, databases, tmp_path,
                                                       container_factory):
    # nameko re-declares each handler's queue when it starts consuming: with other arguments
    # than the topology's, RabbitMQ closes the channel and the service never consumes
    config = load_config(env={}, AMQP_URI=quorum_uri, AMQP_QUEUE_TYPE="quorum",
                         DEV_SINK_DIR=str(tmp_path / "sink"), CONSOLE_SAMPLE_ACCOUNTS="false",
                         **databases)
    container = container_factory(service_class("intake"), config)
    with eventlet.Timeout(30):  # refused, the consumer would wait for ever
        container.start()
    queue = next(s.queue_name for s in topology.SUBSCRIPTIONS if s.service == "intake")
    with Connection(quorum_uri) as conn:
        consumers = poll(lambda: conn.channel().queue_declare(queue, passive=True).consumer_count,
                         bool, 10)
    assert consumers == 1
    assert queue_types(quorum_uri)[queue] == "quorum"
    container.stop()


def test_switching_an_existing_classic_queue_needs_it_deleted_first(quorum_uri):
    # what docs/architecture.md warns about: the type of a queue cannot change in place
    name = f"probe-{uuid.uuid4().hex[:8]}"
    with Connection(quorum_uri) as conn:
        Queue(name, durable=True).bind(conn.channel()).declare()
        channel = conn.channel()
        with pytest.raises(conn.channel_errors):
            Queue(name, durable=True,
                  queue_arguments=topology.queue_arguments("quorum")).bind(channel).declare()
        conn.channel().queue_delete(name)
