"""Every message notify sends, in Turkish and English: each template renders against its contract.

Data-driven: `TEMPLATES` names each template's audience, channels and two sample contexts: one
with every optional value None or empty, one full, with the longest names we know. Every case
renders each (template, channel, language, sample) with notify's own Jinja environment
(`StrictUndefined`, plain text) and checks what a recipient would see.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pytest
from jinja2 import meta

from services.common.links import make_link_token
from services.notify import domain

ENV = domain.template_environment()
LANGUAGES = ("tr", "en")
CHANNELS = ("sms", "email")
MAX_CITIZEN_SEGMENTS = 3  # UCS-2 (Turkish letters, and "Açık Kapı" in every text): 201 characters
MAX_STAFF_SEGMENTS = 4  # a ping with the console link; long names are shortened to fit
# What is needed and the result are worth a fourth segment: the citizen must not have to open
# the link to learn them.
LONGER_SMS = {"case_waiting": 4, "case_closed": 4}

BASE_URL = "https://acikkapi.mersin.bel.tr"
APPLICATION_ID = "01JD8Z6Q3N4V5W6X7Y8Z9ABCDE"
CODE = "MRS-2026-4K7Q-9XPD"
# A real signed link (itsdangerous token, 106 characters in all): SMS lengths are measured with it.
STATUS_LINK = f"{BASE_URL}/t/{make_link_token('a-test-secret-of-32-characters!!', APPLICATION_ID)}"
CONSOLE_LINK = f"{BASE_URL}/konsol/basvurular/{APPLICATION_ID}"
LONG_UNIT = "Fen İşleri Dairesi Başkanlığı Yol Bakım ve Onarım Şube Müdürlüğü"
LONG_INSTITUTION = "Mersin Su ve Kanalizasyon İdaresi Genel Müdürlüğü (MESKİ)"  # the longest
LONG_CATEGORY = "Yol, kaldırım ve asfalt bozukluğu (çukur, çökme, kırık bordür)"
LONG_TEXT = ("Başvurunuz üzerine ekiplerimiz 03.12.2026 tarihinde yerinde inceleme yaptı; "
             "Atatürk Caddesi üzerindeki çukur asfalt yamasıyla kapatıldı ve çevresindeki kırık "
             "bordürler yenilendi. Çalışma sırasında gösterdiğiniz anlayış için teşekkür ederiz.")
NEEDED = ("Arızalı sokak lambasının direği üzerindeki numarayı ve lambanın gündüz çekilmiş bir "
          "fotoğrafını başvuru sayfanızdan iletebilir misiniz? Direk numarası olmadan ekip yeri "
          "bulamıyor.")
SECURITY_CODE = "7QK2M9XD4P"
RESET_LINK = f"{BASE_URL}/console/parola-sifirla/{'R' * 24}.{'m' * 43}"

# What a context builder must never pass to a staff template: staff contexts below are given it
# anyway, and nothing of it may reach a staff SMS.
CITIZEN_DATA = {
    "citizen_name": "Ayşe Yılmaz", "phone": "+905551112233", "tckn": "10000000146",
    "email": "ayse.yilmaz@example.com", "address": "Cumhuriyet Mah. 1234 Sok. No:5 Mezitli",
    "security_code": SECURITY_CODE, "status_link": STATUS_LINK,
    "text": "Evimin önündeki çukur yüzünden arabam hasar gördü",
}

LEVELS = {
    "tr": {0: "birim uzmanı", 1: "birim amiri", 2: "müdür", 3: "başkan yardımcısı",
           4: "belediye başkanı"},
    "en": {0: "unit expert", 1: "supervisor", 2: "director", 3: "deputy mayor", 4: "mayor"},
}
REJECTION_CODES = ("empty", "no_tckn", "bad_tckn", "no_message", "attachment_too_large",
                   "attachment_type", "attachment_corrupt", "no_survey", "unknown_sender",
                   "something_new")  # the last: a code the templates do not know
SAME_CHANNEL = "<the channel rendered>"  # inbound_rejected answers on the channel it came in by


@dataclass(frozen=True)
class Spec:
    audience: str  # "citizen" (also muhtars) or "staff"
    minimal: dict  # every optional value None or empty
    full: dict  # everything set, long names
    channels: tuple[str, ...] = CHANNELS
    code_in_email: bool = True  # the e-mail body names the application's tracking code


DIGEST_ITEMS = [
    {"tracking_code_display": "MRS-2026-7TQ2-K4MZ", "unit": LONG_UNIT,
     "category_name": LONG_CATEGORY, "level": 4, "waited_hours": 52.5,
     "console_link": f"{BASE_URL}/konsol/basvurular/01JD8Z6Q3N4V5W6X7Y8Z9ABCD1"},
    {"tracking_code_display": "MRS-2026-9HX3-P2RW", "unit": "Zabıta Müdürlüğü",
     "category_name": "Gürültü", "level": 3, "waited_hours": None,
     "console_link": f"{BASE_URL}/konsol/basvurular/01JD8Z6Q3N4V5W6X7Y8Z9ABCD2"},
]

TEMPLATES: dict[str, Spec] = {
    # Citizen messages
    "application_received": Spec(
        "citizen", {"security_code": None}, {"security_code": SECURITY_CODE}),
    "application_routed": Spec(
        "citizen", {"unit_name": "Fen İşleri Müdürlüğü", "institution_name": "Mezitli Belediyesi"},
        {"unit_name": LONG_UNIT, "institution_name": LONG_INSTITUTION}),
    "application_referred": Spec(
        "citizen", {"institution_name": "TEDAŞ", "contact": {}},
        {"institution_name": "Mersin İl Milli Eğitim Müdürlüğü (Mersin Valiliği)",
         "contact": {"phone": "0324 123 45 67", "email": "mersinmem@meb.gov.tr",
                     "web": "https://mersin.meb.gov.tr/iletisim",
                     "address": "Çankaya Mah. Atatürk Cad. No:1 Akdeniz/Mersin"}}),
    "case_transferred": Spec(
        "citizen", {"unit_name": None, "institution_name": None},
        {"unit_name": LONG_UNIT, "institution_name": LONG_INSTITUTION}),
    "case_waiting": Spec("citizen", {"reason": None}, {"reason": NEEDED}),
    "case_closed": Spec(
        "citizen", {"result": None, "survey": False, "reopen_days": None},
        {"result": LONG_TEXT, "survey": True, "reopen_days": 30}),
    "case_reopened": Spec("citizen", {}, {}),
    "case_reopen_refused": Spec("citizen", {"reason": None}, {"reason": LONG_TEXT}),
    "delay_notice_due": Spec("citizen", {"hours_open": 48}, {"hours_open": 120}),
    "application_merged": Spec("citizen", {}, {}),
    "inbound_rejected": Spec(
        "citizen", {"reason": "something_new", "channel": SAME_CHANNEL, "subject": None},
        {"reason": "attachment_type", "channel": SAME_CHANNEL,
         "subject": "Atatürk Caddesi'ndeki çukur hakkında, fotoğraflar ekte " * 3},
        code_in_email=False),
    "muhtar_forwarded": Spec(
        "citizen", {"unit_name": "Zabıta Müdürlüğü", "institution_name": "Mezitli Belediyesi",
                    "status_link": None},
        {"unit_name": LONG_UNIT, "institution_name": LONG_INSTITUTION}),
    "muhtar_concluded": Spec(
        "citizen", {"result": None, "status_link": None}, {"result": LONG_TEXT}),
    "satisfaction_thanks": Spec("citizen", {"score": 5}, {"score": 1}),
    "one_time_code": Spec("citizen", {"code": "X7KQ4M"}, {"code": "X7KQ4M"}, channels=("sms",)),
    # Staff messages
    "case_assigned": Spec(
        "staff", {"unit_name": "Zabıta Müdürlüğü", "category_name": "Gürültü",
                  "priority": "low", "read_due": None, "role": "primary"},
        {"unit_name": LONG_UNIT, "category_name": LONG_CATEGORY, "priority": "urgent",
         "read_due": "02.12.2026 14:30", "role": "backup"}),
    "sla_warned": Spec(
        "staff", {"unit": "Zabıta Müdürlüğü", "deadline": "read", "percent_used": 80, "due": None},
        {"unit": LONG_UNIT, "deadline": "resolve", "percent_used": 90,
         "due": "02.12.2026 14:30"}),
    "case_escalated": Spec(
        "staff", {"unit": "Zabıta Müdürlüğü", "deadline": None, "to_level": 1,
                  "waited_hours": None},
        {"unit": LONG_UNIT, "deadline": "resolve", "to_level": 4, "waited_hours": 52.5}),
    "report_ready": Spec(
        "staff", {"kind": "weekly", "period": "2026-W48", "scope": "mersin_bb.roads",
                  "total": 0, "download_link": f"{BASE_URL}/api/v1/reports/files/x"},
        {"kind": "monthly", "period": "2026-11", "scope": LONG_UNIT, "total": 1234,
         "download_link": f"{BASE_URL}/api/v1/reports/files/monthly%7C2026-11%7Cunit%7Cx"},
        channels=("email",), code_in_email=False),
    "staff_password_reset": Spec(
        "staff", {"reset_link": RESET_LINK, "minutes": 30, "staff": "mez-0008",
                  "name": "mez-0008"},
        {"reset_link": RESET_LINK, "minutes": 30, "staff": "mez-0008",
         "name": "Bülent Aslan"}, channels=("email",), code_in_email=False),
    "mayor_digest": Spec(
        "staff", {"date": "02.12.2026", "count": 0, "items": []},
        {"date": "02.12.2026", "count": 3, "items": DIGEST_ITEMS}, code_in_email=False),
}
COMMON = {"language", "base_url", "application_id", "tracking_code_display", "status_link"}


def context(name: str, values: dict, channel: str, language: str) -> dict:
    """The variables a template receives: the common ones, its own, and (staff) the console
    link; staff contexts also get a citizen's data, which they must not show."""
    spec = TEMPLATES[name]
    ctx = {"language": language, "base_url": BASE_URL, "application_id": APPLICATION_ID,
           "tracking_code_display": CODE, "status_link": STATUS_LINK}
    if spec.audience == "staff":
        ctx.update(CITIZEN_DATA, console_link=CONSOLE_LINK)
    ctx.update({key: channel if value == SAME_CHANNEL else value for key, value in values.items()})
    return ctx


def render(channel: str, name: str, language: str, ctx: dict) -> tuple[str | None, str]:
    """`(subject, body)` as a recipient sees it: an SMS is one line (whitespace collapsed as
    notify's renderer does); an e-mail is its subject line, a blank line, then the body."""
    raw = ENV.get_template(f"{channel}/{name}.{language}.j2").render(ctx)
    if channel == "sms":
        return None, " ".join(raw.split())
    assert not raw.startswith(("\n", " ")), "the subject must be the first line"
    subject, _, rest = raw.partition("\n")
    blank, _, body = rest.partition("\n")
    assert subject.strip() and blank == "", "an e-mail is a subject line, then a blank line"
    return subject, body.strip() + "\n"


CASES = [
    pytest.param(name, channel, language, variant, id=f"{name}-{channel}-{language}-{variant}")
    for name, spec in TEMPLATES.items()
    for channel in spec.channels
    for language in LANGUAGES
    for variant in ("minimal", "full")
]


def rendered(name: str, channel: str, language: str, variant: str = "full", **values):
    spec = TEMPLATES[name]
    sample = {**(spec.minimal if variant == "minimal" else spec.full), **values}
    return render(channel, name, language, context(name, sample, channel, language))


# -- every template, both channels, both languages, both samples -----------------------------


@pytest.mark.parametrize(("name", "channel", "language", "variant"), CASES)
def test_every_message_renders_cleanly(name, channel, language, variant):
    spec = TEMPLATES[name]
    subject, text = rendered(name, channel, language, variant)
    whole = f"{subject or ''}\n{text}"
    assert "None" not in whole and "{{" not in whole and "{%" not in whole
    assert "Açık Kapı" in whole  # signed
    assert not re.search(r"[ \t][.,;:!?)]", whole), whole  # no gap left by an empty value
    if channel == "sms":
        assert text.startswith("Açık Kapı"), text
        limit = LONGER_SMS.get(name, MAX_CITIZEN_SEGMENTS) if spec.audience == "citizen" \
            else MAX_STAFF_SEGMENTS
        assert domain.sms_segments(text) <= limit, (domain.sms_segments(text), len(text), text)
        return
    assert "\n\n\n" not in text, text  # one blank line between paragraphs
    assert all(line == line.rstrip() for line in text.splitlines()), text
    greeting = text.splitlines()[0]
    if name == "inbound_rejected":
        assert greeting == {"tr": "Sayın gönderen,", "en": "Dear sender,"}[language]
    elif name.startswith("muhtar_"):
        assert greeting == {"tr": "Sayın Muhtar,", "en": "Dear Muhtar,"}[language]
    elif spec.audience == "citizen":
        assert greeting == {"tr": "Sayın başvuru sahibi,", "en": "Dear applicant,"}[language]
    if spec.code_in_email:
        assert CODE in text
    other = {"tr": ("Dear", "Your application"), "en": ("Sayın", "numaralı", "başvurunuz")}
    assert not any(word in whole for word in other[language]), whole


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_templates_use_only_the_variables_of_their_contract(name, language):
    """Contexts are built elsewhere to the contract: a template asking for any other name would
    fail at send time under StrictUndefined."""
    spec = TEMPLATES[name]
    allowed = COMMON | set(spec.full) | ({"console_link"} if spec.audience == "staff" else set())
    for channel in spec.channels:
        source = ENV.loader.get_source(ENV, f"{channel}/{name}.{language}.j2")[0]
        used = meta.find_undeclared_variables(ENV.parse(source))
        assert used <= allowed, (channel, used - allowed)


def test_every_template_has_both_languages_and_a_row_in_the_table():
    found = {path.relative_to(domain.TEMPLATE_DIR).as_posix()
             for path in domain.TEMPLATE_DIR.glob("*/*.j2")}
    expected = {f"{channel}/{name}.{language}.j2"
                for name, spec in TEMPLATES.items()
                for channel, language in itertools.product(spec.channels, LANGUAGES)}
    assert found == expected
    for path in found:
        stem, language, _ = path.rsplit(".", 2)
        sibling = {"tr": "en", "en": "tr"}[language]
        assert f"{stem}.{sibling}.j2" in found, path


# -- staff messages say nothing about the citizen --------------------------------------------


@pytest.mark.parametrize(("name", "channel", "language", "variant"),
                         [case for case in CASES if TEMPLATES[case.values[0]].audience == "staff"])
def test_staff_messages_carry_no_citizen_data(name, channel, language, variant):
    subject, text = rendered(name, channel, language, variant)
    for value in CITIZEN_DATA.values():
        assert value not in f"{subject or ''}\n{text}", value


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_staff_alert_links_to_the_console(language, channel):
    for name in ("case_assigned", "sla_warned", "case_escalated"):
        assert CONSOLE_LINK in rendered(name, channel, language)[1], name
    assert CONSOLE_LINK in rendered("mayor_digest", "sms", language)[1]


# -- what particular messages must say -------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_security_code_is_given_as_a_secret_only_when_owed(language, channel):
    _, owed = rendered("application_received", channel, language)
    _, none_owed = rendered("application_received", channel, language, "minimal")
    secret = {"tr": "paylaşmayın", "en": "do not share"}[language]
    assert SECURITY_CODE in owed and secret in owed
    assert {"tr": "Güvenlik", "en": "Security"}[language] not in none_owed
    assert STATUS_LINK in owed and STATUS_LINK in none_owed


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_each_refusal_reason_has_its_own_text(language, channel):
    texts = {code: rendered("inbound_rejected", channel, language, reason=code)[1]
             for code in REJECTION_CODES}
    assert len(set(texts.values())) == len(REJECTION_CODES), texts
    for code in ("no_survey", "unknown_sender"):  # not an application: no TCKN advice
        assert "kimlik" not in texts[code].lower(), texts[code]
    for code in ("no_tckn", "bad_tckn", "no_message"):
        assert "kimlik" in texts[code].lower(), texts[code]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refused_email_names_its_subject(language):
    subject, _ = rendered("inbound_rejected", "email", language, subject="Çukur")
    assert subject.endswith({"tr": "(Konu: Çukur)", "en": "(Subject: Çukur)"}[language])
    subject, _ = rendered("inbound_rejected", "email", language, "minimal")
    assert "Konu" not in subject and "Subject" not in subject


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_closing_message_asks_for_a_rating_only_with_a_survey(language, channel):
    _, asked = rendered("case_closed", channel, language, survey=True)
    _, not_asked = rendered("case_closed", channel, language, survey=False)
    assert "1-5" in asked and STATUS_LINK in asked
    assert {"tr": "puan", "en": "rat"}[language] in asked.lower()
    assert "1-5" not in not_asked and STATUS_LINK in not_asked
    reopen = {"tr": "yeniden aç", "en": "reopen"}[language]
    assert reopen in asked.lower() and reopen in not_asked.lower()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_closing_email_gives_the_result_and_the_reopening_window(language):
    _, text = rendered("case_closed", "email", language)
    assert LONG_TEXT in text and "30" in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("level", range(5))
def test_an_escalation_names_the_level_in_each_language(level, channel, language):
    subject, text = rendered("case_escalated", channel, language, to_level=level)
    assert LEVELS[language][level] in text, text
    if subject:
        assert LEVELS[language][level] in subject, subject
    for deadline in ("read", "resolve", None):
        _, text = rendered("case_escalated", channel, language, deadline=deadline)
        assert CODE in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_new_case_says_urgent_and_tells_the_backup_to_stand_in(language, channel):
    _, urgent = rendered("case_assigned", channel, language)  # urgent, backup
    _, usual = rendered("case_assigned", channel, language, "minimal")  # low, primary
    urgent_word, backup_word = {"tr": ("ACİL", "yedek"), "en": ("URGENT", "backup")}[language]
    assert urgent_word in urgent and urgent_word not in usual
    assert backup_word in urgent.lower() and backup_word not in usual.lower()
    assert "02.12.2026 14:30" in urgent
    if channel == "email":
        assert LONG_CATEGORY in urgent and LONG_UNIT in urgent
    else:  # long names shortened in an SMS: the console has them
        assert LONG_CATEGORY[:30] in urgent and LONG_UNIT[:30] in urgent


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_mayors_digest_lists_what_reached_the_top(language):
    subject, text = rendered("mayor_digest", "email", language)
    assert "02.12.2026" in subject
    for item in DIGEST_ITEMS:
        assert item["tracking_code_display"] in text and item["console_link"] in text
        assert LEVELS[language][item["level"]] in text
    assert "52" in text  # 52.5 working hours: whole hours waited
    assert {"tr": "2 tanesi", "en": "2 of them"}[language] in text  # two of three listed
    _, empty = rendered("mayor_digest", "email", language, "minimal")
    assert {"tr": "ulaşan başvuru yok", "en": "no application has reached"}[language] in empty
    _, sms = rendered("mayor_digest", "sms", language)
    assert "3" in sms


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_referral_says_how_to_reach_the_institution(language, channel):
    _, text = rendered("application_referred", channel, language)
    contact = TEMPLATES["application_referred"].full["contact"]
    assert TEMPLATES["application_referred"].full["institution_name"] in text
    assert contact["phone"] in text
    if channel == "email":
        assert all(value in text for value in contact.values())
    # the directory's shape: every key present, unknown ones None
    _, web_only = rendered("application_referred", channel, language, contact={
        "phone": None, "email": None, "web": "https://www.migm.gov.tr", "address": None})
    assert "https://www.migm.gov.tr" in web_only and "None" not in web_only


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["application_routed", "muhtar_forwarded", "case_transferred"])
def test_the_institution_is_named_where_the_sms_has_room(name, language):
    _, usual = rendered(name, "sms", language, unit_name="Fen İşleri Müdürlüğü",
                        institution_name="Mezitli Belediyesi")
    assert "Fen İşleri Müdürlüğü" in usual and "Mezitli Belediyesi" in usual
    _, longest = rendered(name, "sms", language)  # the longest unit in the longest institution
    assert LONG_UNIT in longest and domain.sms_segments(longest) <= MAX_CITIZEN_SEGMENTS
    _, email = rendered(name, "email", language)
    assert LONG_UNIT in email and LONG_INSTITUTION in email


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(("unit_name", "institution_name"), [
    (None, None), (LONG_UNIT, None), (None, LONG_INSTITUTION), (LONG_UNIT, LONG_INSTITUTION)])
def test_a_transfer_names_whatever_is_known_of_where_it_went(unit_name, institution_name,
                                                             channel, language):
    _, text = rendered("case_transferred", channel, language, unit_name=unit_name,
                       institution_name=institution_name)
    assert "None" not in text
    if unit_name:
        assert unit_name in text
    if institution_name and (channel == "email" or not unit_name):
        assert institution_name in text  # an SMS may leave it out beside a long unit name


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_waiting_and_refusal_tell_the_reason_in_full_by_email(language, channel):
    for name in ("case_waiting", "case_reopen_refused"):
        _, text = rendered(name, channel, language)
        if channel == "email":
            assert TEMPLATES[name].full["reason"] in text
    _, waiting = rendered("case_waiting", channel, language)
    assert STATUS_LINK in waiting  # where to reply
    assert TEMPLATES["case_waiting"].full["reason"][:40] in waiting  # what is needed, by SMS too


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_concluding_sms_gives_the_result(language):
    _, text = rendered("case_closed", "sms", language)
    assert TEMPLATES["case_closed"].full["result"][:40] in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_low_rating_is_offered_the_way_back(language, channel):
    _, low = rendered("satisfaction_thanks", channel, language, score=1)
    _, high = rendered("satisfaction_thanks", channel, language, score=5)
    assert "1/5" in low and STATUS_LINK in low
    assert "5/5" in high and STATUS_LINK not in high


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["muhtar_forwarded", "muhtar_concluded"])
def test_a_muhtar_is_addressed_as_such(name, language):
    address = {"tr": "Sayın Muhtar", "en": "Dear Muhtar"}[language]
    for channel in CHANNELS:
        assert address in rendered(name, channel, language)[1]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_staff_note_ending_in_punctuation_gets_no_second_stop(language):
    _, asked = rendered("case_waiting", "sms", language, reason="Adresiniz nedir?")
    _, done = rendered("case_closed", "sms", language, result="Kaldırım yenilendi.")
    _, plain = rendered("case_closed", "sms", language, result="Kaldırım yenilendi")
    assert "nedir? " in asked and "?." not in asked
    assert "yenilendi. " in done and ".." not in done
    assert "yenilendi. " in plain


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_password_reset_email_gives_the_link_its_lifetime_and_the_staff_code(language):
    subject, text = rendered("staff_password_reset", "email", language)
    assert RESET_LINK in text.splitlines()
    assert "30" in text and "mez-0008" in text and "Bülent Aslan" in text
    assert RESET_LINK not in subject
