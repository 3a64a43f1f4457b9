"""Event handlers that validate, measure, retry a bounded number of times, then dead-letter.

nameko acks an event after its handler returns, exceptions included. `event_handler` replaces
that with: the envelope is validated before a worker starts (a malformed message goes straight
to the dead-letter queue: retrying cannot fix it); a handler that raises has its message
republished to the retry queue, which returns it to its own queue after a delay, carrying an
attempt count; after `EVENT_MAX_ATTEMPTS` it is parked in the dead-letter queue with the queue it
came from and the error class. The original delivery is acked only after the republish is
confirmed by the broker, so a poison message neither blocks its queue nor vanishes.

A failure because the database cannot be reached, or because a document stayed locked by
other writers (`UNCOUNTED`), is not the message's fault: it is retried the same way but not
counted, so an outage longer than the attempts last parks nothing and needs no replay. Such a
retry is not a hot loop: each attempt waits for the server up to the client's server-selection
timeout, or goes through `modify`'s backing-off attempts, first.
"""
from __future__ import annotations

import logging
import time
from functools import partial

from marshmallow import ValidationError
from nameko.amqp.publish import Publisher
from nameko.containers import WorkerContext
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from pymongo.errors import ConnectionFailure

from services.common import metrics
from services.common.events import load_event
from services.common.outbox import ConcurrentUpdate
from services.common.topology import DEAD_LETTER_QUEUE, EVENT, RETRY_EXCHANGE, queue_arguments

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-acikkapi-attempts"
ORIGIN_HEADER = "x-acikkapi-origin-queue"
ERROR_HEADER = "x-acikkapi-error"
DEFAULT_MAX_ATTEMPTS = 5
# Not counted: the store away (refused, reset, paused pool, no server selectable in time), and a
# document that kept changing or stayed claimed. The second follows an outage too: a FerretDB
# version claim whose writer lost the server before writing blocks that document until the
# claim's lease (10 s) runs out, longer than `modify`'s attempts and a few retries last.
UNCOUNTED: tuple[type[BaseException], ...] = (ConnectionFailure, ConcurrentUpdate)


def is_outage(exc_info) -> bool:
    """Whether a handler failed for want of the store, not because of its message."""
    return issubclass(exc_info[0], UNCOUNTED)


class ReliableEventHandler(EventHandler):
    """A SERVICE_POOL event handler with validation, metrics, retries and dead-lettering."""

    _handled_metrics = None

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.max_attempts = int(config.get("EVENT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
        self.republisher = Publisher(config["AMQP_URI"], use_confirms=True)
        # nameko declares the queue again when it starts consuming: with arguments other than
        # topology.declare's, RabbitMQ would refuse it (PRECONDITION_FAILED) on a quorum queue.
        self.queue.queue_arguments = queue_arguments(
            config.get("AMQP_QUEUE_TYPE", "classic"), EVENT)

    def handle_message(self, body, message) -> None:
        started = time.perf_counter()
        envelope = self._load(body, message)
        if envelope is None:
            return
        context_data = self.unpack_message_headers(message)
        handle_result = partial(self.handle_result, message, started)
        try:
            self.container.spawn_worker(
                self, (envelope,), {}, context_data=context_data, handle_result=handle_result
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def _load(self, body, message) -> dict | None:
        """The validated envelope, or None once a malformed one is dead-lettered."""
        try:
            return load_event(body)
        except ValidationError as exc:
            fields_wrong = sorted(exc.messages) if isinstance(exc.messages, dict) else ["event"]
            self._dead_letter(message, f"invalid envelope: {', '.join(fields_wrong)}")
            metrics.EVENTS_FAILED.labels(self.event_type, self._handler_name).inc()
            return None

    def handle_result(
        self, message, started: float, worker_ctx: WorkerContext, result=None, exc_info=None
    ):
        self.settle(message, started, exc_info)
        return result, exc_info

    def settle(self, message, started: float, exc_info=None) -> None:
        """Ack a handled message; retry or dead-letter one whose handling raised."""
        if exc_info is None:
            self.count_handled(started)
            self.queue_consumer.ack_message(message)
            return
        metrics.EVENT_LATENCY.labels(self.event_type, self._handler_name).observe(
            time.perf_counter() - started)
        metrics.EVENTS_FAILED.labels(self.event_type, self._handler_name).inc()
        error = exc_info[0].__name__  # the class only: messages may quote personal data
        outage = is_outage(exc_info)
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + (0 if outage else 1)
        if outage or attempts < self.max_attempts:
            log.warning(
                "database away or busy, will retry" if outage else "handler failed, will retry",
                extra={"handler": self._handler_name, "attempt": attempts, "error": error},
            )
            self._republish(message, RETRY_EXCHANGE, self.queue.name, attempts, error)
        else:
            self._dead_letter(message, error, attempts)

    def count_handled(self, started: float) -> None:
        """The metrics of an event handled (acked by the caller)."""
        if self._handled_metrics is None:  # labelled once: `labels` is a lookup under a lock
            self._handled_metrics = (
                metrics.EVENT_LATENCY.labels(self.event_type, self._handler_name),
                metrics.EVENTS_HANDLED.labels(self.event_type, self._handler_name))
        latency, handled = self._handled_metrics
        latency.observe(time.perf_counter() - started)
        handled.inc()

    @property
    def _handler_name(self) -> str:
        return f"{self.container.service_name}.{self.method_name}"

    def _dead_letter(self, message, error: str, attempts: int = 1) -> None:
        log.error(
            "event dead-lettered",
            extra={"handler": self._handler_name, "attempts": attempts, "error": error},
        )
        metrics.EVENTS_DEAD_LETTERED.labels(self.event_type, self._handler_name).inc()
        self._republish(message, "", DEAD_LETTER_QUEUE, attempts, error)

    def _republish(self, message, exchange: str, routing_key: str, attempts: int, error: str):
        headers = dict(message.headers or {})
        headers.update({ATTEMPTS_HEADER: attempts, ORIGIN_HEADER: self.queue.name,
                        ERROR_HEADER: error})
        try:
            self.republisher.publish(
                message.body,
                exchange=exchange,
                routing_key=routing_key,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                serializer=None,
                mandatory=True,
            )
        except Exception:
            # Could not park it: give it back to its queue rather than lose it.
            log.exception("republish failed; requeueing", extra={"handler": self._handler_name})
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


event_handler = ReliableEventHandler.decorator
