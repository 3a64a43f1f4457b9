"""End to end over real HTTP: `python -m services.all` as `make run` starts it, one port."""
import time

import pytest
import requests

from tests.support import SAMPLE_APPLICATION, all_in_one, poll

APPLICATION = SAMPLE_APPLICATION


@pytest.fixture(scope="module")
def system(module_amqp_uri, module_databases, tmp_path_factory):
    with all_in_one(module_amqp_uri, module_databases,
                    tmp_path_factory.mktemp("all-in-one")) as base:
        yield base


def test_the_readme_example_is_accepted_and_tracked_as_assigned(system):
    created = requests.post(f"{system}/api/v1/applications", json=APPLICATION, timeout=5)
    assert created.status_code == 201, created.text
    codes = {k: created.json()[k] for k in ("tracking_code", "security_code")}
    started = time.monotonic()
    tracked = poll(lambda: requests.post(f"{system}/api/v1/track", json=codes, timeout=5),
                   lambda r: r.status_code == 200 and r.json()["status"] == "assigned", 10)
    took = time.monotonic() - started
    assert tracked.json()["status"] == "assigned", tracked.text
    print(f"assigned {took * 1000:.0f} ms after 201")
    categories = requests.get(f"{system}/api/v1/categories", timeout=5).json()
    assert {"road_damage", "water_leak", "natural_gas"} <= {c["code"] for c in categories["items"]}


def test_bad_input_over_http_names_the_field(system):
    bad = dict(APPLICATION, citizen=dict(APPLICATION["citizen"], tckn="12345678901"))
    response = requests.post(f"{system}/api/v1/applications", json=bad, timeout=5)
    assert response.status_code == 422
    assert "tckn" in response.json()["errors"]["json"]["citizen"]
    junk = requests.post(f"{system}/api/v1/applications", data="{",
                         headers={"Content-Type": "application/json"}, timeout=5)
    assert junk.status_code == 400


@pytest.mark.parametrize("service", ["intake", "routing", "sla", "notify", "tracking",
                                     "reporting", "console"])
def test_every_service_publishes_openapi_health_and_metrics_through_the_one_port(system, service):
    spec = requests.get(f"{system}/_/{service}/openapi.json", timeout=5)
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    assert requests.get(f"{system}/_/{service}/health", timeout=5).json()["status"] == "ok"
    metrics = requests.get(f"{system}/_/{service}/metrics", timeout=5).text
    assert "acikkapi_http_requests_total" in metrics


def test_the_one_process_is_live_and_ready_when_every_service_in_it_is(system):
    for path in ("/health/live", "/health/ready"):
        answer = requests.get(f"{system}{path}", timeout=10)
        assert answer.status_code == 200, answer.text
        assert set(answer.json()["services"]) == {
            "intake", "routing", "sla", "notify", "tracking", "reporting", "console"}
    ready = requests.get(f"{system}/_/routing/health/ready", timeout=10).json()
    assert ready == {"service": "routing", "status": "ok", "failures": {}}
