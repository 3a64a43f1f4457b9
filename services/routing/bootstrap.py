"""Routing's composition root: the one place a routing process builds its objects.

`build(config)` opens routing's own database (with the outbox hints its relay reads), makes the
store (indexes ensured), the relay of the `cases` and `directory_categories` outboxes, and the
organisation cache (seeded from the data files when the database holds no directory yet). The
nameko service gets them through `Composed(build)`; the Flask app gets the same object from the
runner (`web.create_app(parts_of(container))`). Both sides therefore decide with one in-memory
directory: an admin change answered over HTTP is what the next bus decision uses, and a case
action's events are hinted to the relay that runs in the same process.
"""
from __future__ import annotations

from services.common.bootstrap import Parts
from services.routing.organisation import OrganisationCache
from services.routing.store import RoutingStore

# The outboxes routing's relay publishes: the case events, and the `category_saved` events that
# admin catalogue changes store with the category they change.
RELAYED = ("cases", "directory_categories")


class RoutingParts(Parts):
    """Routing's process-wide objects, each built once.

    - `db` (from `Parts`): routing's own database, on a client of its own;
    - `relay` (from `Parts`): publishes the outboxes of `RELAYED`;
    - `store`: cases, inboxes and the stored directory and catalogue;
    - `organisation`: the directory and catalogue decisions are made with, started (seeded).
    """

    store: RoutingStore
    organisation: OrganisationCache

    def __init__(self, config: dict):
        super().__init__(config, "routing", relay=RELAYED)

    def compose(self, config: dict) -> None:
        self.store = RoutingStore(self.db)
        self.store.ensure_indexes()
        self.organisation = OrganisationCache(self.store, config)
        # seeding at build time: a bad data file stops the process at start-up, not at the
        # first application it should have routed
        self.organisation.start()


def build(config: dict) -> RoutingParts:
    """Routing's parts for one process (`Composed(build)`, tests, scripts)."""
    return RoutingParts(config)
