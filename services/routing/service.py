"""Routing's bus entrypoints: route each received application, reopen on the citizen's request,
carry the escalation level sla decides. Every handler folds into the case exactly once. The relay
publishes the case events and the `category_saved` events of admin catalogue changes."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.common.events import utcnow
from services.common.handlers import event_handler
from services.common.mongo import Mongo, get_database
from services.common.relay import OutboxRelay
from services.routing import cases, domain
from services.routing.organisation import OrganisationCache, organisation_for
from services.routing.store import RoutingStore


class Organisation(DependencyProvider):
    """The process's directory and catalogue (shared with the Flask side), seeded at setup."""

    def setup(self) -> None:
        config = self.container.config
        store = RoutingStore(get_database(config, self.container.service_name))
        self.cache: OrganisationCache = organisation_for(store, config)

    def get_dependency(self, worker_ctx) -> OrganisationCache:
        return self.cache


class RoutingService:
    name = "routing"

    store: RoutingStore = Mongo(RoutingStore)
    organisation: OrganisationCache = Organisation()
    # cases carry the case events; directory_categories the admin's `category_saved`
    relay = OutboxRelay("cases", "directory_categories")

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        org = self.organisation.current()
        self.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: domain.open_case(current, event, org.catalogue, org.directory,
                                             utcnow()),
        )

    @event_handler("tracking", "reopen_requested")
    def handle_reopen_requested(self, event: dict) -> None:
        org = self.organisation.current()
        self.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: cases.reopen(current, event, org, utcnow()),
        )

    @event_handler("sla", "case_escalated")
    def handle_case_escalated(self, event: dict) -> None:
        self.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: cases.escalate(current, event, utcnow()),
        )


SERVICE = RoutingService
