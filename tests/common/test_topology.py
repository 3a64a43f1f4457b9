"""The declared bus topology and the services' handlers agree, so no event is ever dropped."""
from nameko.containers import ServiceContainer
from nameko.events import EventHandler

from services.common.config import load_config
from services.common.events import producer_of
from services.common.handlers import ReliableEventHandler
from services.common.runner import SERVICES, service_class
from services.common.topology import SUBSCRIPTIONS


def handlers_of(name: str) -> list:
    container = ServiceContainer(service_class(name), load_config(env={}))
    return [e for e in container.entrypoints if isinstance(e, EventHandler)]


def test_every_event_handler_is_declared_in_the_topology_and_every_declaration_has_a_handler():
    from_services = set()
    for name in SERVICES:
        for handler in handlers_of(name):
            # a batched method consumes queues named after the handlers they were made for
            queue = getattr(handler, "queue_method", None) or handler.method_name
            from_services.add((handler.event_type, name, queue))
            assert handler.source_service == producer_of(handler.event_type), handler
    declared = {(s.event_type, s.service, s.method) for s in SUBSCRIPTIONS}
    assert from_services == declared


def test_every_event_handler_retries_and_dead_letters():
    for name in SERVICES:
        for handler in handlers_of(name):
            assert isinstance(handler, ReliableEventHandler), (name, handler.method_name)

