"""Messages arriving on channels with a sender (SMS, e-mail, WhatsApp, social media).

Every message is first recorded as an `inbound` document with the sender's address: that is
where a reply goes, and the address never travels in an event. A message that cannot become an
application is answered through `inbound_rejected` (inbound id, channel, reason code), stored in
the same write as the inbound record; notify resolves the address with `get_inbound_contact` at
send time. A message that becomes an application is answered by the ordinary confirmation of
`application_received` (or `application_merged`), sent back on the channel it came from.

An SMS that is a reply rather than an application (`channels.replies`) is answered by the
services that own what it asks for, over RPC (`Peers`): a satisfaction score goes to tracking
(`record_satisfaction_reply`: the sender's latest concluded application still awaiting a rating),
"IPTAL" / "BAŞLAT" to notify (`set_opt_out`). The sender is found through intake's phone index;
the result is stored on the inbound record. A score with nothing awaiting it is refused with
reason `no_survey`, an opt-out from a number nobody registered with `unknown_sender` (both
answered by SMS, like every refusal).

A retried webhook (same Idempotency-Key) finds its inbound record and gets the same answer:
no second application, no second reply, no second rating.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from services.common.events import make_event, new_event_id, utcnow
from services.intake import domain, media
from services.intake.channels import replies
from services.intake.channels import text as text_channel
from services.intake.channels.email import EMPTY_BODY, parse_email, split_name
from services.intake.schemas import DESCRIPTION_MAX
from services.intake.submission import Intake

T = TypeVar("T")
# Which channel a reply to a message goes out on (notify has SMS and e-mail providers).
REPLY_CHANNEL = {"sms": "sms", "email": "email"}
# Refusals of an SMS reply (not an application): nothing awaits a score from this sender; an
# opt-out from a number no citizen gave. Notify words them (`inbound_rejected`).
NO_SURVEY, UNKNOWN_SENDER = "no_survey", "unknown_sender"
REPLY_REASONS = (NO_SURVEY, UNKNOWN_SENDER)
# What the webhook answers for a handled reply (`SmsReplyAnswerSchema.result`).
SATISFACTION_RECORDED, OPTED_OUT, OPTED_IN = "satisfaction_recorded", "opted_out", "opted_in"
# The source notify records for an opt-out or opt-in asked for by SMS.
OPT_OUT_SOURCE = "sms"
# How many of the sender's latest applications tracking is asked to look among.
SURVEY_CANDIDATES = 100


class Peers(Protocol):
    """The other services an SMS reply is handed to (over RPC in the running system)."""

    def record_satisfaction_reply(self, application_ids: list[str], score: int,
                                  reply_id: str | None = None) -> dict | None:
        """tracking: rate the latest concluded application awaiting a rating, once per reply."""

    def set_opt_out(self, citizen_ref: str, opted_out: bool, source: str) -> None:
        """notify: stop (or restart) the citizen's non-essential messages."""


class PeerUnavailable(Exception):
    """tracking or notify did not answer: the gateway should deliver the message again."""

    def __init__(self, service: str):
        super().__init__(service)
        self.service = service


class ChannelRefused(Exception):
    """A message refused with a reason code; `field` names the part that was wrong."""

    def __init__(self, reason: str, field: str, inbound_id: str | None, replied: bool):
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.inbound_id = inbound_id
        self.replied = replied


REASON_FIELD = {
    text_channel.EMPTY: "text", text_channel.NO_TCKN: "text", text_channel.BAD_TCKN: "text",
    text_channel.NO_MESSAGE: "text", media.TOO_LARGE: "attachments",
    media.BAD_TYPE: "attachments", media.CORRUPT: "attachments",
}
REASON_TEXT = {
    text_channel.EMPTY: "Mesaj boş / the message is empty.",
    text_channel.NO_TCKN: "Mesaj T.C. kimlik numarasıyla başlamalı / the message must start with "
                          "a TC Kimlik No.",
    text_channel.BAD_TCKN: "Geçersiz T.C. kimlik numarası / invalid TC Kimlik No.",
    text_channel.NO_MESSAGE: "Kimlik numarasından sonra başvuru metni yok / no message after the "
                             "TC Kimlik No.",
    media.TOO_LARGE: "Ek çok büyük / an attachment is too large.",
    media.BAD_TYPE: "Ek türü kabul edilmiyor (JPEG, PNG, WebP, PDF) / attachment type not "
                    "accepted.",
    media.CORRUPT: "Ek okunamadı / an attachment could not be read.",
    NO_SURVEY: "Değerlendirmenizi bekleyen sonuçlanmış bir başvurunuz yok / no concluded "
               "application is awaiting your rating.",
    UNKNOWN_SENDER: "Bu telefon numarası kayıtlı değil / this phone number is not registered.",
}


@dataclass(frozen=True)
class Message:
    channel: str
    address: str  # E.164 phone, e-mail address or a platform handle
    text: str
    received_at: datetime | None = None
    name: str | None = None
    subject: str | None = None
    automatic: bool = False  # an auto-reply or bounce: recorded, never answered


def reply_channel(message: Message) -> str | None:
    """Where a reply to `message` goes, or None (a channel we cannot answer, an auto-reply)."""
    return None if message.automatic else REPLY_CHANNEL.get(message.channel)


def natural_key(message: Message) -> str | None:
    """Without an Idempotency-Key, a gateway's retry is the same sender, time and text."""
    if message.received_at is None:
        return None
    digest = hashlib.sha256(
        f"{message.address}|{message.received_at.isoformat()}|{message.text}".encode())
    return "natural:" + digest.hexdigest()


class Inbound:
    """Turns channel messages into submissions (or refusals with a reply)."""

    def __init__(self, intake: Intake, places: dict[str, tuple[str, str, str]],
                 peers: Peers | None = None):
        self.intake = intake
        self.store = intake.store
        self.places = places
        self.peers = peers

    # -- channels -------------------------------------------------------------------------

    def sms(self, message: Message, idempotency_key: str | None) -> dict:
        """`TCKN message` from a phone (seed 004), or a reply: a satisfaction score, an
        opt-out or opt-in (answered with `result`, see `reply`)."""
        idempotency_key = idempotency_key or natural_key(message)
        reply = replies.parse_reply(message.text)
        if reply is not None:
            return self.reply(message, reply, idempotency_key)
        inbound_id = self._record(message, idempotency_key)
        try:
            parsed = text_channel.parse_tckn_message(message.text, tckn_required=True)
        except text_channel.TextRefused as refused:
            self._refuse(inbound_id, message, refused.reason)
        citizen = {"tckn": parsed.tckn, "phone": message.address}
        return self._submit(inbound_id, message, parsed.message, citizen, idempotency_key)

    def message(self, message: Message, idempotency_key: str | None) -> dict:
        """WhatsApp or social media: a TCKN is welcome but not required."""
        idempotency_key = idempotency_key or natural_key(message)
        inbound_id = self._record(message, idempotency_key)
        try:
            parsed = text_channel.parse_tckn_message(message.text, tckn_required=False)
        except text_channel.TextRefused as refused:
            self._refuse(inbound_id, message, refused.reason)
        first, last = split_name(message.name)
        citizen = {"tckn": parsed.tckn, "first_name": first, "last_name": last}
        if message.address.startswith("+"):
            citizen["phone"] = message.address
        else:
            citizen["handle"] = message.address
        return self._submit(inbound_id, message, parsed.message, citizen, idempotency_key)

    def email(self, raw: bytes, idempotency_key: str | None) -> dict:
        """A raw RFC 5322 message; raises `EmailRefused` if it has no sender to answer."""
        parsed = parse_email(raw)
        message = Message("email", parsed.sender, parsed.text, name=parsed.sender_name,
                          subject=parsed.subject, automatic=parsed.automatic)
        # a mail server delivering the same message again: same Message-ID, same application
        # (with what it says: another message reusing the id is not mistaken for it)
        if not idempotency_key and parsed.message_id:
            digest = hashlib.sha256(
                f"{parsed.message_id}|{parsed.sender}|{parsed.subject}|{parsed.text}".encode())
            for attachment in parsed.attachments:
                digest.update(hashlib.sha256(attachment.data).digest())
            idempotency_key = "message-id:" + digest.hexdigest()
        inbound_id = self._record(message, idempotency_key,
                                  extra={"subject": parsed.subject,
                                         "message_id": parsed.message_id,
                                         "attachment_count": len(parsed.attachments)})
        body = "\n\n".join(part for part in (parsed.subject, parsed.text) if part)
        if not parsed.text.strip() and not parsed.attachments:
            self._refuse(inbound_id, message, EMPTY_BODY)
        tckn, valid = text_channel.find_tckn(body)
        if not valid:
            self._refuse(inbound_id, message, text_channel.BAD_TCKN)
        prepared = []
        for attachment in parsed.attachments:
            try:
                prepared.append(media.prepare(attachment.data, attachment.filename,
                                              self.intake.settings.attachment_max_bytes))
            except media.AttachmentRefused as refused:
                self._refuse(inbound_id, message, refused.reason)
        first, last = split_name(parsed.sender_name)
        citizen = {"tckn": tckn, "first_name": first, "last_name": last,
                   "email": parsed.sender}
        description = body or "(ekli dosya / attachment only)"
        return self._submit(inbound_id, message, description, citizen, idempotency_key,
                            attachments=prepared)

    # -- replies --------------------------------------------------------------------------

    def reply(self, message: Message, reply: replies.Reply, idempotency_key: str | None) -> dict:
        """Hand an SMS reply to the service that owns what it asks for; `{result, inbound_id,
        …}`. Raises `ChannelRefused` (no_survey / unknown_sender, answered by SMS) or
        `PeerUnavailable` (nothing decided: the gateway's retry is handled afresh).

        A retry of an answered reply gets the stored answer; one still `processing` (its first
        delivery died or is running) is handled again, which changes nothing twice: tracking
        records one rating per reply id (the inbound id), and an opt-out is a state, not a count.
        """
        inbound_id = self._record(message, idempotency_key, extra={"reply": reply.kind})
        earlier = self.store.get_inbound(inbound_id) or {}
        if earlier.get("status") == "answered":
            return dict(earlier["result"], replayed=True)
        citizens = self.store.citizens_with_phone(message.address)
        if reply.kind == replies.SCORE:
            rated = self._rate(inbound_id, citizens, reply.score)
            if rated is None:
                self._refuse(inbound_id, message, NO_SURVEY)
            result = {"result": SATISFACTION_RECORDED, "inbound_id": inbound_id,
                      "tracking_code": rated["tracking_code"], "score": rated["score"]}
            self.store.answer_inbound(inbound_id, result,
                                      application_id=rated.get("application_id"))
            return result
        if not citizens:
            self._refuse(inbound_id, message, UNKNOWN_SENDER)
        opted_out = reply.kind == replies.OPT_OUT
        for citizen in citizens:  # everyone who gave this number: the messages go to it
            self._call("notify", lambda ref=citizen["_id"]: self._peers().set_opt_out(
                ref, opted_out, OPT_OUT_SOURCE))
        result = {"result": OPTED_OUT if opted_out else OPTED_IN, "inbound_id": inbound_id}
        self.store.answer_inbound(inbound_id, result)
        return result

    def _rate(self, inbound_id: str, citizens: list[dict], score: int) -> dict | None:
        """tracking's answer for the sender's applications, or None when none awaits a score."""
        ids: list[str] = []
        for citizen in citizens:
            ids += self.store.recent_application_ids(citizen)
        # ULIDs sort by time: the newest first, so the cap keeps the ones a survey is about
        ids = sorted(set(ids), reverse=True)[:SURVEY_CANDIDATES]
        if not ids:
            return None
        return self._call("tracking", lambda: self._peers().record_satisfaction_reply(
            ids, score, inbound_id))

    def _peers(self) -> Peers:
        if self.peers is None:
            raise PeerUnavailable("peers")
        return self.peers

    @staticmethod
    def _call(service: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except PeerUnavailable:
            raise
        except Exception as exc:  # away, slow or failing: the gateway delivers it again
            raise PeerUnavailable(service) from exc

    # -- steps ----------------------------------------------------------------------------

    def _inbound_id(self, channel: str, key: str | None) -> str:
        if not key:
            return new_event_id()
        pepper = self.intake.settings.pepper
        digest = hmac.new(pepper.encode(), f"inbound:{channel}:{key}".encode(), hashlib.sha256)
        return "in-" + digest.hexdigest()[:40]

    def _record(self, message: Message, key: str | None, extra: dict | None = None) -> str:
        """Store the inbound record; a retry finds its own and is answered as before."""
        inbound_id = self._inbound_id(message.channel, key)
        record = {
            "_id": inbound_id,
            "channel": message.channel,
            "address": message.address,
            "reply_channel": reply_channel(message),
            "text": message.text[:DESCRIPTION_MAX * 2],
            "received_at": message.received_at or utcnow(),
            "recorded_at": utcnow(),
            "status": "processing",
            **(extra or {}),
        }
        if not self.store.save_inbound(record, []):
            earlier = self.store.get_inbound(inbound_id) or {}
            if earlier.get("status") == "rejected":
                raise ChannelRefused(earlier["reason"], REASON_FIELD.get(earlier["reason"],
                                                                          "text"),
                                     inbound_id, replied=bool(record["reply_channel"])) from None
        return inbound_id

    def _refuse(self, inbound_id: str, message: Message, reason: str) -> None:
        replyable = reply_channel(message) is not None
        events = []
        if replyable:
            events.append(make_event("inbound_rejected", inbound_id, {
                "inbound_id": inbound_id, "channel": message.channel, "reason": reason}))
        self.store.reject_inbound(inbound_id, reason, events)
        raise ChannelRefused(reason, REASON_FIELD.get(reason, "text"), inbound_id, replyable)

    def _submit(self, inbound_id: str, message: Message, text: str, citizen: dict,
                key: str | None, attachments: list | None = None) -> dict:
        kind, category = text_channel.classify(text, self.intake.catalogue)
        location = (text_channel.locate(text, self.places) or self._home(citizen)
                    or {"province": self.intake.settings.default_province})
        payload = {
            "kind": kind, "category": category, "channel": message.channel,
            "description": text[:DESCRIPTION_MAX], "location": location,
            "citizen": {k: v for k, v in citizen.items() if v},
            "caller_type": "citizen", "inbound_id": inbound_id,
            "applied_at": message.received_at,
        }
        answer = self.intake.submit(payload, idempotency_key=key,
                                    scope=f"inbound:{message.channel}",
                                    attachments=attachments or [], reveal_code=False)
        self.store.accept_inbound(inbound_id, answer["application_id"])
        return dict(answer, inbound_id=inbound_id, kind=kind, category=category)

    def _home(self, citizen: dict) -> dict | None:
        """Where a known citizen lives (their profile), as the place of a text application."""
        settings = self.intake.settings
        if citizen.get("tckn"):
            key = domain.citizen_key(settings.hash_key, citizen["tckn"])
        elif citizen.get("phone"):
            key = domain.contact_key(settings.hash_key, "phone", citizen["phone"])
        else:
            return None
        known = self.store.get_citizen(key)
        if not known or not known.get("district"):
            return None
        return {"province": known.get("province") or settings.default_province,
                "district": known.get("district"), "neighbourhood": known.get("neighbourhood")}
