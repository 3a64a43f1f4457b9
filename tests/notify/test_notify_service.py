"""The notify service on the real broker, asking the real intake service for the destination."""
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kombu import Connection, Queue
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_waiter
from pymongo.errors import AutoReconnect

from services.common import topology
from services.common.bootstrap import parts_of
from services.common.codes import normalise_tracking_code
from services.common.config import DEFAULTS
from services.common.dlq import list_dead_letters
from services.common.events import make_event, new_event_id
from services.intake.service import IntakeService
from services.intake.store import IntakeStore
from services.intake.web import create_app as create_intake_app
from services.notify.service import NotifyService
from services.notify.store import NotifyStore
from services.routing.directory import load_directory
from tests.support import database, deliver, publish

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PHONE = "+905551112233"
SUBMISSION = {
    "kind": "complaint", "category": "road_damage", "channel": "web",
    "description": "Sokağımızda büyük bir çukur var.",
    "location": {"province": "Mersin", "district": "Mezitli"},
    "citizen": {"tckn": "10000000146", "first_name": "Ayşe", "last_name": "Demir",
                "phone": "05551112233"},
}


@pytest.fixture
def outcomes(config):
    """A probe queue on notify's exchange: every notification_sent / _failed published."""
    conn = Connection(config["AMQP_URI"])
    channel = conn.channel()
    queue = Queue(f"probe-notify-outcomes-{uuid.uuid4().hex[:8]}",
                  exchange=topology.event_exchange("notify"), auto_delete=True)
    queue(channel).declare()
    for event_type in ("notification_sent", "notification_failed"):
        queue(channel).bind_to(exchange=topology.event_exchange("notify"),
                               routing_key=event_type)
    yield _Probe(queue(channel))
    queue(channel).delete()
    conn.release()


class _Probe:
    def __init__(self, queue):
        self.queue = queue

    def drain(self, application_id: str) -> list[dict]:
        """What waits in the probe queue now about `application_id` (swept before)."""
        got = []
        while (message := self.queue.get(no_ack=True)) is not None:
            got.append(json.loads(message.body))
        # another test run sharing the broker may publish too: keep only ours
        return [event for event in got if event["application_id"] == application_id]


@pytest.fixture
def intake(config, container_factory):
    """The real intake service (for `get_contact`)."""
    container = container_factory(IntakeService, config)
    container.start()
    return container


class DirectoryOnly:
    """Routing's staff-directory RPCs over the sample organisation, and nothing else: the real
    routing service would route the events these tests publish and add messages of its own."""

    name = "routing"
    directory = load_directory(DEFAULTS["ORGANISATION_PATH"])

    @rpc
    def ladder_staff(self, unit: str, level: int) -> list[dict]:
        return [{"code": code, "position": position}
                for position, code in self.directory.ladder(unit)[level]["who"]]

    @rpc
    def staff_contact(self, code: str) -> dict | None:
        record = self.directory.staff.get(code)
        return record and {"code": code, "phone": record["phone"], "email": record["email"]}


@pytest.fixture
def system(config, container_factory, intake):
    """Real intake and notify containers, routing's directory; the notify one."""
    container_factory(DirectoryOnly, config).start()
    notify = container_factory(NotifyService, config)
    notify.start()
    return notify


@pytest.fixture
def app_id() -> str:
    """A fresh application id per test, so nothing else on the broker can be mistaken for it."""
    return new_event_id()


def seed_application(config: dict, application_id: str, phone: str = PHONE) -> None:
    """A citizen and their application in intake's store, with no event (we publish our own)."""
    store = IntakeStore(database(config, "intake"))
    store.save_citizen({"_id": "citizen-1", "tckn": "10000000146", "first_name": "Ayşe",
                        "last_name": "Demir", "phone": phone, "email": None})
    store.save_application({"_id": application_id, "tracking_code": "K7M4QX2D9",
                            "citizen_id": "citizen-1", "status": "received",
                            "received_at": NOW}, [])


def received(application_id: str) -> dict:
    return make_event("application_received", application_id, {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "road_damage", "channel": "web", "location": {"province": "Mersin"},
        "citizen_ref": "citizen-1", "received_at": NOW,
    }, occurred_at=NOW)


def routed(application_id: str) -> dict:
    return make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
        "unit": "mezitli_bld.works", "unit_name": "Fen İşleri Müdürlüğü", "rule": "test",
        "read_hours": 4, "resolve_hours": 24,
    }, occurred_at=NOW + timedelta(seconds=1))


def sms_lines(config: dict, to: str | None = PHONE) -> list[dict]:
    """The SMS the development sink holds for `to` (the citizen; None: everyone's)."""
    path = Path(config["DEV_SINK_DIR"]) / "sms.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return [line for line in lines if to is None or line["to"] == to]


def published(container, probe: _Probe, application_id: str) -> list[dict]:
    """The outcome events published, after making the relay publish whatever is still stored."""
    parts_of(container).relay.sweep(grace=timedelta(0))
    return probe.drain(application_id)


def messages(config: dict, application_id: str) -> list[dict]:
    found = database(config, "notify")["messages"].find({"application_id": application_id})
    return list(found)


def test_application_received_delivered_twice_sends_one_sms_and_one_notification_sent(
    config, system, outcomes, app_id
):
    seed_application(config, app_id)
    event = received(app_id)
    deliver(config, system, event)
    deliver(config, system, event)

    [line] = sms_lines(config)
    assert line["to"] == PHONE
    assert "K7M-4QX-2D9" in line["text"]
    [message] = messages(config, app_id)
    assert message["_id"] == f"{event['event_id']}:application_received"
    assert (message["status"], message["channel"], message["destination"]) == (
        "sent", "sms", "+90555*****33")
    assert message["provider_message_id"] == line["message_id"]
    sent = published(system, outcomes, app_id)
    # the relay may publish one entry twice (consumers dedupe by event id); never two events
    assert {e["event_id"] for e in sent} == {sent[0]["event_id"]}
    assert sent[0]["type"] == "notification_sent"
    assert sent[0]["data"]["cause_event_id"] == event["event_id"]
    assert sent[0]["correlation_id"] == event["correlation_id"]


def test_application_routed_delivered_twice_sends_one_sms_naming_the_unit(
    config, system, outcomes, app_id
):
    seed_application(config, app_id)
    deliver(config, system, received(app_id))  # the forwarded SMS never overtakes it
    event = routed(app_id)
    deliver(config, system, event)
    deliver(config, system, event)
    [_, line] = sms_lines(config)
    assert "K7M-4QX-2D9" in line["text"] and "Fen İşleri Müdürlüğü" in line["text"]
    [message] = [m for m in messages(config, app_id) if m["template"] == "application_routed"]
    assert message["status"] == "sent"
    sent = [e for e in published(system, outcomes, app_id)
            if e["data"]["template"] == "application_routed"]
    assert {(e["event_id"], e["type"]) for e in sent} == {(sent[0]["event_id"],
                                                           "notification_sent")}
    # the unit's primary and backup expert, from routing's directory, by SMS and e-mail
    experts = {line["to"] for line in sms_lines(config, None)} - {PHONE}
    assert experts == {"+905550000150", "+905550000151"}
    assert len([m for m in messages(config, app_id) if m["audience"] == "staff"]) == 4


def test_received_and_routed_each_send_their_own_sms(config, system, app_id):
    seed_application(config, app_id)
    deliver(config, system, received(app_id))
    deliver(config, system, routed(app_id))
    texts = [line["text"] for line in sms_lines(config)]
    assert len(texts) == 2, texts
    assert texts[0].startswith("Açık Kapı: Başvurunuz alındı")
    assert "Fen İşleri Müdürlüğü" in texts[1]
    assert len([m for m in messages(config, app_id) if m["audience"] == "citizen"]) == 2


def test_an_application_intake_cannot_find_is_logged_as_failed_and_nothing_is_sent(
    config, system, outcomes, app_id
):
    deliver(config, system, received(app_id))  # nothing seeded: intake knows no such thing
    assert sms_lines(config) == []
    [message] = messages(config, app_id)
    assert (message["status"], message["error"]) == ("failed", "no contact")
    failed = published(system, outcomes, app_id)
    assert {e["event_id"] for e in failed} == {failed[0]["event_id"]}
    assert failed[0]["type"] == "notification_failed"
    assert failed[0]["data"]["error"] == "no contact"


def test_a_submission_through_intake_reaches_the_citizen_by_sms(config, system, intake):
    client = create_intake_app(parts_of(intake)).test_client()

    def ours(worker_ctx, result, exc_info):
        return worker_ctx.args[0]["application_id"] == submitted.get("application_id")

    submitted: dict = {}
    with entrypoint_waiter(system, "handle_application_received", timeout=15,
                           callback=ours) as waited:
        response = client.post("/api/v1/applications", json=SUBMISSION)
        assert response.status_code == 201
        submitted.update(response.get_json())
    waited.get()
    [line] = sms_lines(config)
    assert line["to"] == PHONE
    assert submitted["tracking_code"] in line["text"]
    assert normalise_tracking_code(submitted["tracking_code"]) is not None
    assert submitted["security_code"] not in line["text"]  # the secret is never sent in clear
    [message] = messages(config, submitted["application_id"])
    assert message["status"] == "sent"


# -- the database going away in the middle of a send (benchmarks.faults, stop-database) ------

class DatabaseAway:
    """Notify's store as it behaves while its database is away: every call raises what
    pymongo raises then (`AutoReconnect`), from `go()` until `back()` or `seconds` later."""

    CALLS = ("get_message", "claim", "take_over", "finish", "log_for")

    def __init__(self, store: NotifyStore, monkeypatch):
        self.until = 0.0
        self.refused = 0
        for name in self.CALLS:
            monkeypatch.setattr(store, name, self._unless_away(getattr(store, name)))

    def _unless_away(self, call):
        def guarded(*args, **kwargs):
            if time.monotonic() < self.until:
                self.refused += 1
                raise AutoReconnect("127.0.0.1:27018: [Errno 111] Connection refused")
            return call(*args, **kwargs)

        return guarded

    def go(self, seconds: float = 3600.0) -> None:
        self.until = time.monotonic() + seconds

    def back(self) -> None:
        self.until = 0.0


def after_sending(parts, monkeypatch, then) -> None:
    """Call `then()` right after the SMS provider has taken a message."""
    send = parts.sms.send

    def send_then(to: str, text: str, reference: str | None = None) -> str:
        provider_message_id = send(to, text, reference=reference)
        then()
        return provider_message_id

    monkeypatch.setattr(parts.sms, "send", send_then)


def handled(config: dict, container, envelope: dict, on_failure=lambda: None,
            timeout: float = 20) -> list[str]:
    """Publish `envelope` and wait until `container` has handled it without error (the bus
    retrying it meanwhile); returns the errors of the attempts that failed first."""
    failures: list[str] = []

    def succeeded(worker_ctx, result, exc_info) -> bool:
        if worker_ctx.args[0]["event_id"] != envelope["event_id"]:
            return False
        if exc_info is not None:
            failures.append(exc_info[0].__name__)
            on_failure()  # before the handler republishes it for a retry
            return False
        return True

    with entrypoint_waiter(container, f"handle_{envelope['type']}", callback=succeeded,
                           timeout=timeout):
        publish(config, envelope)
    return failures


def assert_sent_once(config, system, outcomes, app_id: str, event: dict, attempts: int) -> None:
    """One SMS, its message `sent`, one notification_sent, nothing dead-lettered."""
    [line] = sms_lines(config)
    assert line["to"] == PHONE
    [message] = messages(config, app_id)
    assert (message["status"], message["attempts"]) == ("sent", attempts)
    assert message["provider_message_id"] == line["message_id"]
    sent = published(system, outcomes, app_id)
    assert {(e["event_id"], e["type"]) for e in sent} == {(sent[0]["event_id"],
                                                           "notification_sent")}
    assert sent[0]["data"]["cause_event_id"] == event["event_id"]
    assert list_dead_letters(config["AMQP_URI"]) == []


def test_an_sms_sent_as_the_database_goes_away_is_recorded_when_it_is_back_not_parked(
    config, system, outcomes, app_id, monkeypatch
):
    """Before: the sender raised, every retry met its fresh claim (`MessageInFlight`), and
    the event was dead-lettered with the message left `sending`."""
    seed_application(config, app_id)
    parts = parts_of(system)
    away = DatabaseAway(parts.store, monkeypatch)
    after_sending(parts, monkeypatch, lambda: away.go(seconds=1.5))
    event = received(app_id)
    assert handled(config, system, event) == []  # the sender waited: no retry spent
    assert away.refused >= 1  # it did meet the database away
    assert_sent_once(config, system, outcomes, app_id, event, attempts=1)


def test_a_claim_stored_as_the_database_went_away_is_resumed_by_the_retry_and_sent_once(
    config, system, outcomes, app_id, monkeypatch
):
    """The claim's write reached the database, its answer did not: nothing was sent. Before:
    every retry met that fresh claim, the event was dead-lettered, and no SMS ever went."""
    seed_application(config, app_id)
    parts = parts_of(system)
    claim = parts.store.claim
    lost: list[str] = []

    def stored_but_answer_lost(message: dict):
        answer = claim(message)
        if not lost:
            lost.append(message["claim"])
            raise AutoReconnect("connection closed")
        return answer

    monkeypatch.setattr(parts.store, "claim", stored_but_answer_lost)
    event = received(app_id)
    assert handled(config, system, event) == ["AutoReconnect"]
    assert_sent_once(config, system, outcomes, app_id, event, attempts=2)  # taken over


def test_an_outcome_the_database_was_away_too_long_to_record_is_recorded_by_the_retry(
    config, container_factory, intake, outcomes, app_id, monkeypatch
):
    """The sender gives up recording (here after 0.3 s) and raises; the event's retry records
    what it kept instead of sending again, however long the database was away."""
    system = container_factory(NotifyService, dict(config, NOTIFY_RECORD_SECONDS="0.3"))
    system.start()
    seed_application(config, app_id)
    parts = parts_of(system)
    away = DatabaseAway(parts.store, monkeypatch)
    after_sending(parts, monkeypatch, away.go)
    event = received(app_id)
    assert handled(config, system, event, on_failure=away.back) == ["AutoReconnect"]
    assert away.refused >= 2  # the sender tried again before giving up
    assert_sent_once(config, system, outcomes, app_id, event, attempts=1)  # not taken over
