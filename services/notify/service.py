"""Notify's bus entrypoints: tell the citizen by SMS or e-mail, exactly once per cause.

For each cause event the message is claimed in the log (`sending`, masked destination) by
inserting it under the cause's id and template — of any number of concurrent deliveries, one
insert succeeds and one message goes out — handed to the provider, then finished as `sent` or
`failed` together with its outcome event in one write.
A redelivered event finds the finished entry and sends nothing. The destination is asked from
intake at send time; it never travels in an event and is never stored unmasked. The channel is
chosen then too: an application that came in by SMS or e-mail is answered there, others on the
citizen's preferred channel; a refused inbound message is answered where it came from.
"""
from __future__ import annotations

import logging

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc

from services.common import metrics
from services.common.events import new_event_id, utcnow
from services.common.handlers import event_handler
from services.common.mongo import Mongo
from services.common.relay import OutboxRelay
from services.notify import domain
from services.notify.providers import EmailGateway, EmailProvider, SmsGateway, SmsProvider
from services.notify.store import NotifyStore

log = logging.getLogger(__name__)
CONTACT_TIMEOUT_SECONDS = 10


class ContactLookupTimeout(Exception):
    """Intake did not say where to reach the citizen in time."""


class Composer(DependencyProvider):
    """The SMS composer (templates + `PUBLIC_BASE_URL`), built at container setup."""

    def setup(self) -> None:
        config = self.container.config
        self.composer = domain.SmsComposer(config["PUBLIC_BASE_URL"],
                                           link_secret=config.get("LINK_SECRET"))

    def get_dependency(self, worker_ctx):
        return self.composer


class NotifyService:
    name = "notify"

    store: NotifyStore = Mongo(NotifyStore)
    relay = OutboxRelay("messages")
    sms: SmsProvider = SmsGateway()
    email: EmailProvider = EmailGateway()
    composer: domain.SmsComposer = Composer()
    intake_rpc = RpcProxy("intake")

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        """Send the tracking code (and the security code, when the applicant never saw the
        answer) on the channel the application came in by, else the preferred one."""
        self._send_once(event, "application_received")

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Tell the citizen which unit the application went to."""
        self._send_once(event, "application_routed")

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """Tell the caller of a duplicate the original's tracking code."""
        self._send_once(event, "application_merged")

    @event_handler("intake", "inbound_rejected")
    def handle_inbound_rejected(self, event: dict) -> None:
        """Answer an SMS / e-mail that could not become an application: what was wrong."""
        self._send_once(event, "inbound_rejected", inbound=True)

    @rpc
    def send_one_time_code(self, citizen_ref: str, code: str) -> bool:
        """Send a muhtar portal login code by SMS to the person's registered phone.

        Tracking calls this. The phone is asked from intake at send time; the code is neither
        stored nor logged here (the log line names the masked number only). False when there
        is no phone to send to or the provider refused.
        """
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            contact = self.intake_rpc.get_citizen_contact(citizen_ref) or {}
        phone = contact.get("phone")
        if not phone:
            metrics.NOTIFICATIONS.labels(domain.SMS, "no_contact").inc()
            log.warning("one-time code not sent", extra={"outcome": "no_contact"})
            return False
        text = self.composer.render(domain.SMS, "one_time_code", {"code": code})
        try:
            self.sms.send(phone, text)
        except Exception as exc:
            metrics.NOTIFICATIONS.labels(domain.SMS, "failed").inc()
            log.warning("one-time code not sent", extra={"outcome": "failed",
                                                         "error": type(exc).__name__})
            return False
        metrics.NOTIFICATIONS.labels(domain.SMS, "sent").inc()
        log.info("one-time code sent", extra={"destination": domain.mask_phone(phone)})
        return True

    def _send_once(self, cause: dict, template: str, *, inbound: bool = False) -> None:
        """One message per cause event and template, on the channel chosen at send time.

        The destination (and a security code still owed) is asked from intake when sending;
        for a refused inbound message it is the address the message came from.
        """
        key = domain.message_key(cause["event_id"], template)
        existing = self.store.get_message(key)
        if existing is not None and existing["status"] in domain.FINAL:
            return  # a redelivery: already sent (or given up), and said so
        # Bounded: a hung intake must not hold notify's workers; the event is retried instead.
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            if inbound:
                found = self.intake_rpc.get_inbound_contact(cause["data"]["inbound_id"]) or {}
                channel, address = found.get("channel") or domain.SMS, found.get("address")
                contact = {"subject": found.get("subject")}
            else:
                contact = self.intake_rpc.get_contact(cause["application_id"]) or {}
                channel, address = domain.choose_channel(cause, contact)
        # Render before claiming: a template error must leave nothing half-recorded.
        context = domain.message_context(template, cause, self.composer.base_url, contact)
        subject, text = domain.render_message(self.composer, channel, template, context)
        provider = self.sms if channel == domain.SMS else self.email
        message = domain.new_message(
            key, cause, channel, template,
            destination=domain.mask_destination(channel, address), provider=provider.name,
            claim=new_event_id(), now=utcnow(),
        )
        if not self.store.claim(message, domain.SENDING_LEASE):
            return
        if not address:
            self._finish(message, cause, "no_contact", error=domain.NO_CONTACT)
            return
        try:
            if channel == domain.SMS:
                provider_message_id = self.sms.send(address, text)
            else:
                provider_message_id = self.email.send(address, subject, text)
        except Exception as exc:
            # class name only: a provider's message may quote the address
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
