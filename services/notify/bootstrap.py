"""Notify's composition root: what one notify process holds, built once.

`NotifyParts` opens notify's database, makes its store (indexes created), the SMS and e-mail
providers `SMS_PROVIDER` / `EMAIL_PROVIDER` name, the composer of message texts (with the
administrators' overrides of the templates, `overrides`), the `Deliveries` use case over
them (with this process's memory of its own ended claims), the read scope its staff API asks
routing for (`may_read`, on a small RPC pool), and the relay that publishes the `messages`
outbox (`notification_sent` / `_failed`). The nameko service receives it through
`Composed(build)`, the Flask app through `create_app(parts)`: both work on the same objects.
"""
from __future__ import annotations

import functools

from services.common.bootstrap import Parts
from services.common.retention import Retention, RetentionJob, retention_period
from services.common.rpc import RpcPool
from services.common.scope import ReadScope
from services.notify import domain
from services.notify.overrides import OverrideCache, TemplateOverrides
from services.notify.providers import (
    EmailProvider,
    SmsProvider,
    build_email_provider,
    build_sms_provider,
)
from services.notify.retention import NotifyAnonymiser
from services.notify.sending import Deliveries
from services.notify.store import NotifyStore

# A staff read of a delivery log waits this long for routing to say whether the application is
# in the reader's scope, then is answered 503.
SCOPE_TIMEOUT_SECONDS = 3.0


def send_timing(config: dict) -> domain.SendTiming:
    """The send timing, defaults unless `NOTIFY_PROVIDER_TIMEOUT_SECONDS` /
    `NOTIFY_RECORD_SECONDS` say otherwise (a slower provider; the tests' short outages)."""
    defaults = domain.SendTiming()
    return domain.SendTiming(
        provider_timeout=float(config.get("NOTIFY_PROVIDER_TIMEOUT_SECONDS")
                               or defaults.provider_timeout),
        record_seconds=float(config.get("NOTIFY_RECORD_SECONDS") or defaults.record_seconds),
    )


class NotifyParts(Parts):
    """Notify's store, providers, composer and delivery use case, and its relay."""

    store: NotifyStore
    sms: SmsProvider
    email: EmailProvider
    composer: domain.Composer
    deliveries: Deliveries
    routing_rpc: RpcPool
    read_scope: ReadScope
    override_cache: OverrideCache
    templates: TemplateOverrides

    def __init__(self, config: dict):
        # The providers first: an unknown one stops the start before any client is opened.
        sms = build_sms_provider(config)
        email = build_email_provider(config)
        self.sms, self.email = sms, email
        super().__init__(config, "notify", relay=("messages",))

    def compose(self, config: dict) -> None:
        self.store = NotifyStore(self.db)
        self.store.ensure_indexes()
        # administrators' texts replacing template files (issue 13), read every few seconds
        self.override_cache = OverrideCache(self.store)
        self.templates = TemplateOverrides(self.store, self.override_cache)
        self.composer = domain.Composer(config["PUBLIC_BASE_URL"],
                                        link_secret=config.get("LINK_SECRET"),
                                        overrides=self.override_cache)
        self.deliveries = Deliveries(self.store, self.sms, self.email, self.composer,
                                     send_timing(config),
                                     quiet=domain.QuietHours.parse(config["NOTIFY_QUIET_HOURS"]))
        # staff reads of a delivery log ask routing who holds the application (issue 13)
        self.routing_rpc = RpcPool(config, size=2, timeout=SCOPE_TIMEOUT_SECONDS)
        self.read_scope = ReadScope(functools.partial(self.routing_rpc.call, "routing",
                                                      "may_read"))
        # KVKK: conclusions as routing announces them, and the job that anonymises the log
        # after the period (services/common/retention.py)
        self.retention = Retention(self.db)
        self.retention_job = RetentionJob(self.retention, NotifyAnonymiser(self.store),
                                          retention_period(config), service="notify")


    def close(self) -> None:
        """Stop the RPC pool's proxies, then close the database client."""
        self.routing_rpc.close()
        super().close()


def build(config: dict) -> NotifyParts:
    """Notify's parts for this process."""
    return NotifyParts(config)
