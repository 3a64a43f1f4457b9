"""Fixtures for flows across services: every service running on the real broker."""
from contextlib import ExitStack

import pytest
from nameko.testing.services import entrypoint_waiter

from services.common.bootstrap import parts_of
from services.common.runner import SERVICES, app_factory, service_class
from tests.support import bearer, given_events, handler_of


class Clients(dict):
    """Each service's Flask test client, made on first use from the parts its started
    container built: the HTTP side and the bus side of a service share them, as in a process."""

    def __init__(self, containers: dict):
        super().__init__()
        self.containers = containers

    def __missing__(self, name: str):
        container = self.containers[name]
        assert container.started, f"start {name} before using its HTTP side"
        client = self[name] = app_factory(name)(parts_of(container)).test_client()
        return client


class System:
    """All six services: nameko containers plus each service's Flask test client."""

    def __init__(self, config: dict, container_factory):
        self.config = config
        self.containers = {name: container_factory(service_class(name), config)
                           for name in SERVICES}
        self.http = Clients(self.containers)
        self.staff = bearer(config, "admin", user="flow-test")

    def start(self, *names: str) -> None:
        for name in names or SERVICES:
            self.containers[name].start()

    def handled(self, stack: ExitStack, service: str, event: str) -> None:
        """Wait, on leaving `stack`, until `service` has handled one `event` without error."""

        def ok(worker_ctx, result, exc_info):
            assert exc_info is None, exc_info
            return bool(given_events(worker_ctx, event))

        container = self.containers[service]
        stack.enter_context(entrypoint_waiter(container, handler_of(container, event),
                                              callback=ok, timeout=30))

    def track(self, created: dict) -> dict:
        response = self.http["tracking"].post("/api/v1/track", json={
            "tracking_code": created["tracking_code"],
            "security_code": created["security_code"]})
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def system(config, container_factory):
    return System(config, container_factory)
