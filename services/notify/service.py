"""Notify's bus entrypoints: tell the citizen by SMS or e-mail, exactly once per cause, and
alert staff of SLA warnings and escalations (their contact from routing's directory).

For each cause event the message is claimed in the log (`sending`, masked destination) by
inserting it under the cause's id and template — of any number of concurrent deliveries, one
insert succeeds and one message goes out — handed to the provider, then finished as `sent` or
`failed` together with its outcome event in one write.
A redelivered event finds the finished entry and sends nothing. The destination is asked from
intake at send time; it never travels in an event and is never stored unmasked. The channel is
chosen then too: an application that came in by SMS or e-mail is answered there, others on the
citizen's preferred channel; a refused inbound message is answered where it came from.

The entrypoints only resolve the recipient through intake; sending once, waiting for another
sender's claim and recording through a database outage are `sending.Deliveries`' (see there),
built once per process by `bootstrap.NotifyParts`.
"""
from __future__ import annotations

import logging

import eventlet
from nameko.rpc import RpcProxy, rpc

from services.common.bootstrap import Composed
from services.common.handlers import event_handler
from services.notify import bootstrap, domain
from services.notify.bootstrap import NotifyParts
from services.notify.sending import Lookup

log = logging.getLogger(__name__)
CONTACT_TIMEOUT_SECONDS = 10


class ContactLookupTimeout(Exception):
    """Intake did not say where to reach the citizen in time."""


class NotifyService:
    name = "notify"

    parts: NotifyParts = Composed(bootstrap.build)
    intake_rpc = RpcProxy("intake")
    routing_rpc = RpcProxy("routing")

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        """Send the tracking code (and the security code, when the applicant never saw the
        answer) on the channel the application came in by, else the preferred one."""
        self.parts.deliveries.send_once(event, "application_received", self._applicant(event))

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Tell the citizen which unit the application went to."""
        self.parts.deliveries.send_once(event, "application_routed", self._applicant(event))

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """Tell the caller of a duplicate the original's tracking code."""
        self.parts.deliveries.send_once(event, "application_merged", self._applicant(event))

    @event_handler("intake", "inbound_rejected")
    def handle_inbound_rejected(self, event: dict) -> None:
        """Answer an SMS / e-mail that could not become an application: what was wrong."""
        self.parts.deliveries.send_once(event, "inbound_rejected", self._sender(event))

    @event_handler("sla", "delay_notice_due")
    def handle_delay_notice_due(self, event: dict) -> None:
        """Seed 001: not solved in 48 hours — tell the citizen it is with the units."""
        self.parts.deliveries.send_once(event, "delay_notice_due", self._applicant(event))

    @event_handler("sla", "case_escalated")
    def handle_case_escalated(self, event: dict) -> None:
        """Seed 004: a late case reached the next person on the ladder — tell them."""
        data = event["data"]
        self.parts.deliveries.send_once(
            event, "case_escalated",
            self._staff(data.get("to_staff"), data.get("unit"), data["to_level"]))

    @event_handler("sla", "sla_warned")
    def handle_sla_warned(self, event: dict) -> None:
        """Seed 004: the unit's expert is warned before the deadline."""
        data = event["data"]
        self.parts.deliveries.send_once(event, "sla_warned",
                                        self._staff(None, data.get("unit"), 0))

    @rpc
    def send_one_time_code(self, citizen_ref: str, code: str) -> bool:
        """Send a muhtar portal login code by SMS to the person's registered phone.

        Tracking calls this. The phone is asked from intake at send time; the code is neither
        stored nor logged here (the log line names the masked number only). False when there
        is no phone to send to or the provider refused.
        """
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            contact = self.intake_rpc.get_citizen_contact(citizen_ref) or {}
        return self.parts.deliveries.send_one_time_code(contact.get("phone"), code)

    # The recipient is asked from intake only when a message is to be sent (a redelivery of a
    # finished one asks nothing). Bounded: a hung intake must not hold notify's workers; the
    # event is retried instead.

    def _applicant(self, cause: dict) -> Lookup:
        def lookup() -> domain.Recipient:
            with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
                contact = self.intake_rpc.get_contact(cause["application_id"]) or {}
            return domain.applicant(cause, contact)

        return lookup

    def _staff(self, code: str | None, unit: str | None, level: int) -> Lookup:
        """The staff member `code`, or whoever routing's directory puts at `level` of the
        unit's ladder (sla names nobody when it could not ask)."""
        def lookup() -> domain.Recipient:
            with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
                who = code
                if who is None and unit:
                    ladder = self.routing_rpc.escalation_ladder(unit)
                    who = ladder[level] if level < len(ladder) else None
                contact = self.routing_rpc.staff_contact(who) if who else None
            return domain.staff_member(contact)

        return lookup

    def _sender(self, cause: dict) -> Lookup:
        def lookup() -> domain.Recipient:
            with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
                found = self.intake_rpc.get_inbound_contact(cause["data"]["inbound_id"]) or {}
            return domain.inbound_sender(found)

        return lookup


SERVICE = NotifyService
