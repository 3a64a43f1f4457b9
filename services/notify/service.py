"""Notify's bus entrypoints: tell the citizen by SMS, exactly once per cause.

For each cause event the message is claimed in the log (`sending`, masked destination), handed to
the provider, then finished as `sent` or `failed` together with its outcome event in one write.
A redelivered event finds the finished entry and sends nothing. The destination is asked from
intake at send time; it never travels in an event and is never stored unmasked.
"""
from __future__ import annotations

import logging

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy

from services.common import metrics
from services.common.events import new_event_id, utcnow
from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.common.relay import OutboxRelay
from services.notify import domain
from services.notify.providers import SmsGateway, SmsProvider
from services.notify.store import NotifyStore

log = logging.getLogger(__name__)
CONTACT_TIMEOUT_SECONDS = 10


class ContactLookupTimeout(Exception):
    """Intake did not say where to reach the citizen in time."""


class Composer(DependencyProvider):
    """The SMS composer (templates + `PUBLIC_BASE_URL`), built at container setup."""

    def setup(self) -> None:
        self.composer = domain.SmsComposer(self.container.config["PUBLIC_BASE_URL"])

    def get_dependency(self, worker_ctx):
        return self.composer


class NotifyService:
    name = "notify"

    store: NotifyStore = Mongo(NotifyStore)
    relay = OutboxRelay("messages")
    sms: SmsProvider = SmsGateway()
    composer: domain.SmsComposer = Composer()
    intake_rpc = RpcProxy("intake")

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        """Send the tracking code and where to look it up."""
        self._send_sms_once(event, "application_received")

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Tell the citizen which unit the application went to."""
        self._send_sms_once(event, "application_routed")

    def _send_sms_once(self, cause: dict, template: str) -> None:
        key = domain.message_key(cause["event_id"], domain.SMS, template)
        existing = self.store.get_message(key)
        if existing is not None and existing["status"] in domain.FINAL:
            return  # a redelivery: already sent (or given up), and said so
        # Render before claiming: a template error must leave nothing half-recorded.
        text = self.composer.compose(template, cause)
        # Bounded: a hung intake must not hold notify's workers; the event is retried instead.
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            contact = self.intake_rpc.get_contact(cause["application_id"]) or {}
        # Only the SMS channel exists so far: the preferred channel cannot be honoured yet.
        phone = contact.get("phone")
        message = domain.new_message(
            key, cause, domain.SMS, template, destination=domain.mask_phone(phone),
            provider=self.sms.name, claim=new_event_id(), now=utcnow(),
        )
        if not self.store.claim(message, domain.SENDING_LEASE):
            return
        if not phone:
            self._finish(message, cause, "no_contact", error=domain.NO_CONTACT)
            return
        try:
            provider_message_id = self.sms.send(phone, text)
        except Exception as exc:
            # The provider refused or failed: record it (class name only, the message may
            # quote the number) rather than retry into a possible second SMS.
            self._finish(message, cause, "failed", error=type(exc).__name__)
            return
        self._finish(message, cause, "sent", provider_message_id=provider_message_id)

    def _finish(self, message: dict, cause: dict, outcome: str, **result: str) -> None:
        fields, event = domain.outcome(message, cause, now=utcnow(), **result)
        recorded = self.store.finish(message["_id"], message["claim"], fields, [event])
        metrics.NOTIFICATIONS.labels(message["channel"], outcome).inc()
        extra = {"application_id": cause["application_id"], "template": message["template"],
                 "channel": message["channel"], "outcome": outcome}
        if not recorded:
            # Our claim was taken over after the lease ran out (a very slow provider call).
            log.warning("message outcome not recorded: claim lost", extra=extra)
        elif outcome == "sent":
            log.info("message sent", extra=extra)
        else:
            log.warning("message not sent", extra=dict(extra, error=fields["error"]))


SERVICE = NotifyService
