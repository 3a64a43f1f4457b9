"""The public web form /basvuru: Turkish (English on request), no JavaScript, photo upload,
codes shown on success, errors named next to their fields."""
import io
import re

import pytest

from services.common.codes import normalise_tracking_code, security_digest
from tests.intake.intake_samples import BAD_CHECK_DIGIT, TCKN, executable, jpeg
from tests.support import database as get_database

FORM = {"kind": "complaint", "category": "road_damage", "description": "Kaldırım çökmüş.",
        "district": "Mezitli", "neighbourhood": "Tece", "first_name": "Ayşe",
        "last_name": "Demir", "tckn": TCKN, "phone": "0555 111 22 33",
        "preferred_channel": "sms", "consent": "yes",
        "idempotency_key": "01HFORMPAGE00000000000000"}



def db(config):
    return get_database(config, "intake")


def test_the_form_is_turkish_accessible_and_needs_no_javascript(client):
    page = client.get("/basvuru")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="tr">' in html and "Başvuru formu" in html
    assert "<script" not in html
    assert 'enctype="multipart/form-data"' in html and 'type="file"' in html
    for field in ("kind", "category", "description", "citizen-first_name", "citizen-tckn"):
        assert f'<label for="{field}"' in html  # every input has its label
    assert 'name="idempotency_key"' in html
    english = client.get("/basvuru?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Application form" in english


def test_a_sent_form_shows_both_codes_once_and_stores_the_photo_without_metadata(client, config):
    photo = jpeg(gps=((36.0, 1.0, 2.0), (34.0, 3.0, 4.0)))
    data = dict(FORM, photo=(io.BytesIO(photo), "cukur.jpg"))
    response = client.post("/basvuru", data=data, content_type="multipart/form-data")
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    tracking = re.search(r'id="tracking-code">([^<]+)<', html).group(1)
    security = re.search(r'id="security-code">([^<]+)<', html).group(1)
    stored = db(config)["applications"].find_one()
    assert stored["tracking_code"] == normalise_tracking_code(tracking)
    assert stored["security_digest"] == security_digest(config["CODE_PEPPER"], security)
    assert stored["channel"] == "web" and stored["codes_by_message"] is False
    assert len(stored["attachments"]) == 1
    again = client.post("/basvuru", data=dict(FORM, photo=(io.BytesIO(photo), "cukur.jpg")),
                        content_type="multipart/form-data")
    assert tracking in again.get_data(as_text=True)  # a double submit: the same application
    assert security in again.get_data(as_text=True)
    assert db(config)["applications"].count_documents({}) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"tckn": BAD_CHECK_DIGIT}, "citizen.tckn"),
    ({"description": ""}, "description"),
    ({"category": ""}, "category"),
    ({"phone": "", "email": ""}, "citizen.phone"),
    ({"language": "de"}, "citizen.language"),
])
def test_a_wrong_form_comes_back_with_the_field_named_and_the_values_kept(
        client, config, change, field):
    response = client.post("/basvuru", data=dict(FORM, **change),
                           content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and f'href="#{field.replace(".", "-")}"' in html
    assert 'aria-invalid="true"' in html
    assert "Demir" in html  # what was typed is kept
    assert db(config)["applications"].count_documents({}) == 0


def test_an_executable_renamed_jpg_is_refused_on_the_form(client, config):
    data = dict(FORM, photo=(io.BytesIO(executable()), "foto.jpg"))
    response = client.post("/basvuru", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert 'href="#photo"' in response.get_data(as_text=True)
    assert db(config)["applications"].count_documents({}) == 0
    assert db(config)["attachments"].count_documents({}) == 0


def test_the_language_of_our_messages_is_chosen_on_the_form_and_kept_on_the_citizen(
        client, config):
    turkish = client.get("/basvuru").get_data(as_text=True)
    english = client.get("/basvuru?lang=en").get_data(as_text=True)
    assert '<label for="citizen-language">' in turkish
    assert re.search(r'<option value="tr" lang="tr" selected>', turkish)
    assert re.search(r'<option value="en" lang="en" selected>', english)  # the page's language
    response = client.post("/basvuru?lang=en", data=dict(FORM, language="en"),
                           content_type="multipart/form-data")
    assert response.status_code == 201
    stored = db(config)["applications"].find_one()
    assert db(config)["citizens"].find_one({"_id": stored["citizen_id"]})["language"] == "en"
