"""SLA's composition root: what one sla process holds, built once.

`SlaParts` opens sla's database, makes its store (indexes created, the sweep cursor in place),
an RPC pool to ask routing who stands on a unit's escalation ladder, the deadlines use case,
and the relay that publishes what the clocks emit (`clocks` outbox). The nameko service
receives the parts through `Composed(build)`, the Flask app through `create_app(parts)`: both
work on the same objects.
"""
from __future__ import annotations

from datetime import timedelta

from services.common.bootstrap import Parts
from services.common.events import utcnow
from services.common.rpc import RpcPool
from services.sla.deadlines import Deadlines
from services.sla.store import SlaStore

DIRECTORY_TIMEOUT_SECONDS = 2.0


class SlaParts(Parts):
    """SLA's store, its deadlines use case, the RPC pool to routing, and its relay."""

    store: SlaStore
    deadlines: Deadlines
    rpc: RpcPool

    def __init__(self, config: dict):
        super().__init__(config, "sla", relay=("clocks",))

    def compose(self, config: dict) -> None:
        self.store = SlaStore(self.db, timedelta(seconds=float(config["SLA_CLAIM_LEASE_SECONDS"])))
        self.store.ensure_indexes()
        self.store.ensure_cursor(utcnow())
        # Short: a routing that is slow to answer must not hold sla's handlers or sweep (both
        # go on without the answer, see `Deadlines.ladder` and `institutions_over`).
        self.rpc = RpcPool(config, size=4, timeout=DIRECTORY_TIMEOUT_SECONDS)
        self.deadlines = Deadlines(self.store, self._ladder, ancestry=self._ancestry)

    def _ladder(self, unit: str) -> list[str | None]:
        return self.rpc.call("routing", "escalation_ladder", unit)

    def _ancestry(self, institution: str) -> list[str]:
        return self.rpc.call("routing", "institution_ancestry", institution)

    def close(self) -> None:
        self.rpc.close()
        super().close()


def build(config: dict) -> SlaParts:
    """SLA's parts for this process."""
    return SlaParts(config)
