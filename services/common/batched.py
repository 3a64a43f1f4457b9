"""Batched event handlers: one worker for many events, for a consumer whose cost is per write,
not per event (reporting folds a batch into each report bucket it touches once).

`batched_event_handler(*subscriptions)` decorates one method with an entrypoint per event queue.
Each entrypoint validates its messages as `ReliableEventHandler` does (a malformed envelope is
dead-lettered at once) and hands the envelope to the container's `EventBatcher`, which calls the
method with a list of envelopes:

- one batch in flight per method: the events that arrive meanwhile make the next batch, so a
  batch grows with the load (up to `EVENT_BATCH_SIZE`); before a batch starts, it waits while
  events keep coming, `EVENT_BATCH_LINGER_MS` at a time (a second at most), so a quiet bus
  waits one linger after its event and a burst is not cut into a small batch and a large one;
- every message of a batch is acked once the method has returned, none before: a process killed
  mid-batch leaves them all to be redelivered, so the method must fold a redelivery as a no-op
  (one `multiple` ack for the batch, as far as every earlier delivery is settled: `Deliveries`);
- a batch that raised because the store was away is retried message by message, uncounted, as
  one event would be; one that raised for any other reason is run again one event at a time, so
  the message at fault fails alone (retried, then dead-lettered) and the others are handled.

The batched entrypoints share a queue consumer of their own, whose prefetch (`EVENT_BATCH_PREFETCH`
per queue) lets a batch's messages wait unacked: nameko's one-worker-per-message consumer
prefetches only `max_workers`. What the process holds is bounded all the same: the batch in
flight and one batch waiting (`EVENT_BATCH_SIZE` each); the consumer, which hands each message
over in its own green thread, waits while the next batch is full, and the broker holds the
rest. Unbounded, reporting's 19 queues took a 70,000-event backlog in whole (700 MB).
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import eventlet
import orjson
from amqp.exceptions import ConnectionError as AmqpConnectionError
from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from kombu import Connection
from kombu.exceptions import ContentDisallowed, DecodeError
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import ProviderCollector, SharedExtension
from nameko.messaging import QueueConsumer

from services.common import metrics
from services.common.amqpread import BufferedTransport
from services.common.handlers import ReliableEventHandler, is_outage

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 20_000
DEFAULT_LINGER_MS = 50
DEFAULT_PREFETCH = 20_000
GATHER_LINGERS = 20  # a batch waits a second at most for its events (at the default linger)


IN_HAND, ACKED, GONE = "in hand", "acked", "gone"


class Deliveries:
    """The delivery tags of one channel not yet settled, in the order delivered, so that a
    batch is acked with one `basic.ack` (`multiple`, acking every tag up to the one sent)
    instead of one per message: that ack is safe only up to the first tag still in hand."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.order: deque[int] = deque()
        self.state: dict[int, str] = {}  # tag -> IN_HAND, ACKED (by a batch) or GONE (alone)

    def settled(self, tags: Iterable[int], how: str) -> int | None:
        """Mark tags settled; returns the tag to ack with `multiple`, if a batch's run of
        settled tags now starts the channel's unsettled ones."""
        for tag in tags:
            if tag in self.state:
                self.state[tag] = how
        last = None
        while self.order and self.state[self.order[0]] != IN_HAND:
            tag = self.order.popleft()
            if self.state.pop(tag) == ACKED:
                last = tag
        return last


class BatchQueueConsumer(QueueConsumer):
    """nameko's queue consumer with a prefetch of its own (a connection of its own too: nameko
    shares an extension per class), which acks a batch's messages together."""

    _deliveries: Deliveries | None = None

    @property
    def prefetch_count(self) -> int:
        return int(self.container.config.get("EVENT_BATCH_PREFETCH", DEFAULT_PREFETCH))

    @property
    def connection(self) -> Connection:
        # reads the many small messages of a backlog by the chunk, not by the frame part
        return super().connection.clone(transport=BufferedTransport)

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            # the body decoded by `_decoded`, not by kombu before its callbacks
            consumer.on_message = partial(self._on_message, provider)
        return consumers

    def _on_message(self, provider, message) -> None:
        try:
            body = _decoded(message)
        except (DecodeError, ContentDisallowed):
            body = None  # kombu could not take it either: the envelope's check parks it
        self.handle_message(provider, body, message)

    def handle_message(self, provider, body, message) -> None:
        if self._deliveries is None or self._deliveries.channel is not message.channel:
            # a new channel (reconnected): the old one's tags are the broker's again
            self._deliveries = Deliveries(message.channel)
        self._deliveries.order.append(message.delivery_tag)
        self._deliveries.state[message.delivery_tag] = IN_HAND
        # in the consumer's own green thread, not one spawned per message (nameko's way):
        # a batched entrypoint only validates the envelope and queues it
        provider.handle_message(body, message)

    def ack_messages(self, messages: list) -> None:
        """Ack a batch's messages: with one `multiple` ack as far as every earlier delivery
        is settled, the rest once the deliveries before them are."""
        deliveries = self._deliveries
        if deliveries is None:
            return
        # those of an earlier channel (before a reconnection) are the broker's again, and
        # `_ack_up_to` sends nothing on a channel gone
        last = deliveries.settled(
            (m.delivery_tag for m in messages if m.channel is deliveries.channel), ACKED)
        self._ack_up_to(last)

    # settled alone (dead-lettered, retried, given back): marked once the broker was told,
    # so that no `multiple` ack covers a tag that is then acked or rejected again
    def ack_message(self, message) -> None:
        super().ack_message(message)
        self._settled_alone(message)

    def requeue_message(self, message) -> None:
        super().requeue_message(message)
        self._settled_alone(message)

    def unsettled(self) -> int:
        """How many delivered messages are neither acked nor given back yet."""
        return len(self._deliveries.order) if self._deliveries else 0

    def _settled_alone(self, message) -> None:
        deliveries = self._deliveries
        if deliveries is not None and message.channel is deliveries.channel:
            # the tags of batches that waited only on this one
            self._ack_up_to(deliveries.settled([message.delivery_tag], GONE))

    def _ack_up_to(self, tag: int | None) -> None:
        channel = self._deliveries.channel
        # a channel gone (or going) has given them back to the broker, as nameko's ack assumes
        if tag is not None and channel.connection:
            with contextlib.suppress(AmqpConnectionError, ConnectionError):
                channel.basic_ack(tag, multiple=True)


def _decoded(message) -> object:
    """A message's body. JSON by orjson: kombu's decoder, built anew per message with a Python
    hook per object, cost a tenth of the CPU of taking an event off the bus. A body carrying
    kombu's typed values (`__type__`), compressed or not UTF-8 is kombu's to decode."""
    body = message.body  # py-amqp gives a UTF-8 body as text
    if (message.content_type == "application/json"
            and message.content_encoding in ("utf-8", "utf8")
            and not (message.headers or {}).get("compression")
            and ("__type__" if isinstance(body, str) else b"__type__") not in body):
        with contextlib.suppress(orjson.JSONDecodeError):  # kombu's json says what is wrong
            return orjson.loads(body)
    return message.decode()


@dataclass
class _Item:
    handler: BatchedEventHandler
    envelope: dict
    message: object
    started: float


class EventBatcher(SharedExtension, ProviderCollector):
    """Collects the validated events of a container's batched entrypoints and runs their
    method on them a batch at a time (see the module docstring)."""

    def setup(self) -> None:
        config = self.container.config
        self.size = int(config.get("EVENT_BATCH_SIZE", DEFAULT_BATCH_SIZE))
        self.linger = int(config.get("EVENT_BATCH_LINGER_MS", DEFAULT_LINGER_MS)) / 1000
        self._queues: dict[str, LightQueue] = defaultdict(lambda: LightQueue(self.size))
        self._stopping = False

    def start(self) -> None:
        for method in sorted({provider.method_name for provider in self._providers}):
            self.container.spawn_managed_thread(lambda m=method: self._run(m),
                                                identifier=f"EventBatcher[{method}]")

    def stop(self) -> None:
        """Give back what was never handed to a worker (the broker redelivers it)."""
        self._stopping = True
        for queue in self._queues.values():
            while True:
                try:
                    item = queue.get_nowait()
                except Empty:
                    break
                item.handler.queue_consumer.requeue_message(item.message)
        super().stop()

    def add(self, item: _Item) -> None:
        """Queue an event for its method's next batch; waits while that batch is full."""
        self._queues[item.handler.method_name].put(item)

    def _run(self, method: str) -> None:
        queue = self._queues[method]
        while not self._stopping:
            items = [queue.get()]
            self._gather(queue)
            while len(items) < self.size:
                try:
                    items.append(queue.get_nowait())
                except Empty:
                    break
            try:
                self._handle(items)
            except ContainerBeingKilled:
                return  # its messages were given back

    def _gather(self, queue: LightQueue) -> None:
        """Wait while events keep coming (a burst is one batch, not a small one and then a
        large one), until a linger passes with none, the batch is full, or `GATHER_LINGERS`
        lingers have passed."""
        for _ in range(GATHER_LINGERS):
            waiting = queue.qsize()
            if waiting + 1 >= self.size:
                return
            eventlet.sleep(self.linger)  # the consumer fills the queue meanwhile
            if queue.qsize() == waiting:
                return

    def _handle(self, items: list[_Item]) -> None:
        began = time.perf_counter()
        exc_info = self._call(items)
        handler = f"{self.container.service_name}.{items[0].handler.method_name}"
        seconds = time.perf_counter() - began
        metrics.EVENT_BATCH_EVENTS.labels(handler).observe(len(items))
        metrics.EVENT_BATCH_SECONDS.labels(handler).observe(seconds)
        log.debug("batch handled", extra={"handler": handler, "events": len(items),
                                          "seconds": round(seconds, 3)})
        if exc_info is None:
            for item in items:
                item.handler.count_handled(item.started)
            items[0].handler.queue_consumer.ack_messages([item.message for item in items])
            return
        if len(items) == 1 or is_outage(exc_info):
            for item in items:
                item.handler.settle(item.message, item.started, exc_info)
            return
        log.warning("batch failed, handling its events one at a time",
                    extra={"events": len(items), "error": exc_info[0].__name__})
        for item in items:  # the message at fault fails alone
            self._handle([item])

    def _call(self, items: list[_Item]):
        """Run the method on the batch in a worker; its exc_info, None when it returned."""
        first = items[0].handler
        done = Event()

        def finished(worker_ctx, result=None, exc_info=None):
            done.send(exc_info)
            return result, exc_info

        try:
            self.container.spawn_worker(
                first, ([item.envelope for item in items],), {},
                context_data=first.unpack_message_headers(items[0].message),
                handle_result=finished)
        except ContainerBeingKilled:
            for item in items:
                item.handler.queue_consumer.requeue_message(item.message)
            raise
        return done.wait()


class BatchedEventHandler(ReliableEventHandler):
    """One event queue of a batched method (see the module docstring). `queue_method` names the
    queue as nameko would for a handler method of that name, so a method taking over from
    per-event handlers consumes their queues, and whatever waits in them."""

    queue_consumer = BatchQueueConsumer()
    batcher = EventBatcher()

    def __init__(self, source_service: str, event_type: str, queue_method: str | None = None,
                 **kwargs):
        self.queue_method = queue_method
        super().__init__(source_service, event_type, **kwargs)

    def setup(self) -> None:
        super().setup()
        if self.queue_method:
            self.queue.name = (f"evt-{self.source_service}-{self.event_type}--"
                               f"{self.container.service_name}.{self.queue_method}")
        self.batcher.register_provider(self)

    def stop(self) -> None:
        self.batcher.unregister_provider(self)
        super().stop()

    def handle_message(self, body, message) -> None:
        started = time.perf_counter()
        envelope = self._load(body, message)
        if envelope is not None:
            self.batcher.add(_Item(self, envelope, message, started))


def batched_event_handler(*queues: tuple[str, str, str]) -> Callable:
    """Decorate a method taking a list of envelopes with one batched entrypoint per
    `(source service, event type, queue method)`."""
    def decorate(method: Callable) -> Callable:
        for source, event_type, queue_method in queues:
            method = BatchedEventHandler.decorator(source, event_type,
                                                   queue_method=queue_method)(method)
        return method
    return decorate
