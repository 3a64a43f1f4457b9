"""The buffered AMQP transport: every message comes through whole and in order over the real
broker, small ones served many to a read and large ones across several frames and chunks; a
read that times out mid-frame loses nothing (py-amqp's frame reader retries it)."""
from __future__ import annotations

import socket
import struct

import pytest
from kombu import Connection, Consumer, Producer, Queue

from services.common.amqpread import CHUNK, BufferedTCPTransport, BufferedTransport


def test_messages_small_and_larger_than_a_chunk_come_whole_and_in_order(amqp_uri):
    sizes = [10, 300, 5_000, 3 * CHUNK + 7, 1, 200_000] * 40
    with Connection(amqp_uri).clone(transport=BufferedTransport) as conn:
        assert isinstance(conn.connection._transport, BufferedTCPTransport)
        channel = conn.channel()
        queue = Queue("amqpread-test", channel=channel, auto_delete=True)
        queue.declare()
        producer = Producer(channel)
        for at, size in enumerate(sizes):
            producer.publish({"at": at, "pad": "ş" * size}, routing_key=queue.name)
        got = []

        def take(body, message):
            got.append(body)
            message.ack()

        with Consumer(channel, queues=[queue], callbacks=[take]):
            while len(got) < len(sizes):
                conn.drain_events(timeout=10)
    assert [body["at"] for body in got] == list(range(len(sizes)))
    assert [len(body["pad"]) for body in got] == sizes


def test_a_read_that_times_out_mid_frame_keeps_what_it_had():
    ours, broker = socket.socketpair()
    transport = BufferedTCPTransport.__new__(BufferedTCPTransport)
    transport.sock, transport.raise_on_initial_eintr = ours, True
    transport._setup_transport()
    ours.settimeout(0.05)
    payload = b"x" * 1_000
    frame = struct.pack(">BHI", 3, 1, len(payload)) + payload + b"\xce"
    broker.sendall(frame + frame[:500])  # one frame, then half of the next
    assert transport.read_frame() == (3, 1, payload)
    with pytest.raises(socket.timeout):
        transport.read_frame()
    broker.sendall(frame[500:])
    assert transport.read_frame() == (3, 1, payload)
    ours.close()
    broker.close()
