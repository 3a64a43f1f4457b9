"""Messages arriving on channels with a sender (SMS, e-mail, WhatsApp, social media).

Every message is first recorded as an `inbound` document with the sender's address: that is
where a reply goes, and the address never travels in an event. A message that cannot become an
application is answered through `inbound_rejected` (inbound id, channel, reason code), stored in
the same write as the inbound record; notify resolves the address with `get_inbound_contact` at
send time. A message that becomes an application is answered by the ordinary confirmation of
`application_received` (or `application_merged`), sent back on the channel it came from.

A retried webhook (same Idempotency-Key) finds its inbound record and gets the same answer:
no second application, no second reply.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from services.common.events import make_event, new_event_id, utcnow
from services.intake import domain, media
from services.intake.channels import text as text_channel
from services.intake.channels.email import EMPTY_BODY, parse_email, split_name
from services.intake.schemas import DESCRIPTION_MAX
from services.intake.submission import Intake

# Which channel a reply to a message goes out on (notify has SMS and e-mail providers).
REPLY_CHANNEL = {"sms": "sms", "email": "email"}


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

    def __init__(self, intake: Intake, places: dict[str, tuple[str, str, str]]):
        self.intake = intake
        self.store = intake.store
        self.places = places

    # -- channels -------------------------------------------------------------------------

    def sms(self, message: Message, idempotency_key: str | None) -> dict:
        """`TCKN message` from a phone (seed 004)."""
        idempotency_key = idempotency_key or natural_key(message)
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
