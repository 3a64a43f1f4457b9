"""What notify says and records: template texts, SMS length, masking, message identity."""
from datetime import UTC, datetime

import pytest
from jinja2 import UndefinedError

from services.common.config import DEFAULTS
from services.common.events import load_event, make_event
from services.notify import domain
from services.routing.directory import load_directory

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LONG_BASE_URL = "https://acikkapi.mersin.bel.tr"


def received() -> dict:
    return load_event(make_event("application_received", "app-1", {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "road_damage", "channel": "web", "location": {"province": "Mersin"},
        "citizen_ref": "c" * 64, "received_at": NOW,
    }, occurred_at=NOW))


def routed(unit_name: str = "Fen İşleri Müdürlüğü") -> dict:
    return load_event(make_event("application_routed", "app-1", {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
        "unit": "mezitli_bld.works", "unit_name": unit_name, "rule": "test",
        "read_hours": 4, "resolve_hours": 24,
    }, occurred_at=NOW))


def test_the_received_sms_gives_the_display_tracking_code_and_the_tracking_address():
    text = domain.SmsComposer("http://127.0.0.1:8000/").compose("application_received",
                                                               received())
    assert text == ("Açık Kapı: Başvurunuz alındı. Takip kodu: K7M-4QX-2D9. Durum sorgulama: "
                    "http://127.0.0.1:8000/takip (güvenlik kodunuzla)")


def test_the_routed_sms_names_the_unit():
    text = domain.SmsComposer(LONG_BASE_URL).compose("application_routed", routed())
    assert text == ("Açık Kapı: K7M-4QX-2D9 numaralı başvurunuz Fen İşleri Müdürlüğü "
                    "birimine iletildi.")


def test_plain_text_templates_do_not_html_escape():
    text = domain.SmsComposer(LONG_BASE_URL).compose("application_routed",
                                                     routed("Park & Bahçeler Müdürlüğü"))
    assert "Park & Bahçeler Müdürlüğü birimine" in text


@pytest.mark.parametrize("template", ["application_received", "application_routed"])
def test_a_missing_variable_is_an_error_not_a_blank(template):
    composer = domain.SmsComposer(LONG_BASE_URL)
    with pytest.raises(UndefinedError):
        composer.render(domain.SMS, template, {})


def test_every_sms_fits_two_segments_with_a_real_address_and_the_longest_unit_name():
    directory = load_directory(DEFAULTS["ORGANISATION_PATH"])
    longest = max((unit.name_tr for unit in directory.units.values()), key=len)
    composer = domain.SmsComposer(LONG_BASE_URL)
    for text in (composer.compose("application_received", received()),
                 composer.compose("application_routed", routed(longest))):
        assert domain.sms_segments(text) <= 2, text


@pytest.mark.parametrize(("text", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("{" * 80, 1), ("{" * 81, 2),  # extension characters cost two septets
    ("ı" * 70, 1), ("ı" * 71, 2), ("ş" * 134, 2), ("ş" * 135, 3),  # Turkish forces UCS-2
    ("Ç" * 160, 1), ("çok güzel" * 10, 2),
])
def test_sms_segments_follow_gsm7_and_ucs2_limits(text, segments):
    assert domain.sms_segments(text) == segments


@pytest.mark.parametrize(("phone", "masked"), [
    ("+905551112233", "+90555*****33"),
    ("+4915112345678", "+49151******78"),
    ("12345678", "12****78"),
    ("1234", "****"),
    (None, None),
    ("", None),
])
def test_a_phone_number_is_masked_to_its_prefix_and_last_two_digits(phone, masked):
    assert domain.mask_phone(phone) == masked


def test_a_message_is_identified_by_its_cause_and_template_whatever_the_channel():
    assert domain.message_key("01ABC", "application_received") == "01ABC:application_received"


def test_a_new_message_records_the_masked_destination_and_never_the_text():
    cause = received()
    message = domain.new_message("k", cause, "sms", "application_received",
                                 destination="+90555*****33", provider="dev", claim="c1",
                                 now=NOW)
    assert message["status"] == "sending"
    assert message["cause_event_id"] == cause["event_id"]
    assert message["application_id"] == "app-1"
    assert "text" not in message


def test_a_sent_outcome_carries_the_provider_id_in_the_log_and_a_valid_event():
    cause = received()
    message = domain.new_message("k", cause, "sms", "application_received",
                                 destination="+90555*****33", provider="dev", claim="c1",
                                 now=NOW)
    fields, event = domain.outcome(message, cause, provider_message_id="dev-1", now=NOW)
    assert fields == {"status": "sent", "provider": "dev", "provider_message_id": "dev-1",
                      "sent_at": NOW, "finished_at": NOW}
    assert event["type"] == "notification_sent"
    assert event["application_id"] == "app-1"
    assert event["correlation_id"] == cause["correlation_id"]
    assert event["data"] == {"channel": "sms", "template": "application_received",
                             "message_id": "k", "provider": "dev",
                             "cause_event_id": cause["event_id"], "error": None}
    load_event(event)  # a consumer can read it


def test_a_failure_without_contact_names_no_provider():
    cause = received()
    message = domain.new_message("k", cause, "sms", "application_received", destination=None,
                                 provider="dev", claim="c1", now=NOW)
    fields, event = domain.outcome(message, cause, error=domain.NO_CONTACT, now=NOW)
    assert (fields["status"], fields["error"], fields["provider"]) == ("failed", "no contact",
                                                                       "none")
    assert event["type"] == "notification_failed"
    assert event["data"]["error"] == "no contact"
