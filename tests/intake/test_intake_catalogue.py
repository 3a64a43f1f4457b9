"""A category an admin creates in routing reaches intake as `category_saved`: applications in it
are accepted from then on, on every door of the process (the JSON API, the web form)."""
from datetime import timedelta

import pytest

from services.common.bootstrap import parts_of
from services.common.events import utcnow
from services.intake.service import IntakeService
from services.intake.web import create_app
from tests.support import GRAFFITI as LOW_PRIORITY_GRAFFITI
from tests.support import SAMPLE_APPLICATION, category_saved, deliver
from tests.support import database as get_database

GRAFFITI = dict(LOW_PRIORITY_GRAFFITI, priority="high")  # differs from the default


@pytest.fixture
def intake(config, container_factory):
    container = container_factory(IntakeService, config)
    container.start()
    return container


@pytest.fixture
def client(intake):
    """The HTTP side of the same process: on the parts the container's handler updates."""
    return create_app(parts_of(intake)).test_client()


def submit(client, category: str):
    body = dict(SAMPLE_APPLICATION, category=category)
    return client.post("/api/v1/applications", json=body)


def test_a_category_saved_by_an_admin_is_accepted_from_then_on(config, intake, client):
    refused = submit(client, "graffiti")
    assert refused.status_code == 422
    assert "category" in refused.get_json()["errors"]["json"]
    assert "Duvar yazısı" not in client.get("/basvuru").get_data(as_text=True)

    deliver(config, intake, category_saved(GRAFFITI))

    accepted = submit(client, "graffiti")
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["category_name"] == "Duvar yazısı"
    application = get_database(config, "intake")["applications"].find_one(
        {"_id": accepted.get_json()["application_id"]})
    assert application["priority"] == "high"  # the category's default priority
    assert "Duvar yazısı" in client.get("/basvuru").get_data(as_text=True)
    # a kind the category does not allow is refused naming the field
    body = dict(SAMPLE_APPLICATION, category="graffiti", kind="suggestion")
    assert "kind" in client.post("/api/v1/applications",
                                 json=body).get_json()["errors"]["json"]


def test_a_removed_category_is_refused_again_and_an_older_event_changes_nothing(
    config, intake, client
):
    now = utcnow()
    deliver(config, intake, category_saved(GRAFFITI, at=now - timedelta(seconds=2)))
    removal = category_saved(GRAFFITI, removed=True, at=now)
    deliver(config, intake, removal)
    assert submit(client, "graffiti").status_code == 422
    # late: the creation again (older than the removal), and the removal redelivered
    deliver(config, intake, category_saved(GRAFFITI, at=now - timedelta(seconds=1)))
    deliver(config, intake, removal)
    assert submit(client, "graffiti").status_code == 422
    # a file category can be removed by the admin too
    deliver(config, intake, category_saved({**GRAFFITI, "code": "road_damage"}, removed=True))
    assert submit(client, "road_damage").status_code == 422
