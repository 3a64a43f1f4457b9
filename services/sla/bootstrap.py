"""SLA's composition root: what one sla process holds, built once.

`SlaParts` opens sla's database, makes its store (indexes created) and the deadlines use case
over it. sla publishes nothing yet, so it has no outbox relay. The nameko service receives the
parts through `Composed(build)`, the Flask app through `create_app(parts)`: both work on the
same objects.
"""
from __future__ import annotations

from services.common.bootstrap import Parts
from services.sla.deadlines import Deadlines
from services.sla.store import SlaStore


class SlaParts(Parts):
    """SLA's store and its deadlines use case."""

    store: SlaStore
    deadlines: Deadlines

    def __init__(self, config: dict):
        super().__init__(config, "sla")

    def compose(self, config: dict) -> None:
        self.store = SlaStore(self.db)
        self.store.ensure_indexes()
        self.deadlines = Deadlines(self.store)


def build(config: dict) -> SlaParts:
    """SLA's parts for this process."""
    return SlaParts(config)
