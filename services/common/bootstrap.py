"""What every service's composition root shares.

Each service has `services/<name>/bootstrap.py`: its `build(config)` opens the service's own
database once per process, makes its store, caches, relay and use cases, and returns them as one
`Parts` object. The nameko service receives it through `Composed(build)` (built at container
setup, its threads run and stopped with the container), and the Flask app receives the same
object from the runner (`create_app(parts_of(container))`). Nothing is shared through module
globals: two compositions in one process (tests, `services.all`) never see each other's state.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import eventlet
import pymongo
from nameko.containers import ServiceContainer
from nameko.extensions import DependencyProvider

from services.common.mongo import has_atomic_guards, open_database, purge_version_claims
from services.common.outbox import Hints
from services.common.relay import OutboxRelay

log = logging.getLogger(__name__)
Spawn = Callable[..., Any]


class Parts:
    """A service's process-wide objects: its database (`db`), its outbox relay when it
    publishes (`relay`), and what the service's own composition adds (stores, use cases).

    On FerretDB it also purges the database's old version claims every
    `CLAIM_PURGE_SECONDS`, as no TTL index can.
    """

    def __init__(self, config: dict, service_name: str, *, relay: tuple[str, ...] = ()):
        self.config = config
        self.service_name = service_name
        self._purger = None
        self.db = open_database(config, service_name, hints=Hints())
        try:
            self.relay = OutboxRelay(self.db, relay, config, service_name) if relay else None
            self.compose(config)
        except BaseException:
            self.db.client.close()  # a failed start must not leave its client open
            raise

    def compose(self, config: dict) -> None:
        """Make the service's own objects on `self.db` (stores, caches, use cases)."""

    def start(self, spawn: Spawn) -> None:
        """Start the background work (the relay, the claim purge) on threads from `spawn`."""
        if self.relay is not None:
            self.relay.start(spawn)
        if not has_atomic_guards(self.db):
            seconds = float(self.config.get("CLAIM_PURGE_SECONDS", 600))
            self._purger = spawn(lambda: self._purge_every(seconds),
                                 identifier="version_claim_purge")

    def _purge_every(self, seconds: float) -> None:
        while True:
            eventlet.sleep(seconds)
            try:
                purge_version_claims(self.db)
            except pymongo.errors.PyMongoError:
                log.warning("purging version claims failed; next round", exc_info=True)

    def stop(self) -> None:
        """Finish the background work: the relay publishes what it holds, then stops."""
        self._stop_purger()
        if self.relay is not None:
            self.relay.stop()

    def kill(self) -> None:
        self._stop_purger()
        if self.relay is not None:
            self.relay.kill()

    def _stop_purger(self) -> None:
        if self._purger is not None:  # it only sleeps and deletes: nothing to finish
            self._purger.kill()
            self._purger = None

    def close(self) -> None:
        """Close the database client (after `stop`; a Flask-only composition just closes)."""
        self.db.client.close()


class Composed(DependencyProvider):
    """Injects the service's `Parts`, built once per container by `build(config)`; their
    threads start and stop with the container's."""

    def __init__(self, build: Callable[[dict], Parts]):
        self.build = build
        self.parts: Parts | None = None

    def setup(self) -> None:
        self.parts = self.build(self.container.config)

    def start(self) -> None:
        self.parts.start(self.container.spawn_managed_thread)

    def stop(self) -> None:
        self.parts.stop()
        self.parts.close()

    def kill(self) -> None:
        if self.parts is not None:  # a container killed before its setup has none
            self.parts.kill()
            self.parts.close()

    def get_dependency(self, worker_ctx) -> Parts:
        return self.parts


def parts_of(container: ServiceContainer) -> Parts:
    """The parts a running container's `Composed` dependency built (for its Flask side)."""
    for extension in container.dependencies:
        if isinstance(extension, Composed):
            return extension.parts
    raise LookupError(f"{container.service_name} has no Composed dependency")
