"""Notify's use cases: one message per cause, sent exactly once; a one-time code; the log.

`Deliveries.send_once`, step by step:

1. A redelivered cause whose message is finished (`sent` / `failed`) sends nothing and asks
   intake nothing.
2. The recipient is resolved (the entrypoint's lookup asks intake, at send time) and the text
   rendered before anything is recorded: a template error leaves nothing half-done.
3. The message is *claimed*: inserted as `sending` under its key with a fresh claim id
   (`NotifyStore.claim`); of any number of concurrent deliveries, one insert wins.
4. The provider is called, for at most `SendTiming.provider_timeout` (a call given up is
   recorded as failed, never tried again: the provider may have sent it).
5. The outcome and its event are recorded in one write, if our claim still holds.

Why a database outage neither loses nor doubles a message (`benchmarks.faults`,
`stop-database`). Before, a sender cut off between steps 3 and 5 raised and left a fresh claim
behind; every retry of its event (`EVENT_MAX_ATTEMPTS` × `EVENT_RETRY_DELAY_MS`, seconds) met
that claim, fresh for its 5-minute lease, and the event was dead-lettered with
`MessageInFlight` — the SMS sent but never recorded, or, when the claim's own write was what
failed, never sent at all. Now:

- The sender records its outcome within its own run. With the provider's answer in hand it
  keeps trying to write it until `record_until` after claiming (a database restart, a version
  claim an interrupted write left), instead of raising and leaving the claim to the retries.
- The lease fits the sender (`SendTiming.lease`: provider timeout, recording time, margin;
  a minute, was five): a claim older than that has no live sender and is taken over.
- A delivery that meets a fresh claim held by someone else waits for it within its run —
  reading the message by `_id` every `poll_seconds` — until it is finished (nothing to do) or
  lapses (taken over, then sent), instead of raising at once: the bus's few quick retries
  were each spent on a claim that could not lapse in time.
- A process remembers its own claims whose sender ended leaving them in `sending`
  (`EndedClaims`): one whose sender failed before handing anything to a provider (its claim's
  write raised, yet may have been stored) is taken over at once by the event's retry — no
  wait for the lease; one whose outcome could not be recorded in time is recorded by the
  retry from what the sender kept — never sent again, however long the database was away.

What stays at-least-once here: a sender process that died (kill -9) between steps 3 and 5 — its
claim is taken over after the lease — and, with several replicas, an outcome unrecorded for
longer than `record_seconds` whose event's retry lands on another replica after the lease. The
message is then handed over again with the same `reference` (its key), so a provider that keeps
client references sends it once (`providers`).
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import eventlet
from pymongo.errors import PyMongoError

from services.common import metrics
from services.common.events import new_event_id, utcnow
from services.common.outbox import ConcurrentUpdate
from services.notify import domain
from services.notify.providers import EmailProvider, SmsProvider
from services.notify.store import MessageInFlight, NotifyStore

log = logging.getLogger(__name__)
ENDED_CAPACITY = 10_000
# What a database away raises: pymongo's errors, and `modify` giving up on a document whose
# version claim an interrupted write left behind (it lapses in `mongo.CLAIM_LEASE`).
DATABASE_AWAY = (PyMongoError, ConcurrentUpdate)

Lookup = Callable[[], domain.Recipient]


class ProviderTimeout(Exception):
    """The provider did not answer within `SendTiming.provider_timeout`."""


@dataclass(frozen=True)
class Unrecorded:
    """An outcome its sender could not record: the message, its fields and event, the name
    it is counted under."""

    message: dict
    cause: dict
    fields: dict
    event: dict
    outcome: str


UNSENT = "unsent"  # the sender ended before handing anything to a provider
Ended = Unrecorded | str


class EndedClaims:
    """This process's claims whose sender ended while the message may still be `sending`.

    Claim ids are fresh random ids, so one found here is ours, and its sender is done: an
    entry is made as it raises. Oldest entries are dropped past `capacity` (the retry then
    waits for the lease, as for another process's claim).
    """

    def __init__(self, capacity: int = ENDED_CAPACITY):
        self.capacity = capacity
        self._ended: OrderedDict[str, Ended] = OrderedDict()

    def add(self, claim: str, ended: Ended) -> None:
        self._ended[claim] = ended
        while len(self._ended) > self.capacity:
            self._ended.popitem(last=False)

    def get(self, claim: str | None) -> Ended | None:
        return self._ended.get(claim) if claim else None

    def unsent(self, claim: str) -> bool:
        return self._ended.get(claim) == UNSENT

    def forget(self, claim: str) -> None:
        self._ended.pop(claim, None)

    def __len__(self) -> int:
        return len(self._ended)


class Deliveries:
    """Sends citizens' messages through the providers, once per cause; reads the log."""

    def __init__(self, store: NotifyStore, sms: SmsProvider, email: EmailProvider,
                 composer: domain.SmsComposer, timing: domain.SendTiming | None = None):
        self.store = store
        self.sms = sms
        self.email = email
        self.composer = composer
        self.timing = timing or domain.SendTiming()
        self.ended = EndedClaims()

    # -- one message per cause ---------------------------------------------------------------

    def send_once(self, cause: dict, template: str, lookup: Lookup) -> None:
        """Send `template` about `cause` to whom `lookup()` names, unless it was already sent.

        Raises what the database or `lookup` raised (the event is retried), and
        `MessageInFlight` when another sender still holds the message after the wait.
        """
        key = domain.message_key(cause["event_id"], template)
        existing = self.store.get_message(key)
        if existing is not None:
            if existing["status"] in domain.FINAL:
                return  # a redelivery: already sent (or given up), and said so
            if self._record_ended(existing.get("claim")):
                return  # our earlier sender's outcome, recorded now
        recipient = lookup()
        context = domain.message_context(template, cause, self.composer.base_url,
                                         recipient.extra)
        subject, text = domain.render_message(self.composer, recipient.channel, template,
                                              context)
        provider = self.sms if recipient.channel == domain.SMS else self.email
        message = domain.new_message(
            key, cause, recipient.channel, template,
            destination=domain.mask_destination(recipient.channel, recipient.address),
            provider=provider.name, claim=new_event_id(), now=utcnow(),
        )
        try:
            claimed = self._claim(message)
        except BaseException:
            # Nothing was handed to a provider under this claim, though its write may have
            # been stored: the event's retry may take it over at once.
            self.ended.add(message["claim"], UNSENT)
            raise
        if claimed is None:
            return
        if not recipient.address:
            self._record(message, cause, claimed, "no_contact", error=domain.NO_CONTACT)
            return
        try:
            with eventlet.Timeout(self.timing.provider_timeout, ProviderTimeout):
                if recipient.channel == domain.SMS:
                    provider_message_id = self.sms.send(recipient.address, text,
                                                        reference=message["_id"])
                else:
                    provider_message_id = self.email.send(recipient.address, subject, text,
                                                          reference=message["_id"])
        except Exception as exc:
            # class name only: a provider's message may quote the address
            self._record(message, cause, claimed, "failed", error=type(exc).__name__)
            return
        self._record(message, cause, claimed, "sent", provider_message_id=provider_message_id)

    def _claim(self, message: dict) -> float | None:
        """Hold `message`'s claim: when we hold it from (`time.monotonic()`, as its stored
        `claimed_at`, which the lease counts from), or None when it was finished.

        A fresh claim of someone else is waited for, within this run, until it is finished or
        lapses (then taken over); a claim this process knows was left unsent is taken over at
        once. Raises `MessageInFlight` when still held after `SendTiming.wait`.
        """
        lease = self.timing.lease
        until = time.monotonic() + self.timing.wait
        while True:
            since = time.monotonic()
            message["claimed_at"] = utcnow()  # when we hold it from, whichever way we get it
            existing = self.store.claim(message)
            if existing is None:
                return since
            if existing["status"] != domain.SENDING:
                return None
            holder = existing.get("claim")
            if self._record_ended(holder):
                return None
            lapsed = utcnow() - existing["claimed_at"] >= lease
            if lapsed or self.ended.unsent(holder):
                try:
                    taken = self.store.take_over(message, holder, lease, self.ended.unsent)
                except MessageInFlight:
                    pass  # someone else took it over first: wait for them in turn
                else:
                    self.ended.forget(holder)
                    return since if taken else None
            if time.monotonic() >= until:
                raise MessageInFlight(message["_id"])
            eventlet.sleep(self.timing.poll_seconds)

    def _record(self, message: dict, cause: dict, claimed: float, outcome: str,
                **result: str) -> None:
        """Record the outcome, trying again while the database is away, until `record_until`
        after claiming; past that, keep it for the event's retry to record, and raise."""
        fields, event = domain.outcome(message, cause, now=utcnow(), **result)
        unrecorded = Unrecorded(message, cause, fields, event, outcome)
        deadline = claimed + self.timing.record_until
        pause = 0.1
        while True:
            try:
                recorded = self.store.finish(message["_id"], message["claim"], fields, [event])
                break
            except DATABASE_AWAY as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.ended.add(message["claim"], unrecorded)
                    log.warning("message outcome not recorded yet; the event's retry records it",
                                extra=self._extra(unrecorded, error=type(exc).__name__))
                    raise
                if pause == 0.1:  # once per message, not per attempt
                    log.warning("database away; keeping the message outcome to record it",
                                extra=self._extra(unrecorded, error=type(exc).__name__))
                eventlet.sleep(min(pause, left))
                pause = min(pause * 2, 2.0)
        self._recorded(unrecorded, recorded)

    def _record_ended(self, claim: str | None) -> bool:
        """Record the outcome an ended sender of this process kept for `claim`, if any; True
        when it is recorded (nothing left to send)."""
        ended = self.ended.get(claim)
        if not isinstance(ended, Unrecorded):
            return False
        # The retry is as patient as the sender was: the database may still be coming back.
        deadline = time.monotonic() + self.timing.record_seconds
        pause = 0.1
        while True:
            try:
                recorded = self.store.finish(ended.message["_id"], claim, ended.fields,
                                             [ended.event])
                break
            except DATABASE_AWAY:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                eventlet.sleep(min(pause, left))
                pause = min(pause * 2, 2.0)
        self.ended.forget(claim)
        self._recorded(ended, recorded)
        return recorded

    def _recorded(self, done: Unrecorded, recorded: bool) -> None:
        message = done.message
        metrics.NOTIFICATIONS.labels(message["channel"], done.outcome).inc()
        extra = self._extra(done)
        if not recorded:
            # Our claim was taken over after the lease ran out (a sender cut off for longer).
            log.warning("message outcome not recorded: claim lost", extra=extra)
        elif done.outcome == "sent":
            log.info("message sent", extra=extra)
        else:
            log.warning("message not sent", extra=dict(extra, error=done.fields["error"]))

    @staticmethod
    def _extra(done: Unrecorded, **more: str) -> dict:
        return {"application_id": done.cause["application_id"],
                "template": done.message["template"], "channel": done.message["channel"],
                "outcome": done.outcome, **more}

    # -- the muhtar portal's login code ------------------------------------------------------

    def send_one_time_code(self, phone: str | None, code: str) -> bool:
        """Send a login code by SMS to `phone`; False when there is none or the provider
        refused. The code is neither stored nor logged (the log names the masked number)."""
        if not phone:
            metrics.NOTIFICATIONS.labels(domain.SMS, "no_contact").inc()
            log.warning("one-time code not sent", extra={"outcome": "no_contact"})
            return False
        text = self.composer.render(domain.SMS, "one_time_code", {"code": code})
        try:
            with eventlet.Timeout(self.timing.provider_timeout, ProviderTimeout):
                self.sms.send(phone, text)
        except Exception as exc:
            metrics.NOTIFICATIONS.labels(domain.SMS, "failed").inc()
            log.warning("one-time code not sent", extra={"outcome": "failed",
                                                         "error": type(exc).__name__})
            return False
        metrics.NOTIFICATIONS.labels(domain.SMS, "sent").inc()
        log.info("one-time code sent", extra={"destination": domain.mask_phone(phone)})
        return True

    # -- the delivery log --------------------------------------------------------------------

    def log_for(self, application_id: str) -> dict:
        """Every message about an application, oldest first, masked: the staff's log."""
        items = self.store.log_for(application_id)
        return {"application_id": application_id, "count": len(items), "items": items}
