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


PERSON = domain.Recipient("sms", "+905551112233")


def sms(composer: domain.Composer, template: str, event: dict,
        recipient: domain.Recipient = PERSON) -> str:
    return composer.message(template, event, recipient)[1]


def test_the_received_sms_gives_the_display_tracking_code_and_the_tracking_address():
    text = sms(domain.Composer("http://127.0.0.1:8000/"), "application_received", received())
    assert text == "Açık Kapı: Başvurunuz alındı: K7M-4QX-2D9. http://127.0.0.1:8000/takip"


def test_with_a_link_secret_the_sms_carries_a_signed_link_that_opens_the_application():
    from services.common.links import read_link_token

    text = sms(domain.Composer(LONG_BASE_URL, link_secret="s" * 32), "application_received",
               received())
    token = text.rsplit("/t/", 1)[1]
    assert read_link_token("s" * 32, token) == "app-1"


def test_the_routed_sms_names_the_unit():
    text = sms(domain.Composer(LONG_BASE_URL), "application_routed", routed())
    assert "K7M-4QX-2D9" in text and "Fen İşleri Müdürlüğü" in text


def test_plain_text_templates_do_not_html_escape():
    text = sms(domain.Composer(LONG_BASE_URL), "application_routed",
               routed("Park & Bahçeler Müdürlüğü"))
    assert "Park & Bahçeler Müdürlüğü" in text


@pytest.mark.parametrize("template", ["application_received", "application_routed"])
def test_a_missing_variable_is_an_error_not_a_blank(template):
    composer = domain.Composer(LONG_BASE_URL)
    with pytest.raises(UndefinedError):
        composer.render(domain.SMS, template, "tr", {})


def test_a_language_without_its_own_text_falls_back_to_turkish():
    composer = domain.Composer(LONG_BASE_URL)
    assert composer.render(domain.SMS, "one_time_code", "de", {"code": "X7KQ4M"}) == \
        composer.render(domain.SMS, "one_time_code", "tr", {"code": "X7KQ4M"})


def test_an_english_recipient_gets_the_english_text():
    english = domain.Recipient("email", "a@example.com", language="en")
    subject, body = domain.Composer(LONG_BASE_URL).message("application_routed", routed(),
                                                           english)
    assert "K7M-4QX-2D9" in subject and "Dear applicant" in body


def test_every_sms_fits_three_segments_with_a_signed_link_and_the_longest_unit_name():
    directory = load_directory(DEFAULTS["ORGANISATION_PATH"])
    longest = max((unit.name_tr for unit in directory.units.values()), key=len)
    composer = domain.Composer(LONG_BASE_URL, link_secret="s" * 32)
    for text in (sms(composer, "application_received", received()),
                 sms(composer, "application_routed", routed(longest))):
        assert domain.sms_segments(text) <= 3, text


@pytest.mark.parametrize(("text", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("{" * 80, 1), ("{" * 81, 2),  # extension characters cost two septets
    # Turkish letters go in the Turkish single shift table: two septets, 155 / 149 per part
    ("ı" * 77, 1), ("ı" * 78, 2), ("ş" * 148, 2), ("ş" * 149, 3),
    ("Ç" * 160, 1), ("çok güzel" * 10, 1), ("çok güzel" * 17, 2),
    ("✓" * 70, 1), ("✓" * 71, 2),  # outside both: UCS-2
])
def test_sms_segments_follow_the_encodings_limits(text, segments):
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


def test_a_citizens_message_is_identified_by_its_cause_and_template_whatever_the_channel():
    assert domain.message_key("01ABC", "application_received") == "01ABC:application_received"


def test_a_new_message_records_the_masked_destination_and_never_the_text():
    cause = received()
    message = domain.new_message("k", cause, PERSON, "application_received", provider="dev",
                                 claim="c1", now=NOW)
    assert message["status"] == "sending"
    assert message["destination"] == "+90555*****33"
    assert (message["audience"], message["language"]) == ("citizen", "tr")
    assert message["cause_event_id"] == cause["event_id"]
    assert message["application_id"] == "app-1"
    assert "text" not in message


def test_a_sent_outcome_carries_the_provider_id_in_the_log_and_a_valid_event():
    cause = received()
    message = domain.new_message("k", cause, PERSON, "application_received", provider="dev",
                                 claim="c1", now=NOW)
    fields, event = domain.outcome(message, cause, provider_message_id="dev-1", now=NOW)
    assert fields == {"status": "sent", "provider": "dev", "provider_message_id": "dev-1",
                      "sent_at": NOW, "finished_at": NOW}
    assert event["type"] == "notification_sent"
    assert event["application_id"] == "app-1"
    assert event["correlation_id"] == cause["correlation_id"]
    assert event["data"] == {"channel": "sms", "template": "application_received",
                             "message_id": "k", "provider": "dev",
                             "cause_event_id": cause["event_id"], "error": None,
                             "audience": "citizen"}
    load_event(event)  # a consumer can read it


def test_a_failure_without_contact_names_no_provider():
    cause = received()
    message = domain.new_message("k", cause, domain.Recipient("sms", None),
                                 "application_received", provider="dev", claim="c1", now=NOW)
    fields, event = domain.outcome(message, cause, error=domain.NO_CONTACT, now=NOW)
    assert (fields["status"], fields["error"], fields["provider"]) == ("failed", "no contact",
                                                                       "none")
    assert event["type"] == "notification_failed"
    assert event["data"]["error"] == "no contact"


# -- when and whether a message goes --------------------------------------------------------

CITIZEN = domain.Recipient("sms", "+905551112233", citizen_ref="c" * 64)
STAFF = domain.Recipient("sms", "+905320000020", staff=True)


@pytest.mark.parametrize(("utc", "until"), [
    (datetime(2025, 3, 3, 9, 0, tzinfo=UTC), None),  # 12:00 Istanbul
    (datetime(2025, 3, 3, 18, 59, tzinfo=UTC), None),  # 21:59
    (datetime(2025, 3, 3, 19, 0, tzinfo=UTC), datetime(2025, 3, 4, 5, 0, tzinfo=UTC)),  # 22:00
    (datetime(2025, 3, 3, 23, 30, tzinfo=UTC), datetime(2025, 3, 4, 5, 0, tzinfo=UTC)),  # 02:30
    (datetime(2025, 3, 4, 4, 59, tzinfo=UTC), datetime(2025, 3, 4, 5, 0, tzinfo=UTC)),  # 07:59
    (datetime(2025, 3, 4, 5, 0, tzinfo=UTC), None),  # 08:00
])
def test_the_quiet_hours_run_from_ten_at_night_to_eight_in_istanbul(utc, until):
    assert domain.quiet_until(utc) == until


def test_only_a_citizens_step_notice_of_a_case_that_is_not_urgent_is_held():
    night = datetime(2025, 3, 3, 20, 0, tzinfo=UTC)
    cause = {"data": {"priority": "normal"}}
    assert domain.held_until("case_waiting", CITIZEN, cause, night) is not None
    assert domain.held_until("case_waiting", STAFF, cause, night) is None
    assert domain.held_until("application_received", CITIZEN, cause, night) is None
    assert domain.held_until("case_waiting", CITIZEN, {"data": {"priority": "urgent"}},
                             night) is None


def test_an_opt_out_stops_everything_but_the_codes_and_never_staff_alerts():
    assert domain.suppressed("case_closed", CITIZEN, opted_out=True)
    assert not domain.suppressed("application_received", CITIZEN, opted_out=True)
    assert not domain.suppressed("case_closed", CITIZEN, opted_out=False)
    assert not domain.suppressed("case_assigned", STAFF, opted_out=True)


def test_retries_back_off_then_give_up():
    delays = [domain.retry_at(n, NOW) - NOW for n in range(len(domain.RETRY_DELAYS))]
    assert delays == sorted(delays) and delays[0] >= domain.RETRY_DELAYS[0]
    assert domain.retry_at(len(domain.RETRY_DELAYS), NOW) is None


def test_a_staff_member_is_one_recipient_per_channel_the_directory_has():
    both = domain.staff_recipients("mbb-0020", {"phone": "+905320000020",
                                                "email": "uzman@mersin.bel.tr"})
    assert [(tag, r.channel, r.staff) for tag, r in both] == [
        ("mbb-0020:sms", "sms", True), ("mbb-0020:email", "email", True)]
    assert domain.staff_recipients("x", {"phone": None, "email": None}) == []
    assert domain.message_key("e1", "case_assigned", "mbb-0020:sms") == \
        "e1:case_assigned:mbb-0020:sms"
    assert domain.message_key("e1", "case_closed") == "e1:case_closed"


def test_a_citizen_is_written_to_in_their_language_and_a_muhtar_in_the_muhtars_words():
    english = domain.applicant(routed(), {"phone": "+905551112233", "language": "en"},
                               "application_routed")
    assert (english.language, english.template) == ("en", None)
    muhtar = domain.applicant(routed(), {"phone": "+905551112233", "caller_type": "muhtar",
                                         "language": "xx"}, "application_routed")
    assert (muhtar.language, muhtar.template) == ("tr", "muhtar_forwarded")
