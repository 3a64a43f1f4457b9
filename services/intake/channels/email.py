"""Inbound e-mail: a raw RFC 5322 message parsed with the standard library (`policy.default`).

What intake needs from a message: the sender's address and display name, the subject, a text
body (the plain part, else the HTML part reduced to text) and the attachments as bytes. Content
types declared by the sender are kept only as a hint; attachments are sniffed from their bytes.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

# Reason codes (see channels.text): the sender is told which one in the reply.
NO_SENDER, EMPTY_BODY = "no_sender", "empty"
_TAGS = re.compile(r"<[^>]+>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EmailRefused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    declared_type: str
    data: bytes


@dataclass(frozen=True)
class ParsedEmail:
    sender: str
    sender_name: str | None
    subject: str
    text: str
    message_id: str | None
    attachments: list[Attachment] = field(default_factory=list)
    automatic: bool = False  # a bounce or an auto-reply: never answered (no mail loops)


def html_to_text(markup: str) -> str:
    """A readable text from an HTML body: scripts dropped, tags removed, entities decoded."""
    text = _SCRIPT.sub(" ", markup)
    text = re.sub(r"<br\s*/?>|</p>|</div>", "\n", text, flags=re.IGNORECASE)
    text = html.unescape(_TAGS.sub(" ", text))
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


def sender_of(message: EmailMessage) -> tuple[str | None, str | None]:
    """`(address, display name)` of From (Reply-To wins: it is where answers should go)."""
    for header in ("Reply-To", "From"):
        raw = message.get(header)
        if raw:
            name, address = parseaddr(str(raw))
            if address and _ADDRESS.match(address):
                return address.lower(), (name or None)
    return None, None


def is_automatic(message: EmailMessage) -> bool:
    """RFC 3834 `Auto-Submitted`, bulk / auto-reply precedence, or a bounce (empty Return-Path)."""
    auto = str(message.get("Auto-Submitted") or "no").strip().lower()
    precedence = str(message.get("Precedence") or "").strip().lower()
    return (auto != "no" or precedence in ("bulk", "junk", "list", "auto_reply")
            or str(message.get("Return-Path") or "").strip() == "<>")


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse a raw message; raises `EmailRefused(NO_SENDER)` if nobody could be answered.

    An empty body is reported by the caller (it still has a sender to reply to).
    """
    message = BytesParser(policy=policy.default).parsebytes(raw)
    address, name = sender_of(message)
    if not address:
        raise EmailRefused(NO_SENDER)
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = body.get_content()
        text = html_to_text(content) if body.get_content_type() == "text/html" else content
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        attachments.append(Attachment(part.get_filename(), part.get_content_type(), payload))
    return ParsedEmail(
        sender=address,
        sender_name=name,
        subject=" ".join(str(message.get("Subject") or "").split()),
        text=text.strip(),
        message_id=str(message.get("Message-ID") or "").strip() or None,
        attachments=attachments,
        automatic=is_automatic(message),
    )


def split_name(display: str | None) -> tuple[str | None, str | None]:
    """`Ayşe Nur Demir` → (`Ayşe Nur`, `Demir`); one word is a first name only."""
    words = (display or "").replace('"', " ").split()
    if not words:
        return None, None
    if len(words) == 1:
        return words[0], None
    return " ".join(words[:-1]), words[-1]
