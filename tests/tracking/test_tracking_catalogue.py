"""A category an admin creates or changes in routing reaches tracking as `category_saved`: the
citizen's view names it (a rename shows at once, cached views included), Open311 lists it."""
import functools
from datetime import timedelta

import pytest

from services.common.codes import display_tracking_code
from services.common.events import utcnow
from tests import support
from tests.support import GRAFFITI, category_saved


@pytest.fixture
def deliver(config, container):
    return functools.partial(support.deliver, config, container)


@pytest.fixture
def client(running_client):
    """The running service's own HTTP side: the handlers and the views share its parts."""
    return running_client


def names(client, code: str) -> tuple[str, str]:
    answer = client.post("/api/v1/track", json={"tracking_code": display_tracking_code(code),
                                                "security_code": "SECRETCODE1"})
    assert answer.status_code == 200, answer.get_json()
    view = answer.get_json()
    return view["category_name_tr"], view["category_name_en"]


def open311_services(client) -> set[str]:
    answer = client.get("/open311/v2/services.json?jurisdiction_id=mezitli_bld")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {service["service_code"] for service in answer.get_json()}


def test_an_admin_category_is_named_on_the_citizens_view_and_listed_in_open311(
    deliver, client, bus_envelopes, new_application
):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code, category="graffiti"))
    assert names(client, code) == (None, None)  # unknown to tracking so far
    assert "graffiti" not in open311_services(client)

    now = utcnow()
    created = category_saved(GRAFFITI, at=now)
    deliver(created)
    assert names(client, code) == ("Duvar yazısı", "Graffiti")
    assert "graffiti" in open311_services(client)

    deliver(category_saved(dict(GRAFFITI, name_tr="Duvar boyama"),
                           at=now + timedelta(seconds=1)))
    assert names(client, code) == ("Duvar boyama", "Graffiti")  # the cached view re-rendered

    # an older change arriving late, and the first one redelivered, change nothing
    deliver(category_saved(dict(GRAFFITI, name_tr="Eski ad"), at=now - timedelta(seconds=1)))
    deliver(created)
    assert names(client, code) == ("Duvar boyama", "Graffiti")


def reopen(client, code: str) -> dict:
    return client.post("/api/v1/track", json={"tracking_code": display_tracking_code(code),
                                              "security_code": "SECRETCODE1"}).get_json()["reopen"]


def test_reopen_days_follow_the_admins_change(deliver, client, bus_envelopes, new_application):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code, category="graffiti"))
    deliver(bus_envelopes.case("case_resolved", application_id, "resolved", result="Silindi."))
    deliver(bus_envelopes.case("case_closed", application_id, "closed"))
    assert reopen(client, code)["allowed"] is False  # an unknown category: never
    deliver(category_saved(GRAFFITI))  # reopen_days: 10
    assert reopen(client, code)["allowed"] is True
    deliver(category_saved(dict(GRAFFITI, reopen_days=0)))
    assert reopen(client, code)["allowed"] is False
