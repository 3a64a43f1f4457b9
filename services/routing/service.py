"""Routing's bus entrypoints: route each received application, publish the outcome."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.common.catalogue import load_categories
from services.common.events import utcnow
from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.common.relay import OutboxRelay
from services.routing import domain
from services.routing.directory import load_directory
from services.routing.store import RoutingStore


class Organisation(DependencyProvider):
    """The directory and the catalogue, read from the data files at container setup."""

    def setup(self) -> None:
        config = self.container.config
        self.directory = load_directory(config["ORGANISATION_PATH"])
        self.catalogue = load_categories(config["CATALOGUE_PATH"])

    def get_dependency(self, worker_ctx):
        return self


class RoutingService:
    name = "routing"

    store: RoutingStore = Mongo(RoutingStore)
    organisation = Organisation()
    relay = OutboxRelay("cases")

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        org = self.organisation
        self.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: domain.open_case(current, event, org.catalogue, org.directory,
                                             utcnow()),
        )


SERVICE = RoutingService
