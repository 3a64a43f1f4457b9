"""The dead-letter queue: list what was parked, replay it to the queue it came from.

`python -m services.common.dlq list` shows each parked message (origin queue, event type and id,
attempts, error class); `replay --all` or `replay --event-id ID …` sends messages back to their
origin queue with a fresh attempt count — after the fix is deployed; `drop --event-id ID` removes
one for good (it is printed first, so nothing vanishes unseen).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from kombu import Connection, Producer

from services.common.handlers import ATTEMPTS_HEADER, ERROR_HEADER, ORIGIN_HEADER
from services.common.topology import DEAD_LETTER_QUEUE


@dataclass(frozen=True)
class DeadLetter:
    origin_queue: str
    event_type: str | None
    event_id: str | None
    attempts: int
    error: str


def _describe(message) -> DeadLetter:
    headers = message.headers or {}
    try:
        body = json.loads(message.body)
    except (ValueError, TypeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    # A message the broker dead-lettered itself (a quorum queue's rejected delivery) carries no
    # header of ours, but RabbitMQ's `x-death` names the queue it left.
    deaths = headers.get("x-death") or [{}]
    origin = headers.get(ORIGIN_HEADER) or deaths[0].get("queue") or "?"
    return DeadLetter(
        origin_queue=origin,
        event_type=body.get("type"),
        event_id=body.get("event_id"),
        attempts=int(headers.get(ATTEMPTS_HEADER, 0)),
        error=headers.get(ERROR_HEADER, "?"),
    )


def _drain(channel, limit: int):
    """Fetch up to `limit` messages without acking; closing the channel puts back the rest."""
    for _ in range(limit):
        message = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
        if message is None:
            return
        yield message


def list_dead_letters(amqp_uri: str, limit: int = 1000) -> list[DeadLetter]:
    """What is parked, oldest first; the queue is left exactly as it was."""
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        found = [_describe(message) for message in _drain(channel, limit)]
        channel.close()  # un-acked messages return to the queue in their order
    return found


def _take(amqp_uri: str, event_ids: set[str] | None, action, limit: int) -> int:
    done = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        producer = Producer(conn.channel())
        for message in list(_drain(channel, limit)):
            letter = _describe(message)
            if event_ids is not None and letter.event_id not in event_ids:
                continue
            action(producer, message, letter)
            channel.basic_ack(message.delivery_tag)
            done += 1
        channel.close()
    return done


def replay(amqp_uri: str, event_ids: set[str] | None = None, limit: int = 10_000) -> int:
    """Send parked messages (all, or those with `event_ids`) back to their origin queues."""

    def send_back(producer, message, letter: DeadLetter) -> None:
        headers = dict(message.headers or {})
        headers[ATTEMPTS_HEADER] = 0
        producer.publish(
            message.body, exchange="", routing_key=letter.origin_queue, headers=headers,
            content_type=message.content_type, content_encoding=message.content_encoding,
            delivery_mode=2, mandatory=True,
        )

    return _take(amqp_uri, event_ids, send_back, limit)


def drop(amqp_uri: str, event_ids: set[str]) -> int:
    """Remove parked messages for good."""
    return _take(amqp_uri, event_ids, lambda producer, message, letter: None, 10_000)


def main(argv: list[str] | None = None) -> None:
    from services.common.config import load_config

    parser = argparse.ArgumentParser(prog="python -m services.common.dlq")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show parked messages")
    rep = sub.add_parser("replay", help="send parked messages back to their queues")
    group = rep.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("--event-id", nargs="+")
    drp = sub.add_parser("drop", help="remove parked messages for good")
    drp.add_argument("--event-id", nargs="+", required=True)
    args = parser.parse_args(argv)
    amqp_uri = load_config()["AMQP_URI"]
    if args.command == "list":
        letters = list_dead_letters(amqp_uri)
        for letter in letters:
            print(f"{letter.event_id}\t{letter.event_type}\t{letter.origin_queue}\t"
                  f"attempts={letter.attempts}\terror={letter.error}")
        print(f"{len(letters)} dead letter(s)")
    elif args.command == "replay":
        ids = None if args.all else set(args.event_id)
        print(f"replayed {replay(amqp_uri, ids)}")
    else:
        for letter in list_dead_letters(amqp_uri):
            if letter.event_id in set(args.event_id):
                print(f"dropping {letter}")
        print(f"dropped {drop(amqp_uri, set(args.event_id))}")


if __name__ == "__main__":
    main()
