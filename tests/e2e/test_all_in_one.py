"""End to end over real HTTP: `python -m services.all` as `make run` starts it, one port."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = {
    "kind": "complaint", "category": "road_damage", "channel": "web",
    "description": "Sokağımızda büyük bir çukur var.",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"},
    "citizen": {"tckn": "10000000146", "first_name": "Ayşe", "last_name": "Demir",
                "phone": "0555 111 22 33"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(fetch, done, deadline_s: float):
    """Call `fetch` until `done(result)` or the deadline; returns the last result."""
    until = time.monotonic() + deadline_s
    while True:
        result = fetch()
        if done(result) or time.monotonic() > until:
            return result
        time.sleep(0.05)  # polling a separate process over HTTP: no waiter can reach it


@pytest.fixture(scope="module")
def system(amqp_uri, tmp_path_factory):
    from services.common import topology

    topology.reset(amqp_uri, retry_delay_ms=50)  # an empty bus, as on a fresh machine
    tmp_path = tmp_path_factory.mktemp("all-in-one")
    port = free_port()
    env = dict(os.environ, AMQP_URI=amqp_uri, MONGO_URI="mongomock://e2e",
               HTTP_PORT=str(port), DEV_SINK_DIR=str(tmp_path / "sink"),
               EVENT_RETRY_DELAY_MS="50", LOG_LEVEL="WARNING")
    log = (tmp_path / "all.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "services.all"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def health():
        try:
            return requests.get(f"{base}/health", timeout=2).status_code
        except requests.ConnectionError:
            return None

    try:
        assert poll(health, lambda code: code == 200 or process.poll() is not None, 30) == 200, (
            (tmp_path / "all.log").read_text()[-3000:])
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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
                                     "reporting"])
def test_every_service_publishes_openapi_health_and_metrics_through_the_one_port(system, service):
    spec = requests.get(f"{system}/_/{service}/openapi.json", timeout=5)
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    assert requests.get(f"{system}/_/{service}/health", timeout=5).json()["status"] == "ok"
    metrics = requests.get(f"{system}/_/{service}/metrics", timeout=5).text
    assert "acikkapi_http_requests_total" in metrics
