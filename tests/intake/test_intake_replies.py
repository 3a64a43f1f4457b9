"""The replies notify writes for intake's channels: every refusal reason in words, on SMS and
e-mail; the confirmation carries the security code only when one is owed."""
from datetime import UTC, datetime

import pytest

from services.common.events import load_event, make_event
from services.intake.inbound import REASON_FIELD, REPLY_REASONS
from services.notify import domain
from services.notify.providers import DevSinkEmailProvider

COMPOSER = domain.Composer("https://acikkapi.example")
NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def rejected(reason: str, channel: str = "sms") -> dict:
    return load_event(make_event("inbound_rejected", "01INBOUND0000000000000000A", {
        "inbound_id": "01INBOUND0000000000000000A", "channel": channel, "reason": reason}))


def reply(reason: str, channel: str, language: str = "tr") -> tuple[str | None, str]:
    sender = domain.inbound_sender({"channel": channel, "address": "x", "subject": "Çukur",
                                    "language": language})
    return COMPOSER.message("inbound_rejected", rejected(reason, channel), sender)


@pytest.mark.parametrize("language", ["tr", "en"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_every_refusal_reason_is_told_in_its_own_words_on_both_channels(channel, language):
    generic = reply("something-new", channel, language)[1]
    texts = {}
    for reason in sorted({*REASON_FIELD, *REPLY_REASONS}):  # all known to notify
        subject, text = reply(reason, channel, language)
        assert text != generic, reason
        texts[reason] = text
        if channel == "sms":
            assert subject is None and "\n" not in text
        else:
            assert "Çukur" in subject
    assert len(set(texts.values())) == len(texts)


def test_the_confirmation_carries_the_security_code_only_when_owed():
    event = load_event(make_event("application_received", "app-1", {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "noise", "channel": "sms", "location": {"province": "Mersin"},
        "received_at": NOW}))
    owed = domain.Recipient("sms", "+905551112233", {"security_code": "7QK2M9XD4P"})
    shown = domain.Recipient("sms", "+905551112233", {})
    assert "7QK2M9XD4P" in COMPOSER.message("application_received", event, owed)[1]
    assert "Güvenlik" not in COMPOSER.message("application_received", event, shown)[1]
    assert domain.choose_channel(event, {"phone": "+905551112233", "email": "a@example.com",
                                         "preferred_channel": "email"}) == (
        "sms", "+905551112233")  # came in by SMS: answered by SMS


def test_the_dev_email_sink_writes_rfc_5322_files(tmp_path):
    from email import policy
    from email.parser import BytesParser

    provider = DevSinkEmailProvider(tmp_path, "Açık Kapı <acikkapi@example.gov.tr>")
    message_id = provider.send("ayse@example.com", "Başvurunuz alındı", "Takip kodu: X\n")
    [path] = (tmp_path / "mail").glob("*.eml")
    assert path.name == f"{message_id}.eml"
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert (parsed["To"], parsed["Subject"]) == ("ayse@example.com", "Başvurunuz alındı")
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed.get_content() == "Takip kodu: X\n"
