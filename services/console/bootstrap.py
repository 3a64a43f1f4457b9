"""The console's composition root: what one console process holds, built once.

`ConsoleParts` opens the console's database, makes its store (indexes created), the login use
cases over it (`Logins`: passwords, TOTP, throttle, sessions), the administrators' account
use cases (`StaffAccounts`), the password resets
(`PasswordResets`) with the relay that publishes their events from the `password_resets`
outbox, and the clients that call intake's, routing's, SLA's, reporting's and tracking's staff
APIs as the signed-in user
(`CONSOLE_<SERVICE>_URL`), and the one that searches their audit logs (KVKK). On a local
database with `CONSOLE_SAMPLE_ACCOUNTS` on, the sample staff list is added (accounts already
there are left alone). The nameko service receives the parts through `Composed(build)`, the
Flask app through `create_app(parts)`.
"""
from __future__ import annotations

import logging

from services.common.bootstrap import Parts
from services.common.config import is_local
from services.console.accounts import StaffAccounts, load_sample_accounts
from services.console.audit_client import AuditClient, sources_of
from services.console.clients import (
    IntakeClient,
    NotifyClient,
    ReportingClient,
    SlaClient,
    TrackingClient,
)
from services.console.logins import Clock, Logins
from services.console.resets import PasswordResets
from services.console.routing_client import RoutingClient
from services.console.store import ConsoleStore

log = logging.getLogger(__name__)


def _on(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class ConsoleParts(Parts):
    """The console's store, login use cases and the clients of the services' staff APIs."""

    store: ConsoleStore
    logins: Logins
    accounts: StaffAccounts
    resets: PasswordResets
    routing: RoutingClient
    intake: IntakeClient
    sla: SlaClient
    reporting: ReportingClient
    tracking: TrackingClient
    notify: NotifyClient
    audit: AuditClient

    def __init__(self, config: dict, clock: Clock | None = None):
        self._clock = clock
        super().__init__(config, "console", relay=("password_resets",))

    def compose(self, config: dict) -> None:
        self.store = ConsoleStore(self.db)
        self.store.ensure_indexes()
        options = {"clock": self._clock} if self._clock else {}
        self.logins = Logins(self.store, config, **options)
        self.accounts = StaffAccounts(self.store, self.logins.hasher)
        self.resets = PasswordResets(self.store, self.logins, config)
        secret = config["STAFF_TOKEN_SECRET"]
        self.routing = RoutingClient(config["CONSOLE_ROUTING_URL"], secret)
        self.intake = IntakeClient(config["CONSOLE_INTAKE_URL"], secret)
        self.sla = SlaClient(config["CONSOLE_SLA_URL"], secret)
        self.reporting = ReportingClient(config["CONSOLE_REPORTING_URL"], secret)
        self.tracking = TrackingClient(config["CONSOLE_TRACKING_URL"], secret)
        self.notify = NotifyClient(config["CONSOLE_NOTIFY_URL"], secret)
        self.audit = AuditClient(sources_of(config), secret)
        if _on(config.get("CONSOLE_SAMPLE_ACCOUNTS", "")):
            if is_local(config["MONGO_URI"]):
                added = load_sample_accounts(self.store, config["CONSOLE_SAMPLE_ACCOUNTS_PATH"],
                                             self.logins.hasher)
                if added:
                    log.info("sample staff accounts added", extra={"count": len(added)})
            else:  # the sample passwords are public: never on a real database
                log.warning("CONSOLE_SAMPLE_ACCOUNTS ignored: the database is not local")

    def close(self) -> None:
        for client in (self.routing, self.intake, self.sla, self.reporting,
                       self.tracking, self.notify, self.audit):
            client.close()
        super().close()


def build(config: dict, clock: Clock | None = None) -> ConsoleParts:
    """The console's parts for this process (`clock`: tests set the time)."""
    return ConsoleParts(config, clock)
