"""`make run` as a citizen and an operator meet it: seven service processes under a supervisor,
nginx in front, the embedded database server underneath.

An accepted application survives a stop and a kill -9 of the whole process tree; each service
is a process of its own, and one that dies is started again while the others keep serving; a
stop ends every process within 30 s.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
import requests

from tests.support import SAMPLE_APPLICATION, LocalSystem, database, poll, valid_tckns

STOP_LIMIT = 30.0  # seconds within which every process must be gone (issue #9)


@pytest.fixture
def system(own_amqp_uri, databases, tmp_path):
    # one test client stands for every citizen of a burst: its lookup limit fits the burst
    local = LocalSystem(own_amqp_uri, databases, tmp_path,
                        TRACK_CLIENT_LIMIT=str(max(300, 3 * BURST)))
    yield local
    local.close()


def submit(system: LocalSystem, tckn: str = "10000000146") -> dict:
    body = dict(SAMPLE_APPLICATION, citizen=dict(SAMPLE_APPLICATION["citizen"], tckn=tckn))
    answer = requests.post(f"{system.base}/api/v1/applications", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def track(system: LocalSystem, created: dict) -> tuple[int, dict]:
    answer = requests.post(f"{system.base}/api/v1/track", timeout=10, json={
        "tracking_code": created["tracking_code"], "security_code": created["security_code"]})
    return answer.status_code, answer.json()


def assigned(system: LocalSystem, created: dict) -> dict:
    status, body = poll(lambda: track(system, created),
                        lambda got: got[0] == 200 and got[1]["status"] == "assigned", 30)
    assert status == 200 and body["status"] == "assigned", body
    return body


def kept(before: dict, after: dict) -> bool:
    """The same status, and every step seen before still on the timeline (notifications may
    have been added since)."""
    return after["status"] == before["status"] and all(
        step in after["timeline"] for step in before["timeline"])


def test_an_application_survives_a_stop_and_a_kill_of_the_whole_tree(system):
    system.start()
    created = submit(system)
    before = assigned(system, created)

    took = system.stop()
    assert took < STOP_LIMIT, f"the stop took {took:.1f} s"
    system.start()
    status, after_stop = track(system, created)
    assert status == 200
    assert kept(before, after_stop)

    system.kill()
    system.start()
    status, after_kill = track(system, created)
    assert status == 200
    assert kept(before, after_kill)


def test_each_service_is_a_process_of_its_own_and_one_that_dies_is_started_again(system):
    system.start()
    pids = system.service_pids()
    assert set(pids) == set(LocalSystem.SERVICES)
    assert len(set(pids.values())) == len(LocalSystem.SERVICES)

    os.kill(pids["intake"], signal.SIGKILL)
    tracked_meanwhile = requests.get(f"{system.base}/api/v1/categories", timeout=10)
    assert tracked_meanwhile.status_code == 200  # routing kept serving

    def restarted() -> int | None:
        pid = system.service_pids().get("intake")
        if pid is None or pid == pids["intake"]:
            return None
        try:
            ok = requests.get(f"{system.service_url('intake')}/health", timeout=2)
        except requests.RequestException:
            return None
        return pid if ok.status_code == 200 else None

    assert poll(restarted, lambda pid: pid is not None, 30) is not None
    assigned(system, submit(system, tckn="10000000078"))


# 120 in `make test`: two lookups each stay under one client's 300 per 10 minutes. The issue's
# full burst is `ACIKKAPI_BURST=1000 pytest tests/e2e/test_local_run.py -k burst`: the test
# client then stands for many citizens (one client's lookup limit raised to the burst's).
BURST = int(os.environ.get("ACIKKAPI_BURST", "120"))
DRAIN_SECONDS = max(60.0, BURST / 10)  # the pipeline carries ~25 applications/s here


def test_a_stop_right_after_a_burst_ends_every_process_and_loses_nothing(system, databases):
    """A lookup right after each 201, during the burst, opens the application (tracking's lag
    is never "wrong code"); SIGTERM while events still wait in the queues ends every process
    within 30 s; after a restart every accepted application reaches tracking with one SMS."""
    from concurrent.futures import ThreadPoolExecutor

    system.start()

    def submit_and_look(tckn: str) -> tuple[dict, int, str]:
        created = submit(system, tckn)
        status, body = track(system, created)
        return created, status, body.get("status")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(submit_and_look, valid_tckns(BURST)))
    looked = [(status, state) for _, status, state in results]
    assert all(status == 200 for status, _ in looked), Counter(looked)
    assert {state for _, state in looked} <= {"received", "assigned"}
    created = [one for one, _, _ in results]
    took = system.stop()
    assert took < STOP_LIMIT, f"the stop took {took:.1f} s"

    system.start()
    read_model = database(databases, "tracking")
    ids = {one["application_id"] for one in created}
    poll(lambda: sum(1 for doc in read_model["applications"].find({}, {"status": 1})
                     if doc["_id"] in ids and doc.get("status") == "assigned"),
         lambda n: n == BURST, DRAIN_SECONDS, every=0.5)
    for one in created:
        status, body = track(system, one)
        assert (status, body.get("status")) == (200, "assigned"), body

    def received_sms() -> list[str]:
        path = system.workdir / "sink" / "sms.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [line for line in lines if "alındı" in line]

    codes = [one["tracking_code"] for one in created]
    sent = poll(received_sms, lambda lines: sum(
        any(code in line for line in lines) for code in codes) == BURST, DRAIN_SECONDS)
    for code in codes:  # exactly one "received" SMS per application
        assert sum(code in line for line in sent) == 1, code


def test_an_expert_signs_in_to_the_console_through_nginx_and_sees_the_new_case(system):
    """The console behind nginx, with the sample staff list, reading routing's process."""
    import re

    system.start()
    created = submit(system)
    assigned(system, created)
    browser = requests.Session()
    form = browser.get(f"{system.base}/console/giris", timeout=10)
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    signed = browser.post(f"{system.base}/console/giris", timeout=30, allow_redirects=False,
                          data={"user": "mez-0008", "password": "yerel-parola-2026",
                                "csrf": csrf})
    assert signed.status_code == 303, signed.text
    inbox = browser.get(f"{system.base}/console/gelen", timeout=10)
    assert inbox.status_code == 200, inbox.text
    assert created["tracking_code"] in inbox.text
    assert browser.get(f"{system.base}/console/static/console.css", timeout=10).ok
