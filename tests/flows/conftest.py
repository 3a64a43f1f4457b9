"""Fixtures for flows across services: every service running on the real broker."""
import pytest

from services.common.runner import SERVICES, app_factory, service_class
from tests.support import bearer


class System:
    """All six services: nameko containers plus each service's Flask test client."""

    def __init__(self, config: dict, container_factory):
        self.config = config
        self.containers = {name: container_factory(service_class(name), config)
                           for name in SERVICES}
        self.http = {name: app_factory(name)(config).test_client() for name in SERVICES}
        self.staff = bearer(config, "admin", user="flow-test")

    def start(self, *names: str) -> None:
        for name in names or SERVICES:
            self.containers[name].start()

    def track(self, created: dict) -> dict:
        response = self.http["tracking"].post("/api/v1/track", json={
            "tracking_code": created["tracking_code"],
            "security_code": created["security_code"]})
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def system(config, container_factory):
    return System(config, container_factory)
