"""Intake's pure rules: duplicates, text and e-mail parsing, attachments, identity."""
import io
import math
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from services.common.catalogue import load_categories
from services.common.config import DEFAULTS
from services.intake import domain, media
from services.intake.channels import email as email_channel
from services.intake.channels import text
from tests.intake.intake_samples import (
    BAD_CHECK_DIGIT,
    FIXTURES,
    TCKN,
    big_photo,
    email_bytes,
    executable,
    jpeg,
)

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
POLICY = domain.DuplicatePolicy(window=timedelta(hours=72), distance_m=50)
CATALOGUE = load_categories(DEFAULTS["CATALOGUE_PATH"])


def app(app_id="b", *, citizen="c1", category="road_damage", at=NOW, lat=None, lon=None,
        status="received"):
    return {"_id": app_id, "tracking_code": f"T{app_id}", "citizen_id": citizen,
            "category": category, "received_at": at, "status": status,
            "location": {"province": "Mersin", "lat": lat, "lon": lon}}


def entry(**kwargs):
    return domain.duplicate_entry(app(**kwargs))


# -- duplicates ------------------------------------------------------------------------------

def test_haversine_measures_metres_on_the_ground():
    # one thousandth of a degree of latitude is about 111 m anywhere
    assert domain.haversine_m(36.0, 34.0, 36.001, 34.0) == pytest.approx(111.2, abs=0.5)
    assert domain.haversine_m(36.0, 34.0, 36.0, 34.0) == 0


def test_the_same_citizen_same_category_inside_the_window_is_a_duplicate_of_the_earliest():
    older = entry(app_id="a1", at=NOW - timedelta(hours=5))
    oldest = entry(app_id="a0", at=NOW - timedelta(hours=70))
    found = domain.find_original(app(), [older, oldest], POLICY)
    assert found["application_id"] == "a0"


@pytest.mark.parametrize("earlier", [
    {"app_id": "a", "at": NOW - timedelta(hours=73)},           # outside the window
    {"app_id": "a", "category": "noise", "at": NOW},            # another category
    {"app_id": "a", "citizen": "c2", "at": NOW},                # someone else, no place
])
def test_no_duplicate_outside_the_rule(earlier):
    assert domain.find_original(app(), [entry(**earlier)], POLICY) is None


def test_two_people_reporting_the_same_spot_within_the_distance_are_linked():
    first = entry(app_id="a", citizen="c2", lat=36.7451, lon=34.5311, at=NOW - timedelta(hours=1))
    near = app(citizen="c9", lat=36.7453, lon=34.5312)  # about 24 m away
    far = app(citizen="c9", lat=36.7460, lon=34.5311)  # about 100 m away
    assert domain.find_original(near, [first], POLICY)["application_id"] == "a"
    assert domain.find_original(far, [first], POLICY) is None
    # every key a near point is filed under is among the keys the other one probes
    assert set(domain.own_keys(app("a", lat=36.7451, lon=34.5311), POLICY)) & set(
        domain.probe_keys(near, POLICY))


def test_a_confidential_application_is_never_linked_to_someone_elses_report():
    secret = domain.duplicate_entry(dict(app("a", citizen="c2", lat=36.7451, lon=34.5311,
                                             at=NOW - timedelta(hours=1)), confidential=True))
    neighbour = app(citizen="c9", lat=36.7452, lon=34.5311)
    assert domain.find_original(neighbour, [secret], POLICY) is None
    assert domain.find_original(dict(neighbour, citizen_id="c2"), [secret], POLICY)  # theirs


def test_of_two_simultaneous_submissions_only_the_later_is_the_duplicate():
    one, two = app("a"), app("b")  # same millisecond
    assert domain.find_original(one, [domain.duplicate_entry(two)], POLICY) is None
    assert domain.find_original(two, [domain.duplicate_entry(one)], POLICY)["application_id"] == "a"


def test_answered_requests_are_never_merged():
    assert domain.find_original(app(status="answered"), [entry(app_id="a")], POLICY) is None


# -- SMS / message text --------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "tckn", "message"), [
    (f"{TCKN} Sokağımızda çukur var", TCKN, "Sokağımızda çukur var"),
    (f"TC {TCKN}: çöpler alınmadı", TCKN, "çöpler alınmadı"),
    ("T.C. Kimlik No: 100 000 001 46 - sokak lambası yanmıyor", TCKN,
     "sokak lambası yanmıyor"),
])
def test_an_sms_is_a_tckn_and_a_message(raw, tckn, message):
    parsed = text.parse_tckn_message(raw)
    assert (parsed.tckn, parsed.message) == (tckn, message)


@pytest.mark.parametrize(("raw", "reason"), [
    ("", text.EMPTY), ("   ", text.EMPTY), (None, text.EMPTY),
    ("Sokağımızda çukur var", text.NO_TCKN),
    (f"{BAD_CHECK_DIGIT} Sokağımızda çukur var", text.BAD_TCKN),
    ("12345 çukur", text.BAD_TCKN),
    # Arabic-Indic digits match `\d` and pass python-stdnum: refused, never stored as such
    ("".join(chr(ord("٠") + int(d)) for d in TCKN) + " çukur", text.BAD_TCKN),
    (TCKN, text.NO_MESSAGE),
])
def test_a_malformed_sms_is_refused_with_a_reason(raw, reason):
    with pytest.raises(text.TextRefused) as refused:
        text.parse_tckn_message(raw)
    assert refused.value.reason == reason


def test_a_message_without_tckn_is_accepted_where_one_is_not_required():
    parsed = text.parse_tckn_message("Parkta ağaç devrildi", tckn_required=False)
    assert (parsed.tckn, parsed.message) == (None, "Parkta ağaç devrildi")


@pytest.mark.parametrize(("message", "kind", "category"), [
    ("Sokağımızda büyük bir ÇUKUR var", "complaint", "road_damage"),
    ("Ana boru patladı, su akıyor", "complaint", "water_leak"),
    ("Çöpler üç gündür alınmadı", "complaint", "waste_collection"),
    ("Zabıta ekibine çok teşekkür ederim", "thanks", "thanks_general"),
    ("Sahile bisiklet yolu yapılmasını öneriyorum", "suggestion", "suggestion_general"),
    ("Belediyeye bir şey söylemek istiyorum", "complaint", "complaint_general"),
])
def test_text_is_classified_from_turkish_keywords(message, kind, category):
    assert text.classify(message, CATALOGUE) == (kind, category)


def test_a_named_neighbourhood_places_the_text():
    places = {"tece": ("Mersin", "Mezitli", "Tece"), "barbaros": ("Mersin", "Yenişehir",
                                                                 "Barbaros")}
    assert text.locate("TECE mahallesinde çukur", places) == {
        "province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"}
    assert text.locate("Tece ve Barbaros arasında", places) is None  # ambiguous


# -- identity -------------------------------------------------------------------------------------

def test_names_compare_turkish_case_insensitively():
    assert domain.names_match("İsmail", "Çelik", "ismail", "ÇELİK")
    assert domain.names_match("Ilgaz", "Doğan", "ILGAZ", "doğan")
    assert not domain.names_match("Ilgaz", "Doğan", "ilgaz", "Doğan")  # I is ı, not i


def test_the_tckn_is_masked_for_staff():
    assert domain.mask_tckn(TCKN) == "100******46"


def test_people_without_a_tckn_are_keyed_by_their_contact_and_flagged():
    citizen = domain.build_citizen({"first_name": "John", "last_name": "Smith",
                                    "phone": "+905551112299"}, "k", channel="web")
    assert citizen["identity"] == "no_tckn" and citizen["_id"].startswith("nt-")
    assert domain.build_citizen(None, "k", channel="web") is None  # anonymous


def test_answers_at_first_contact_only_for_first_contact_categories():
    with pytest.raises(domain.Rejected) as refused:
        domain.check_answer({"answer": "Çukur kapatılacak"}, CATALOGUE["road_damage"])
    assert "answer" in refused.value.errors
    assert domain.check_answer({"answer": " Vergi borcunuz yok. "},
                               CATALOGUE["debt_inquiry"]) == "Vergi borcunuz yok."
    with pytest.raises(domain.Rejected):
        domain.check_answer({"answered": True, "answer": ""}, CATALOGUE["debt_inquiry"])


# -- e-mail ----------------------------------------------------------------------------------------

def test_a_raw_email_file_gives_sender_subject_body_and_attachment():
    parsed = email_channel.parse_email((FIXTURES / "complaint_with_photo.eml").read_bytes())
    assert parsed.sender == "ayse@example.com" and parsed.sender_name == "Ayşe Demir"
    assert parsed.subject == "Tece'de yol çökmesi"
    assert "büyük bir çukur oluştu" in parsed.text  # the plain part, decoded
    [photo] = parsed.attachments
    assert photo.filename == "IMG_2041.jpg" and media.sniff(photo.data) == "image/jpeg"


def test_an_html_only_email_is_read_as_text_without_markup_or_scripts():
    raw = email_bytes(text=None, html="<p>Merhaba<br>çukur &amp; su</p><script>x()</script>")
    parsed = email_channel.parse_email(raw)
    assert parsed.text == "Merhaba\nçukur & su"


def test_an_email_without_a_sender_cannot_be_answered():
    with pytest.raises(email_channel.EmailRefused):
        email_channel.parse_email(b"Subject: x\n\nbody\n")


# -- attachments -----------------------------------------------------------------------------------

def test_photos_lose_their_metadata_but_their_gps_is_read_first():
    raw = jpeg(gps=((36.0, 45.0, 0.0), (34.0, 30.0, 0.0)))
    assert Image.open(io.BytesIO(raw)).getexif()  # the upload has EXIF
    prepared = media.prepare(raw, "C:\\fotolar\\çukur.JPG", 10_000_000)
    assert prepared.gps == (36.75, 34.5)
    assert dict(Image.open(io.BytesIO(prepared.data)).getexif()) == {}
    assert b"SahaTablet" not in prepared.data
    assert prepared.filename == "çukur.jpg"
    thumb = Image.open(io.BytesIO(prepared.thumbnail))
    assert max(thumb.size) == media.THUMBNAIL_PX


@pytest.mark.parametrize(("data", "reason"), [
    (executable(), media.BAD_TYPE),
    (big_photo(), media.TOO_LARGE),
    (b"\xff\xd8\xff" + b"not really a jpeg", media.CORRUPT),
    (b"", media.BAD_TYPE),
])
def test_uploads_are_judged_by_their_bytes_not_their_name(data, reason):
    with pytest.raises(media.AttachmentRefused) as refused:
        media.prepare(data, "foto.jpg", 10 * 1024 * 1024)
    assert refused.value.reason == reason


def test_a_spot_within_the_distance_is_always_in_a_cell_the_other_probes_and_few_are_read():
    """Probing reads only the neighbouring cells the distance reaches; none that matters is
    ever left out (random pairs of spots, Turkey's latitudes, right up to the distance)."""
    import random

    rng = random.Random(20261201)
    probed = []
    for _ in range(20_000):
        lat, lon = rng.uniform(35.8, 42.1), rng.uniform(26.0, 44.8)
        bearing, metres = rng.uniform(0, 2 * math.pi), POLICY.distance_m * rng.random() ** 0.2
        other_lat = lat + metres * math.cos(bearing) / 111_320
        other_lon = lon + metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
        if domain.haversine_m(lat, lon, other_lat, other_lon) > POLICY.distance_m:
            continue
        keys = domain.probe_keys(app(citizen=None, lat=lat, lon=lon), POLICY)
        [own] = domain.own_keys(app(citizen=None, lat=other_lat, lon=other_lon), POLICY)
        assert own in keys, (lat, lon, other_lat, other_lon)
        probed.append(len(keys))
    assert max(probed) <= 6 and sum(probed) / len(probed) < 5  # of the 9 cells around
