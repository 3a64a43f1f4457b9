"""Notify's use cases: one message per cause and recipient, sent exactly once in effect; the
messages held for later; opt-outs; a one-time code; the log.

`Deliveries.send_once`, step by step:

1. A redelivered cause whose message is finished (`sent` / `failed` / `skipped`) or held for
   later (`deferred`) sends nothing and asks intake nothing.
2. The recipient is resolved (the entrypoint's `resolve` asks intake or routing, at send time).
   A citizen who opted out gets only the codes: anything else is recorded `skipped`.
3. The text is rendered before anything is recorded: a template error leaves nothing half-done.
4. A citizen's step notice in the quiet hours is recorded `deferred` until 08:00 (with an entry
   in `deferred`, which `release_due` reads) and sent then; a "forwarded" message whose
   "received" is not out yet waits for it (`_received_first`), else is held for 10 s.
5. The message is *claimed*: inserted as `sending` under its key with a fresh claim id
   (`NotifyStore.claim`); of any number of concurrent deliveries, one insert wins.
6. The provider is called, each attempt for at most `SendTiming.provider_timeout`, with the
   message's key as its reference (the gateway's idempotency key, the e-mail's Message-ID). A
   refusal (`PermanentFailure`: a 4xx, an invalid number) is recorded failed at once; a passing
   failure (a 5xx, a timeout, the connection) is tried again after a pause, then — every
   attempt failed — the message is held for a retry later (1 min, 5 min, 15 min, 1 h, 3 h, 6 h,
   then failed for good).
7. The outcome and its event are recorded in one write, if our claim still holds.

The window that remains: a provider call that timed out may have been delivered. It is tried
again with the same reference, so a gateway that honours idempotency keys (or a mail system
that drops a repeated Message-ID) shows it once; one that ignores them may deliver it twice.

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
from datetime import datetime

import eventlet
from pymongo.errors import PyMongoError

from services.common import metrics
from services.common.events import new_event_id, utcnow
from services.common.outbox import ConcurrentUpdate
from services.notify import domain
from services.notify.providers import EmailProvider, ProviderError, SmsProvider
from services.notify.store import MessageInFlight, NotifyStore

log = logging.getLogger(__name__)
ENDED_CAPACITY = 10_000
# What a database away raises: pymongo's errors, and `modify` giving up on a document whose
# version claim an interrupted write left behind (it lapses in `mongo.CLAIM_LEASE`).
DATABASE_AWAY = (PyMongoError, ConcurrentUpdate)

# `resolve(cause, spec)`: the recipient `spec` names, asked at send time (intake, routing).
Resolve = Callable[[dict, dict], domain.Recipient]
HELD = "held"


class ProviderTimeout(Exception):
    """The provider did not answer within `SendTiming.provider_timeout`."""


# A provider call that failed for a passing reason (besides a `ProviderError` that says so):
# tried again, with the same reference.
TRANSIENT = (ProviderTimeout, OSError)


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
                 composer: domain.Composer, timing: domain.SendTiming | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 quiet: domain.QuietHours | None = domain.QUIET_HOURS):
        self.clock = clock  # when messages are due (the quiet hours, retries); tests set it
        self.quiet = quiet
        self.store = store
        self.sms = sms
        self.email = email
        self.composer = composer
        self.timing = timing or domain.SendTiming()
        self.ended = EndedClaims()

    # -- one message per cause and recipient -------------------------------------------------

    def send_once(self, cause: dict, template: str, spec: dict, resolve: Resolve,
                  tag: str | None = None) -> None:
        """Send `template` about `cause` to the recipient `resolve(cause, spec)` names, unless
        it was already sent (or is held for later). `tag` names the recipient in the message's
        key when a cause has several (a staff member and channel); `spec` is what `resolve`
        needs to find them again, kept with a message held for later.

        Raises what the database or `resolve` raised (the event is retried), and
        `MessageInFlight` when another sender still holds the message after the wait.
        """
        key = domain.message_key(cause["event_id"], template, tag)
        existing = self.store.get_message(key)
        if existing is not None:
            if existing["status"] in domain.FINAL or existing["status"] == domain.DEFERRED:
                return  # a redelivery: already sent (given up, skipped), or held for later
            if self._record_ended(existing.get("claim")):
                return  # our earlier sender's outcome, recorded now
        recipient = resolve(cause, spec)
        now = utcnow()
        provider = self._provider(recipient)
        if domain.suppressed(template, recipient, self.store.opted_out(recipient.citizen_ref)):
            self._skip(domain.new_message(key, cause, recipient, template, provider=provider.name,
                                          claim=new_event_id(), now=now, status=domain.SKIPPED))
            return
        # Rendered before anything is recorded: a template error leaves nothing half-done.
        subject, text = self.composer.message(template, cause, recipient)
        held, reason = domain.held_until(template, recipient, cause, self.clock(),
                                         self.quiet), "quiet_hours"
        if held is None and not self._received_first(cause, template, recipient):
            held, reason = self.clock() + domain.ORDER_HOLD, "order"
        if held is not None:
            message = domain.new_message(key, cause, recipient, template, provider=provider.name,
                                         claim=new_event_id(), now=now, status=domain.DEFERRED)
            message.update(due_at=held, held_for=reason)
            self.store.defer_new(message, self._entry(message, cause, template, spec, held))
            return
        message = domain.new_message(key, cause, recipient, template, provider=provider.name,
                                     claim=new_event_id(), now=now)
        try:
            claimed = self._claim(message)
        except BaseException:
            # Nothing was handed to a provider under this claim, though its write may have
            # been stored: the event's retry may take it over at once.
            self.ended.add(message["claim"], UNSENT)
            raise
        if claimed is None:
            return
        self._deliver(message, cause, template, spec, recipient, (subject, text), claimed)

    def release_due(self, resolve: Resolve, limit: int = 200) -> int:
        """Send the messages held for later whose time came; how many were taken up.

        One message's trouble (a recipient not found, the database away) leaves it for the next
        sweep and does not stop the others.
        """
        taken = 0
        for entry in self.store.due(self.clock(), limit):
            try:
                taken += self._release(entry, resolve)
            except MessageInFlight:
                continue  # another notify process is sending it
            except Exception:
                log.exception("held message not released; tried again at the next sweep",
                              extra={"application_id": entry["cause"]["application_id"],
                                     "template": entry["template"]})
        return taken

    def _release(self, entry: dict, resolve: Resolve) -> bool:
        key = entry["_id"]
        message = self.store.get_message(key)
        if message is None or message["status"] in domain.FINAL:
            self.store.drop_deferred(key)
            return False
        now = utcnow()
        if message["status"] == domain.SENDING and now - message["claimed_at"] < self.timing.lease:
            return False  # being sent now (by a sweep of ours or another process's)
        since = time.monotonic()
        claim = new_event_id()
        if not self.store.resume(key, message["claim"], claim, now, self.timing.lease):
            return False  # it changed under us: the next sweep sees what it is now
        message = dict(message, status=domain.SENDING, claim=claim, claimed_at=now)
        cause, template, spec = entry["cause"], entry["template"], entry["spec"]
        recipient = resolve(cause, spec)
        if domain.suppressed(template, recipient, self.store.opted_out(recipient.citizen_ref)):
            # opted out while it waited
            self.store.finish(key, claim, self._skipped_fields(now), [])
            self.store.drop_deferred(key)
            return True
        held = domain.held_until(template, recipient, cause, self.clock(), self.quiet)
        if held is not None:  # a retry that fell in the quiet hours
            self._hold(message, cause, template, spec, held, "quiet_hours",
                       retries=int(message.get("retries", 0)))
            return True
        rendered = self.composer.message(template, cause, recipient)
        if self._deliver(message, cause, template, spec, recipient, rendered, since) != HELD:
            self.store.drop_deferred(key)
        return True

    def _received_first(self, cause: dict, template: str, recipient: domain.Recipient) -> bool:
        """Whether `template` may go now as far as order goes: a message that can overtake the
        citizen's "received" (routing's outcome follows it within milliseconds, on another
        queue) waits for it to be finished, within this run for `timing.order_wait_seconds`;
        False when it still is not (the caller holds the message for `ORDER_HOLD`, and it goes
        then, whatever became of the "received")."""
        if recipient.staff or template not in domain.AFTER_RECEIVED:
            return True
        until = time.monotonic() + self.timing.order_wait_seconds
        while True:
            found = self.store.received_message(cause["application_id"])
            if found is not None and found.get("status") in domain.FINAL:
                return True
            if time.monotonic() >= until:
                return False
            eventlet.sleep(self.timing.poll_seconds)

    def _provider(self, recipient: domain.Recipient) -> SmsProvider | EmailProvider:
        return self.sms if recipient.channel == domain.SMS else self.email

    def _deliver(self, message: dict, cause: dict, template: str, spec: dict,
                 recipient: domain.Recipient, rendered: tuple[str | None, str],
                 claimed: float) -> str:
        """Hand the claimed `message` to its provider, trying again after a passing failure,
        and record what came of it (`sent`, `failed`) — or hold it for a later retry (`HELD`)
        when every attempt failed for a passing reason."""
        if not recipient.address:
            self._record(message, cause, claimed, "no_contact", error=domain.NO_CONTACT)
            return "failed"
        subject, text = rendered
        error = "unknown"
        for pause in [0.0, *self.timing.pauses]:
            if pause:
                eventlet.sleep(pause)
            try:
                with eventlet.Timeout(self.timing.provider_timeout, ProviderTimeout):
                    provider_message_id = self._hand_over(recipient, subject, text, message)
            except ProviderError as exc:
                if exc.permanent:  # refused: the same request will be refused again
                    self._record(message, cause, claimed, "failed", error=exc.code)
                    return "failed"
                error = exc.code
            except TRANSIENT as exc:
                error = "timeout" if isinstance(exc, ProviderTimeout) else type(exc).__name__
            except Exception as exc:
                # class name only: a provider's message may quote the address
                self._record(message, cause, claimed, "failed", error=type(exc).__name__)
                return "failed"
            else:
                self._record(message, cause, claimed, "sent",
                             provider_message_id=provider_message_id)
                return "sent"
        retries = int(message.get("retries", 0))
        when = domain.retry_at(retries, self.clock())
        if when is None:
            self._record(message, cause, claimed, "failed", error=f"{domain.GAVE_UP}: {error}")
            return "failed"
        log.warning("provider unavailable; message held for a retry",
                    extra={"application_id": cause["application_id"], "template": template,
                           "channel": recipient.channel, "error": error})
        self._hold(message, cause, template, spec, when, "retry", retries=retries + 1,
                   last_error=error)
        return HELD

    def _hand_over(self, recipient: domain.Recipient, subject: str | None, text: str,
                   message: dict) -> str:
        """One provider call; the message's key is its reference (the gateway's idempotency
        key, the e-mail's Message-ID), so a message handed over again is recognised."""
        if recipient.channel == domain.SMS:
            return self.sms.send(recipient.address, text, reference=message["_id"])
        return self.email.send(recipient.address, subject or "", text,
                               reference=message["_id"], language=recipient.language)

    def _hold(self, message: dict, cause: dict, template: str, spec: dict, when: datetime,
              reason: str, **fields: object) -> None:
        """Hold the claimed `message` to go at `when`. If that cannot be written, the claim is
        remembered as unsent: the event's retry (or the next sweep) takes it over at once."""
        try:
            self.store.defer_claimed(message["_id"], message["claim"],
                                     self._entry(message, cause, template, spec, when),
                                     {"due_at": when, "held_for": reason, **fields})
        except DATABASE_AWAY:
            self.ended.add(message["claim"], UNSENT)
            raise

    @staticmethod
    def _entry(message: dict, cause: dict, template: str, spec: dict, when: datetime) -> dict:
        """What a held message needs to go later: its cause (public codes and ids only, as on
        the bus), its template and how to find its recipient again."""
        return {"_id": message["_id"], "due_at": when, "claim": message["claim"],
                "cause": cause, "template": template, "spec": spec}

    @staticmethod
    def _skipped_fields(now: datetime) -> dict:
        return {"status": domain.SKIPPED, "error": domain.OPTED_OUT, "finished_at": now}

    def _skip(self, message: dict) -> None:
        """Record that a message was not sent because the citizen opted out (no event: there
        is nothing to tell the timeline)."""
        message.update(self._skipped_fields(message["created_at"]))
        self.store.claim(message)
        metrics.NOTIFICATIONS.labels(message["channel"], "skipped").inc()

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
        """Record the outcome, trying again while the database is away, for `record_seconds`
        (within `record_until` after claiming); past that, keep it for the event's retry to
        record, and raise."""
        fields, event = domain.outcome(message, cause, now=utcnow(), **result)
        unrecorded = Unrecorded(message, cause, fields, event, outcome)
        # `record_seconds` from now: the provider calls took what they took (bounded by
        # `sending_seconds`, which the lease counts), the recording gets its own time
        deadline = min(claimed + self.timing.record_until,
                       time.monotonic() + self.timing.record_seconds)
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

    def send_one_time_code(self, phone: str | None, code: str, language: str = "tr") -> bool:
        """Send a login code by SMS to `phone`; False when there is none or the provider
        refused. The code is neither stored nor logged (the log names the masked number).
        One attempt: a code that arrives late is useless, the person asks for another."""
        if not phone:
            metrics.NOTIFICATIONS.labels(domain.SMS, "no_contact").inc()
            log.warning("one-time code not sent", extra={"outcome": "no_contact"})
            return False
        _, text = self.composer.render(domain.SMS, "one_time_code", language, {"code": code})
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

    # -- opt-outs ------------------------------------------------------------------------------

    def set_opt_out(self, citizen_ref: str, opted_out: bool, source: str) -> None:
        """Record a citizen's choice; what is already held for later is checked again when it
        goes."""
        self.store.set_opt_out(citizen_ref, opted_out, source, utcnow())
        log.info("opt-out recorded", extra={"opted_out": opted_out, "source": source})

    def opt_out_of(self, citizen_ref: str) -> dict:
        found = self.store.opt_out_of(citizen_ref) or {}
        return {"citizen_ref": citizen_ref, "opted_out": bool(found.get("opted_out")),
                "source": found.get("source"), "at": found.get("at")}

    # -- the delivery log --------------------------------------------------------------------

    def log_for(self, application_id: str) -> dict:
        """Every message about an application, oldest first, masked: the staff's log."""
        items = self.store.log_for(application_id)
        return {"application_id": application_id, "count": len(items), "items": items}
