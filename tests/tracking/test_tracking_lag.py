"""Our own lag is never the citizen's failure.

Under a burst tracking folds `application_received` later than intake answers 201. A citizen
who looks up the codes just received must see the application (as received), however often they
try before tracking catches up; the codes must never be counted as wrong guesses nor lock. Here
tracking's consumer is not running at all: only intake, which owns the codes, can confirm them.
"""
import pytest

from services.common.bootstrap import parts_of
from services.intake.service import IntakeService
from services.intake.web import create_app as intake_app
from tests.support import SAMPLE_APPLICATION, database

TRACK = "/api/v1/track"


@pytest.fixture
def lagging(config, container_factory, make_app):
    """Intake running (its RPCs answer), tracking's HTTP side with nothing folded."""
    config = dict(config, TRACK_CODE_FAILURES="3", TRACK_CLIENT_FAILURES="5")
    intake = container_factory(IntakeService, config)
    intake.start()
    created = intake_app(parts_of(intake)).test_client().post("/api/v1/applications",
                                                              json=SAMPLE_APPLICATION)
    assert created.status_code == 201, created.get_json()
    return make_app(config).test_client(), created.get_json()


def test_the_codes_just_given_open_the_application_before_tracking_has_folded_it(lagging):
    client, created = lagging
    for _ in range(10):  # more than the code's and the client's failure limits
        answer = client.post(TRACK, json={"tracking_code": created["tracking_code"],
                                          "security_code": created["security_code"]})
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert body["status"] == "received"
        assert body["tracking_code"] == created["tracking_code"]
        assert [step["status"] for step in body["timeline"]] == ["received"]


def test_a_wrong_security_code_is_still_wrong_and_counts(lagging):
    client, created = lagging
    statuses = [client.post(TRACK, json={"tracking_code": created["tracking_code"],
                                         "security_code": "WRONGCODE1"}).status_code
                for _ in range(4)]
    assert statuses == [404, 404, 404, 429]  # the code locks after 3 failures
    right = client.post(TRACK, json={"tracking_code": created["tracking_code"],
                                     "security_code": created["security_code"]})
    assert right.status_code == 429  # locked even for the right code, as designed


def test_the_pages_open_it_too(lagging):
    client, created = lagging
    form = client.get("/takip")
    token = form.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/takip", data={"tracking_code": created["tracking_code"],
                                         "security_code": created["security_code"],
                                         "csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    page = client.get("/takip/basvuru")
    assert page.status_code == 200
    assert created["tracking_code"] in page.get_data(as_text=True)


def test_an_intake_that_does_not_answer_is_asked_a_few_times_not_on_every_lookup(config):
    """Intake away: a few receipt checks in a row wait for it, the lookups after them do not;
    one failure alone (a slow answer under a burst) pauses nothing."""
    from services.common.catalogue_cache import open_catalogue
    from services.tracking.lookup import RECEIPTS_FAILURES_TO_PAUSE, NotFound, Tracker
    from services.tracking.store import TrackingStore

    asked = []

    def away(code, digest):
        asked.append(code)
        raise TimeoutError("intake did not answer")

    db = database(config, "tracking")
    tracker = Tracker(TrackingStore(db), config, open_catalogue(config, db), receipts=away)
    for n in range(10):
        outcome = tracker.lookup(f"AAA{n:06d}", "WRONGCODE1", f"10.0.0.{n}")
        assert isinstance(outcome, NotFound)
    assert len(asked) == RECEIPTS_FAILURES_TO_PAUSE == 3
