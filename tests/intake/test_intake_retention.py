"""KVKK retention in intake on the real store: what is old is anonymised, what is recent kept,
a second run changes nothing, a fresh process continues where the last one stopped, and two
processes at once anonymise each application exactly once.

The job is called directly with a clock the test sets (no sleeping); the conclusions are
folded as intake's `case_closed` / `case_reopened` handlers fold them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import eventlet
import pytest

from services.common.events import load_event, make_event, utcnow
from services.common.retention import ANONYMISED
from services.intake import media
from services.intake.bootstrap import build
from services.intake.schemas import CreateApplicationSchema
from tests.intake.intake_samples import WEB, jpeg
from tests.support import valid_tckns

PERIOD = timedelta(days=730)
NOW = utcnow()
OLD = NOW - PERIOD - timedelta(days=3)  # concluded before the period: due
RECENT = NOW - timedelta(days=10)  # concluded inside the period: kept


@pytest.fixture
def parts(config):
    built = build(config)
    yield built
    built.close()


def submit(parts, tckn: str, **changes) -> str:
    # no coordinates: two people's potholes at one spot would be merged as duplicates
    location = {k: v for k, v in WEB["location"].items() if k not in ("lat", "lon")}
    payload = dict(WEB, citizen=dict(WEB["citizen"], tckn=tckn),
                   location=dict(location, address="Tece Mah. 1. Sk. No: 3"), **changes)
    valid = CreateApplicationSchema().load(payload)
    photo = media.prepare(jpeg(), "ev-onu.jpg", 5 * 1024 * 1024)
    return parts.intake.submit(valid, attachments=[photo])["application_id"]


def conclude(parts, application_id: str, at, event_type: str = "case_closed") -> None:
    state = "closed" if event_type == "case_closed" else "assigned"
    parts.retention.record(load_event(make_event(event_type, application_id,
                                                 {"state": state}, occurred_at=at)))


def run(parts, now=NOW):
    parts.retention_job.clock = lambda: now
    return parts.retention_job.run()


def versions(parts) -> dict[str, int]:
    return {doc["_id"]: doc.get("_v", 0) for collection in ("applications", "citizens")
            for doc in parts.db[collection].find({}, {"_v": 1})}


def test_old_applications_are_anonymised_recent_ones_kept_and_a_second_run_is_a_no_op(parts):
    ayse, mehmet = valid_tckns(2)
    old_of_ayse = submit(parts, ayse, category="road_damage")
    recent_of_ayse = submit(parts, ayse, category="noise")
    old_of_mehmet = submit(parts, mehmet)
    conclude(parts, old_of_ayse, OLD)
    conclude(parts, recent_of_ayse, RECENT)
    conclude(parts, old_of_mehmet, OLD)

    photos = [f for a in parts.store.get_application(old_of_mehmet)["attachments"]
              for f in (a["id"], a["thumbnail_id"]) if f]
    first = run(parts)
    assert sorted(first.anonymised) == sorted([old_of_ayse, old_of_mehmet])

    old = parts.store.get_application(old_of_mehmet)
    assert old["description"] == ANONYMISED and old["anonymised_at"]
    assert old["location"] == {"province": "Mersin", "district": "Mezitli",
                               "neighbourhood": "Tece"}  # no street, no coordinates
    assert old["attachments"] == [] and old["attachments_removed"] == 1
    assert photos and all(parts.store.attachments.get(f) is None for f in photos)
    recent_photo = parts.store.get_application(recent_of_ayse)["attachments"][0]["id"]
    assert parts.store.attachments.get(recent_photo) is not None
    assert old["tracking_code"] and old["category"] == "road_damage"  # the figures' keys
    mehmet_profile = parts.store.get_citizen(old["citizen_id"])
    assert mehmet_profile["anonymised_at"]
    assert not {"tckn", "first_name", "last_name", "phone", "email"} & set(mehmet_profile)
    assert parts.store.citizens_with_phone("+905551112233") == [
        parts.store.get_citizen(parts.store.get_application(recent_of_ayse)["citizen_id"])]

    # Ayşe has an application inside the period: her profile stays, that application too
    assert parts.store.get_application(recent_of_ayse)["description"] == WEB["description"]
    ayse_profile = parts.store.get_citizen(
        parts.store.get_application(old_of_ayse)["citizen_id"])
    assert ayse_profile["first_name"] == "Ayşe" and ayse_profile["tckn"] == ayse
    assert parts.store.get_application(old_of_ayse)["description"] == ANONYMISED

    before = versions(parts)
    again = run(parts)
    assert again.anonymised == [] and versions(parts) == before  # nothing written at all


def test_a_reopened_application_is_not_anonymised_until_concluded_again_long_enough(parts):
    (tckn,) = valid_tckns(1)
    application = submit(parts, tckn)
    conclude(parts, application, OLD)
    conclude(parts, application, OLD + timedelta(days=1), "case_reopened")
    assert run(parts).anonymised == []
    conclude(parts, application, RECENT)  # concluded again: its period starts again
    assert run(parts).anonymised == []
    assert run(parts, RECENT + PERIOD + timedelta(days=2)).anonymised == [application]


def test_a_fresh_process_continues_where_the_last_one_stopped(config, parts):
    tckns = valid_tckns(3)
    first, second, third = (submit(parts, tckn) for tckn in tckns)
    conclude(parts, first, OLD)
    conclude(parts, second, OLD + timedelta(days=2))
    conclude(parts, third, RECENT)
    assert run(parts, OLD + PERIOD + timedelta(days=1)).anonymised == [first]
    parts.close()

    restarted = build(config)  # a new process over the same database
    try:
        assert run(restarted, OLD + PERIOD + timedelta(days=1)).anonymised == []
        assert run(restarted).anonymised == [second]  # later: the next day is due
        assert restarted.store.get_application(first)["anonymised_at"]
        assert restarted.store.get_application(third)["description"] == WEB["description"]
        # what the first process read is not read again
        assert run(restarted).days == []
    finally:
        restarted.close()


@pytest.mark.parametrize("lease", [None, timedelta(0)], ids=["leased", "no-lease"])
def test_two_processes_at_once_anonymise_each_application_exactly_once(config, parts, lease):
    """Two compositions (two processes' worth of clients and jobs) run the job at the same
    time. With the lease a day is one process's; with no lease at all (`no-lease`: every
    lease is taken over at once) both work the same days, and the guarded writes still let
    one of them anonymise each document, once."""
    applications = [submit(parts, tckn) for tckn in valid_tckns(12)]
    for n, application in enumerate(applications):
        conclude(parts, application, OLD - timedelta(days=n % 3))
    other = build(config)
    if lease is not None:
        parts.retention.lease = other.retention.lease = lease
    before = versions(parts)
    try:
        runs = [eventlet.spawn(run, one) for one in (parts, other)]
        results = [each.wait() for each in runs]
    finally:
        other.close()
    done = [a for result in results for a in result.anonymised]
    assert sorted(done) == sorted(applications)  # each once, by one of the two
    after = versions(parts)
    for application in applications:
        stored = parts.store.get_application(application)
        assert stored["description"] == ANONYMISED
        assert after[application] == before[application] + 1  # written exactly once
        assert after[stored["citizen_id"]] == before[stored["citizen_id"]] + 1
    assert run(parts).anonymised == []


def test_a_conclusion_filed_on_a_day_the_job_has_passed_is_read_on_the_next_day(parts):
    """A `case_closed` replayed long after the fact, for a day already closed, is filed again
    on the first day not closed: it is anonymised once that day has passed the period (a day
    late at most), not forgotten."""
    early, late = (submit(parts, tckn) for tckn in valid_tckns(2))
    conclude(parts, early, OLD)
    assert run(parts).anonymised == [early]
    conclude(parts, late, OLD - timedelta(days=5))  # that day is behind the cursor
    assert run(parts).anonymised == []
    assert run(parts, NOW + timedelta(days=1)).anonymised == [late]


def test_the_operators_command_in_two_processes_at_once(config, parts):
    """`python -m services.intake.retention --once`, twice at the same moment, as two OS
    processes over the same database: between them every due application once, no error."""
    applications = [submit(parts, tckn) for tckn in valid_tckns(6)]
    for n, application in enumerate(applications):
        conclude(parts, application, OLD - timedelta(days=n % 2))
    env = dict(os.environ, **{k: v for k, v in config.items()
                              if k.startswith("MONGO") and isinstance(v, str)})
    command = [sys.executable, "-m", "services.intake.retention", "--once"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(answer["anonymised"] for answer in answers) == len(applications)
    assert all(parts.store.get_application(a)["description"] == ANONYMISED
               for a in applications)
