"""Notify's bus entrypoints: tell the citizen of every step by SMS or e-mail, and staff of a new
case, a warning and an escalation by SMS and e-mail, exactly once per cause and recipient.

Who is told of what (design §5 events; issue 11):

| cause | the citizen | staff |
|---|---|---|
| application_received | the codes | |
| application_routed | forwarded (a muhtar: the muhtar's text) | the unit's experts: a new case |
| application_referred | referred, and how to reach the institution | |
| case_transferred | transferred | the new unit's experts: a new case |
| case_returned | | the unit it came back to: a new case |
| case_waiting | what is needed | |
| case_closed | concluded: result, reopen link, survey (a muhtar: the muhtar's text) | |
| case_reopened / case_reopen_refused | reopened / refused and why | |
| delay_notice_due | the 48-hour notice | |
| sla_warned | | the unit's primary and backup expert |
| case_escalated | | the person on the ladder |
| satisfaction_recorded (by SMS) | thanks | |
| application_merged, inbound_rejected | the original's code; what was wrong | |
| 08:00 each day | | each institution's head: the open cases at the top of the ladder |
| report_generated | | supervisor (weekly), director or head (monthly): the file, by e-mail |
| staff_password_reset_requested (console) | | the account holder: the reset link, by e-mail |

The recipient is resolved here, at send time: a citizen through intake (the destination never
travels in an event and is never stored unmasked), staff through routing's directory, a
password reset's address and link through the console (`password_reset_message`, answered only
while the reset is live: the event carries neither). Sending
once, holding for the quiet hours or a retry, opt-outs and recording through a database outage
are `sending.Deliveries`' (see there), built once per process by `bootstrap.NotifyParts`.
A nameko timer releases the messages held for later.
"""
from __future__ import annotations

import logging

import eventlet
from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from services.common.bootstrap import Composed
from services.common.events import utcnow
from services.common.handlers import event_handler
from services.common.retention import RUN_SECONDS as RETENTION_SECONDS
from services.notify import bootstrap, domain
from services.notify.bootstrap import NotifyParts

log = logging.getLogger(__name__)
CONTACT_TIMEOUT_SECONDS = 10
RELEASE_SECONDS = 15
DIGEST_SECONDS = 60
DIGEST_TIMEOUT_SECONDS = 60
APPLICANT = {"to": "applicant"}
SENDER = {"to": "sender"}


class ContactLookupTimeout(Exception):
    """Intake or routing did not say where to reach someone in time."""


class NotifyService:
    name = "notify"

    parts: NotifyParts = Composed(bootstrap.build)
    intake_rpc = RpcProxy("intake")
    routing_rpc = RpcProxy("routing")
    sla_rpc = RpcProxy("sla")
    console_rpc = RpcProxy("console")

    # -- the citizen -------------------------------------------------------------------------

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        """Send the tracking code (and the security code, when the applicant never saw the
        answer) on the channel the application came in by, else the preferred one."""
        self._tell_applicant(event, "application_received")

    @event_handler("routing", "application_routed")
    def handle_application_routed(self, event: dict) -> None:
        """Tell the citizen which unit the application went to, and the unit's experts that
        a new case is in their inbox."""
        self._tell_applicant(event, "application_routed")
        self._tell_unit(event, "case_assigned", event["data"]["unit"])

    @event_handler("routing", "application_referred")
    def handle_application_referred(self, event: dict) -> None:
        """Tell the citizen which outside institution has their application, and how to reach
        it."""
        self._tell_applicant(event, "application_referred")

    @event_handler("routing", "case_transferred")
    def handle_case_transferred(self, event: dict) -> None:
        self._tell_applicant(event, "case_transferred")
        if event["data"].get("unit"):
            self._tell_unit(event, "case_assigned", event["data"]["unit"])

    @event_handler("routing", "case_returned")
    def handle_case_returned(self, event: dict) -> None:
        """A case came back to a unit (the coordination centre): its experts are told."""
        if event["data"].get("unit"):
            self._tell_unit(event, "case_assigned", event["data"]["unit"])

    @event_handler("routing", "case_waiting")
    def handle_case_waiting(self, event: dict) -> None:
        """The unit needs something from the citizen: say what."""
        self._tell_applicant(event, "case_waiting")

    @event_handler("routing", "case_closed")
    def handle_case_closed(self, event: dict) -> None:
        """Seed 002: concluded, with the result, the link to every step and to reopen, and the
        satisfaction survey."""
        # KVKK: the log's period starts now (recorded first: a failed send retries both)
        self.parts.retention.record(event)
        self._tell_applicant(event, "case_closed")

    @event_handler("routing", "case_reopened")
    def handle_case_reopened(self, event: dict) -> None:
        self.parts.retention.record(event)
        self._tell_applicant(event, "case_reopened")

    @event_handler("routing", "case_reopen_refused")
    def handle_case_reopen_refused(self, event: dict) -> None:
        self._tell_applicant(event, "case_reopen_refused")

    @event_handler("sla", "delay_notice_due")
    def handle_delay_notice_due(self, event: dict) -> None:
        """Seed 001: not solved in 48 hours — tell the citizen it is with the units."""
        self._tell_applicant(event, "delay_notice_due")

    @event_handler("tracking", "satisfaction_recorded")
    def handle_satisfaction_recorded(self, event: dict) -> None:
        """A rating given by SMS reply is acknowledged by SMS (the web page shows its own)."""
        if event["data"].get("source") == "sms":
            self._tell_applicant(event, "satisfaction_thanks")

    @event_handler("intake", "application_merged")
    def handle_application_merged(self, event: dict) -> None:
        """Tell the caller of a duplicate the original's tracking code."""
        self._tell_applicant(event, "application_merged")

    @event_handler("intake", "inbound_rejected")
    def handle_inbound_rejected(self, event: dict) -> None:
        """Answer an SMS / e-mail that could not become an application: what was wrong."""
        self.parts.deliveries.send_once(event, "inbound_rejected", SENDER, self._resolve)

    # -- staff -------------------------------------------------------------------------------

    @event_handler("sla", "sla_warned")
    def handle_sla_warned(self, event: dict) -> None:
        """Seed 004: the unit's experts are warned before the deadline."""
        if event["data"].get("unit"):
            self._tell_unit(event, "sla_warned", event["data"]["unit"])

    @event_handler("sla", "case_escalated")
    def handle_case_escalated(self, event: dict) -> None:
        """Seed 004: a late case reached the next person on the ladder — tell them."""
        data = event["data"]
        if data.get("to_staff"):
            people = [{"code": data["to_staff"], "position": data.get("to_role")}]
        elif data.get("unit"):
            people = self._ladder(data["unit"], data["to_level"])[:1]
        else:
            people = []
        self._tell_staff(event, "case_escalated", people)

    @event_handler("reporting", "report_generated")
    def handle_report_generated(self, event: dict) -> None:
        """Seed 004: a unit's weekly report to its supervisor, a unit's monthly report to its
        director, an institution's monthly report to its head; by e-mail (it is a file)."""
        data = event["data"]
        if data["scope_type"] == "unit":
            people = self._ladder(data["scope"], 1 if data["kind"] == "weekly" else 2)[:1]
        else:
            with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
                heads = self.routing_rpc.institution_heads()
            people = [{"code": head["code"], "position": "head"} for head in heads
                      if head["institution"] == data["scope"]]
        self._tell_staff(event, "report_ready", people, channels=(domain.EMAIL,))

    @event_handler("console", "staff_password_reset_requested")
    def handle_staff_password_reset_requested(self, event: dict) -> None:
        """A staff member asked for a password reset link: e-mail it to their account's
        address (both asked from the console at send time; none once the reset is spent)."""
        self.parts.deliveries.send_once(event, "staff_password_reset", {"to": "reset"},
                                        self._resolve)

    # -- what others ask of notify -----------------------------------------------------------

    @rpc
    def send_one_time_code(self, citizen_ref: str, code: str) -> bool:
        """Send a muhtar portal login code by SMS to the person's registered phone.

        Tracking calls this. The phone is asked from intake at send time; the code is neither
        stored nor logged here (the log line names the masked number only). False when there
        is no phone to send to or the provider refused.
        """
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            contact = self.intake_rpc.get_citizen_contact(citizen_ref) or {}
        return self.parts.deliveries.send_one_time_code(
            contact.get("phone"), code, domain.language_of(contact))

    @rpc
    def set_opt_out(self, citizen_ref: str, opted_out: bool, source: str) -> None:
        """Record a citizen's choice (intake's "IPTAL" / "BAŞLAT" SMS, staff on their behalf):
        opted out, they get only the codes."""
        self.parts.deliveries.set_opt_out(citizen_ref, bool(opted_out), source)

    @timer(interval=RETENTION_SECONDS)
    def anonymise_expired(self) -> None:
        """KVKK: anonymise the log of applications concluded more than the period ago."""
        self.parts.retention_job.run()

    @timer(interval=RELEASE_SECONDS)
    def release_held(self) -> None:
        """Send what the quiet hours or a provider's outage held, now that its time came."""
        taken = self.parts.deliveries.release_due(self._resolve)
        if taken:
            log.info("held messages released", extra={"count": taken})

    @timer(interval=DIGEST_SECONDS)
    def morning_digest(self) -> None:
        """From 08:00 Istanbul, once a day: each institution head (the mayor's, the governor's
        office) gets the list of open cases that reached the top of the ladder, by SMS and
        e-mail (none when nothing did). Each digest is one message per day and recipient, so
        two notify processes send it once."""
        deliveries = self.parts.deliveries
        day = domain.digest_day(deliveries.clock())
        if day is None or deliveries.store.digest_done(day.isoformat()):
            return
        with eventlet.Timeout(DIGEST_TIMEOUT_SECONDS, ContactLookupTimeout):
            heads = self.routing_rpc.institution_heads()
            lists = {head["institution"]: self.sla_rpc.top_of_ladder(head["institution"])
                     for head in heads}
        for head in heads:
            items = lists[head["institution"]]
            if items:
                cause = domain.digest_cause(day, head["institution"], items, utcnow())
                self._tell_staff(cause, "mayor_digest",
                                 [{"code": head["code"], "position": "head"}])
        deliveries.store.mark_digest_done(day.isoformat(), utcnow())
        log.info("morning digest sent", extra={"institutions": sum(map(bool, lists.values()))})

    # -- recipients --------------------------------------------------------------------------

    def _tell_applicant(self, event: dict, template: str) -> None:
        self.parts.deliveries.send_once(event, template, APPLICANT, self._resolve)

    def _tell_unit(self, event: dict, template: str, unit: str) -> None:
        """The unit's primary and backup expert (ladder level 0)."""
        self._tell_staff(event, template, self._ladder(unit, 0))

    def _tell_staff(self, event: dict, template: str, people: list[dict],
                    channels: tuple[str, ...] = domain.CHANNELS) -> None:
        """Each of `people` on `channels` (SMS and e-mail), as the directory has them; one
        message per person and channel. Nobody to tell is logged, not retried (the directory
        names no one at that level)."""
        if not people:
            log.warning("no staff to alert", extra={"application_id": event["application_id"],
                                                    "template": template})
        for person in people:
            role = "backup" if person.get("position") == "backup" else "primary"
            with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
                contact = self.routing_rpc.staff_contact(person["code"])
            for tag, recipient in domain.staff_recipients(person["code"], contact):
                if recipient.channel not in channels:
                    continue
                spec = {"to": "staff", "code": person["code"], "channel": tag.rsplit(":", 1)[1],
                        "role": role}
                self.parts.deliveries.send_once(event, template, spec, self._resolve, tag=tag)

    def _ladder(self, unit: str, level: int) -> list[dict]:
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            return self.routing_rpc.ladder_staff(unit, level) or []

    def _resolve(self, cause: dict, spec: dict) -> domain.Recipient:
        """The recipient `spec` names, asked now (bounded: a hung intake or routing must not
        hold notify's workers; the event is retried instead)."""
        with eventlet.Timeout(CONTACT_TIMEOUT_SECONDS, ContactLookupTimeout):
            if spec["to"] == "staff":
                contact = self.routing_rpc.staff_contact(spec["code"])
                for tag, recipient in domain.staff_recipients(
                        spec["code"], contact, {"role": spec.get("role", "primary")}):
                    if tag.endswith(f":{spec['channel']}"):
                        return recipient
                return domain.Recipient(spec["channel"], None, staff=True)
            if spec["to"] == "reset":
                return domain.reset_recipient(self.console_rpc.password_reset_message(
                    cause["data"]["reset_id"]))
            if spec["to"] == "sender":
                found = self.intake_rpc.get_inbound_contact(cause["data"]["inbound_id"]) or {}
                return domain.inbound_sender(found)
            contact = self.intake_rpc.get_contact(cause["application_id"]) or {}
        return domain.applicant(cause, contact, cause["type"])


SERVICE = NotifyService
