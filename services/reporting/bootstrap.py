"""Reporting's composition root: what one reporting process holds, built once.

`ReportingParts` opens reporting's database (with the relay that publishes `report_generated`
from the generated files' outbox), makes its store (indexes created) and the reports
use case over it, in the timezone `REPORT_TIMEZONE` names, and a pool of RPC proxies the HTTP
side asks routing's directory through (which institutions are under a caller's, cached a
minute). The nameko service receives the parts through `Composed(build)`, the Flask
app through `create_app(parts)`: both work on the same objects.
"""
from __future__ import annotations

import time

from eventlet.greenpool import GreenPool

from services.common.bootstrap import Parts
from services.common.retention import Retention, RetentionJob, retention_period
from services.common.rpc import RpcPool
from services.reporting.reports import Reports
from services.reporting.retention import ReportingAnonymiser
from services.reporting.store import ReportingStore

FAMILY_TTL_SECONDS = 60
DIRECTORY_TIMEOUT_SECONDS = 5
READ_CONCURRENCY = 16


class ReportingParts(Parts):
    """Reporting's store and its reports use case."""

    store: ReportingStore
    reports: Reports
    rpc: RpcPool

    def __init__(self, config: dict):
        super().__init__(config, "reporting", relay=("report_files",))

    def compose(self, config: dict) -> None:
        self.store = ReportingStore(self.db)
        self.store.ensure_indexes()
        # overlapped reads of summaries and buckets, by `_id` each
        self.reports = Reports(self.store, config.get("REPORT_TIMEZONE"),
                               spawn_map=GreenPool(READ_CONCURRENCY).imap)
        self.rpc = RpcPool(config, size=2, timeout=DIRECTORY_TIMEOUT_SECONDS)
        # KVKK: conclusions as routing announces them, and the job that anonymises the
        # call-back notes after the period (services/common/retention.py)
        self.retention = Retention(self.db)
        self.retention_job = RetentionJob(
            self.retention, ReportingAnonymiser(self.store, config.get("REPORT_TIMEZONE")),
            retention_period(config), service="reporting")
        self._families: dict[str, tuple[float, list[str]]] = {}

    def family(self, institution: str) -> list[str]:
        """`institution` and those under it, from routing's directory (cached a minute;
        raises what the call raised when routing cannot say: the request is answered 503)."""
        cached = self._families.get(institution)
        if cached and time.monotonic() - cached[0] < FAMILY_TTL_SECONDS:
            return cached[1]
        found = self.rpc.call("routing", "institution_family", institution) or [institution]
        self._families[institution] = (time.monotonic(), found)
        return found

    def close(self) -> None:
        self.rpc.close()
        super().close()


def build(config: dict) -> ReportingParts:
    """Reporting's parts for this process."""
    return ReportingParts(config)
