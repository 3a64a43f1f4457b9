"""The bus topology, declared up front so that nothing published is dropped for want of a queue.

nameko publishes events with `mandatory=False`: an event whose queue does not exist yet vanishes.
`SUBSCRIPTIONS` lists every (event, consuming service, handler) pair; `declare` creates the
producers' exchanges and every consumer queue exactly as nameko's `EventHandler` would, plus the
retry and dead-letter plumbing. Every service calls `declare` at start; `make run` and the tests do
too. A test checks that the service classes and this table agree.

`AMQP_QUEUE_TYPE=quorum` (a RabbitMQ cluster) declares the durable queues as quorum queues,
replicated over the cluster's nodes, and makes the broker's own dead-lettering (the retry queue
handing a message back when its wait is over, a rejected delivery going to the dead-letter
queue) at-least-once: with the default at-most-once, a message dead-lettered while a node fails
can be lost. The event handlers declare their queues with the same arguments
(`queue_arguments`), as RabbitMQ refuses a re-declaration whose arguments differ.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange, Queue
from nameko.standalone.events import get_event_exchange

from services.common.events import CASE_EVENTS, producer_of

log = logging.getLogger(__name__)

RETRY_EXCHANGE = "acikkapi.retry"
RETRY_QUEUE = "acikkapi.retry.wait"
DEAD_LETTER_QUEUE = "acikkapi.dead-letter"
QUEUE_TYPES = ("classic", "quorum")
# The queue roles `queue_arguments` knows: a service's event queue, the retry wait, the dead
# letters.
EVENT, RETRY, DEAD_LETTERS = "event", "retry", "dead-letters"


@dataclass(frozen=True)
class Subscription:
    event_type: str
    service: str
    method: str

    @property
    def producer(self) -> str:
        return producer_of(self.event_type)

    @property
    def queue_name(self) -> str:
        # nameko's SERVICE_POOL naming, so nameko consumes from the queue we declared
        return f"evt-{self.producer}-{self.event_type}--{self.service}.{self.method}"


def _subs(service: str, *pairs: tuple[str, str]) -> list[Subscription]:
    return [Subscription(event, service, method) for event, method in pairs]


# The case events a case's SLA clock follows (services/sla/domain.py `on_case_event`).
SLA_FOLLOWS = (
    "case_acknowledged", "case_started", "case_waiting", "case_resumed", "case_transferred",
    "case_returned", "case_resolved", "case_rejected", "case_closed", "case_reopened",
)

# The case events notify tells someone of (services/notify/service.py).
NOTIFY_FOLLOWS = (
    "case_transferred", "case_returned", "case_waiting", "case_closed", "case_reopened",
    "case_reopen_refused",
)

SUBSCRIPTIONS: list[Subscription] = [
    *_subs(
        "intake",
        ("category_saved", "handle_category_saved"),
        # KVKK retention: when the period of an application's personal data starts
        ("case_closed", "handle_case_closed"),
        ("case_reopened", "handle_case_reopened"),
    ),
    *_subs(
        "routing",
        ("application_received", "handle_application_received"),
        ("reopen_requested", "handle_reopen_requested"),
        ("case_escalated", "handle_case_escalated"),
        ("deadline_planned", "handle_deadline_planned"),
    ),
    *_subs(
        "sla",
        ("application_routed", "handle_application_routed"),
        ("application_referred", "handle_application_referred"),
        *((event, f"handle_{event}") for event in SLA_FOLLOWS),
    ),
    *_subs(
        "notify",
        ("application_received", "handle_application_received"),
        ("application_routed", "handle_application_routed"),
        ("application_merged", "handle_application_merged"),
        ("inbound_rejected", "handle_inbound_rejected"),
        ("delay_notice_due", "handle_delay_notice_due"),
        ("case_escalated", "handle_case_escalated"),
        ("sla_warned", "handle_sla_warned"),
        ("application_referred", "handle_application_referred"),
        *((event, f"handle_{event}") for event in NOTIFY_FOLLOWS),
        ("satisfaction_recorded", "handle_satisfaction_recorded"),
        ("report_generated", "handle_report_generated"),
        ("staff_password_reset_requested", "handle_staff_password_reset_requested"),
    ),
    *_subs(
        "tracking",
        ("application_received", "handle_application_received"),
        ("application_routed", "handle_application_routed"),
        ("application_referred", "handle_application_referred"),
        ("notification_sent", "handle_notification_sent"),
        ("application_merged", "handle_application_merged"),
        ("category_saved", "handle_category_saved"),
        ("deadline_planned", "handle_deadline_planned"),
        *((event, f"handle_{event}") for event in CASE_EVENTS),
    ),
    # Reporting takes all of these in one batched method (services/common/batched.py); the
    # queues keep the names of the per-event handlers it had, so what waits in them carries over.
    *_subs(
        "reporting",
        ("application_received", "handle_application_received"),
        ("application_routed", "handle_application_routed"),
        ("application_referred", "handle_application_referred"),
        ("application_merged", "handle_application_merged"),
        *((event, f"handle_{event}") for event in CASE_EVENTS),
        ("sla_outcome_recorded", "handle_sla_outcome_recorded"),
        ("case_escalated", "handle_case_escalated"),
        ("satisfaction_recorded", "handle_satisfaction_recorded"),
    ),
]

_CONSUMED = frozenset(sub.event_type for sub in SUBSCRIPTIONS)

def has_consumers(event_type: str) -> bool:
    """Whether any service subscribes to `event_type`."""
    return event_type in _CONSUMED


def event_exchange(producer: str) -> Exchange:
    """The exchange nameko's EventDispatcher publishes `producer`'s events to."""
    return get_event_exchange(producer, {})


def queue_arguments(queue_type: str = "classic", role: str = EVENT) -> dict:
    """The `x-` arguments a queue of `role` is declared with for `queue_type`.

    Classic queues keep the arguments they always had (none for an event queue), so existing
    deployments re-declare them unchanged. Quorum queues dead-letter at-least-once, which
    RabbitMQ only accepts with `x-overflow: reject-publish`; an event queue's dead letters (a
    delivery rejected without requeue, which our handlers never do on purpose) go to the
    dead-letter queue rather than vanish. The dead-letter queue itself dead-letters nowhere.
    """
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"AMQP_QUEUE_TYPE must be one of {QUEUE_TYPES}, not {queue_type!r}")
    if queue_type == "classic":
        return {}
    arguments: dict = {"x-queue-type": "quorum"}
    if role == EVENT:
        arguments.update({"x-dead-letter-exchange": "",
                          "x-dead-letter-routing-key": DEAD_LETTER_QUEUE})
    if role in (EVENT, RETRY):
        arguments.update({"x-dead-letter-strategy": "at-least-once",
                          "x-overflow": "reject-publish"})
    return arguments


def service_subscriptions(service: str) -> list[tuple[str, str, str]]:
    """`(producer, event type, handler method)` of each queue `service` consumes from."""
    return [(sub.producer, sub.event_type, sub.method) for sub in SUBSCRIPTIONS
            if sub.service == service]


def service_queue_names(service: str) -> list[str]:
    """The event queues `service` consumes from (its readiness needs them declared)."""
    return [sub.queue_name for sub in SUBSCRIPTIONS if sub.service == service]


def _queues(retry_delay_ms: int, queue_type: str = "classic") -> list[Queue]:
    queues = [
        Queue(
            sub.queue_name,
            exchange=event_exchange(sub.producer),
            routing_key=sub.event_type,
            durable=True,
            auto_delete=False,
            queue_arguments=queue_arguments(queue_type, EVENT),
        )
        for sub in SUBSCRIPTIONS
    ]
    # A failed delivery waits here, then dead-letters through the default exchange straight back
    # to the queue it came from (its routing key is that queue's name).
    queues.append(
        Queue(
            RETRY_QUEUE,
            exchange=Exchange(RETRY_EXCHANGE, type="fanout", durable=True),
            durable=True,
            queue_arguments={"x-message-ttl": retry_delay_ms, "x-dead-letter-exchange": "",
                             **queue_arguments(queue_type, RETRY)},
        )
    )
    queues.append(Queue(DEAD_LETTER_QUEUE, durable=True,
                        queue_arguments=queue_arguments(queue_type, DEAD_LETTERS)))
    return queues


def declare(amqp_uri: str, retry_delay_ms: int = 1000, queue_type: str = "classic") -> None:
    """Declare every exchange and queue of the system (idempotent)."""
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for queue in _queues(retry_delay_ms, queue_type):
            try:
                queue.bind(channel).declare()
            except PreconditionFailed:
                # Declared earlier with other arguments (say, another retry delay): the queue
                # is there and works; keep it rather than refuse to start.
                log.warning("queue exists with other arguments", extra={"queue": queue.name})
                channel = conn.channel()
        channel.close()


def reset(amqp_uri: str, retry_delay_ms: int = 1000, queue_type: str = "classic") -> None:
    """Delete and re-declare everything (tests only: it drops queued messages)."""
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for queue in _queues(retry_delay_ms, queue_type):
            queue.bind(channel).delete()
        for producer in {sub.producer for sub in SUBSCRIPTIONS}:
            event_exchange(producer).bind(channel).delete()
        channel.close()
    declare(amqp_uri, retry_delay_ms, queue_type)
