"""Fixtures for tracking's tests: envelopes as the bus carries them, and a publisher."""
from __future__ import annotations

import functools
from datetime import UTC, datetime

import pytest

from services.common.codes import new_tracking_code, security_digest
from services.common.config import DEV_SECRET
from services.common.events import load_event, make_event, new_event_id, utcnow
from tests import support

SECURITY_CODE = "SECRETCODE1"
# When the tests' own compositions count rate-limit attempts: inside every limit's window (the
# client's 10 minutes, the code's 15, Open311's minute), so that no test's attempts are split
# between two windows by the wall clock passing a boundary mid-test.
COUNTED_AT = datetime(2025, 3, 3, 9, 12, 30, tzinfo=UTC)


def counted_at(moment: datetime = COUNTED_AT):
    """A clock for the rate limiter that always reads `moment`."""
    return lambda: moment


class Envelopes:
    """Builds valid envelopes for one application: `received`, `routed`, `referred`, …"""

    def __init__(self, pepper: str):
        self.pepper = pepper

    def received(self, application_id: str, tracking_code: str, *,
                 at: datetime | None = None, confidential: bool = False,
                 category: str = "road_damage", caller_type: str = "citizen",
                 citizen_ref: str | None = None, district: str = "Yenişehir",
                 neighbourhood: str = "Limonluk") -> dict:
        at = at or utcnow()
        return make_event("application_received", application_id, {
            "tracking_code": tracking_code,
            "security_digest": security_digest(self.pepper, SECURITY_CODE),
            "kind": "complaint",
            "category": category,
            "channel": "muhtar" if caller_type == "muhtar" else "web",
            "confidential": confidential,
            "caller_type": caller_type,
            "citizen_ref": citizen_ref,
            "location": {"province": "Mersin", "district": district,
                         "neighbourhood": neighbourhood},
            "received_at": at,
        }, occurred_at=at)

    def case(self, event_type: str, application_id: str, state: str, *,
             at: datetime | None = None, unit: str | None = "mersin_bb.roads",
             unit_name: str | None = "Yol Yapım Dairesi Başkanlığı", by: str = "mbb-0009",
             reason: str | None = None, result: str | None = None) -> dict:
        """A case event as routing publishes it (schema CaseChanged)."""
        return make_event(event_type, application_id, {
            "state": state, "unit": unit, "unit_name": unit_name, "by": by,
            "reason": reason, "result": result,
        }, occurred_at=at)

    def merged(self, duplicate_id: str, original_id: str, original_code: str, *,
               at: datetime | None = None) -> dict:
        """`application_merged`: its application_id is the duplicate's."""
        return make_event("application_merged", duplicate_id, {
            "original_application_id": original_id, "original_tracking_code": original_code,
        }, occurred_at=at)

    def routed(self, application_id: str, tracking_code: str, *,
               at: datetime | None = None, unit: str = "mersin_bb.roads",
               unit_name: str = "Yol Yapım Dairesi Başkanlığı") -> dict:
        return make_event("application_routed", application_id, {
            "tracking_code": tracking_code, "category": "road_damage",
            "tier": "metropolitan", "institution": "mersin_bb",
            "institution_name": "Mersin Büyükşehir Belediyesi",
            "unit": unit, "unit_name": unit_name,
            "rule": "category:road_damage→metropolitan:mersin_bb|mapping:mersin_bb.roads",
            "priority": "normal", "read_hours": 24, "resolve_hours": 72,
        }, occurred_at=at)

    def referred(self, application_id: str, tracking_code: str, *,
                 at: datetime | None = None) -> dict:
        return make_event("application_referred", application_id, {
            "tracking_code": tracking_code, "category": "natural_gas",
            "institution": "gas_distributor", "institution_name": "Toroslar Doğalgaz",
            "contact": {"phone": "187"}, "rule": "category:natural_gas→outside:gas",
        }, occurred_at=at)

    def notification_sent(self, application_id: str, *, at: datetime | None = None,
                          cause: str | None = None) -> dict:
        return make_event("notification_sent", application_id, {
            "channel": "sms", "template": "application_received",
            "message_id": new_event_id(), "provider": "dev",
            "cause_event_id": cause or new_event_id(),
        }, occurred_at=at)

    @staticmethod
    def loaded(envelope: dict) -> dict:
        """The envelope as a handler receives it (validated, datetimes parsed)."""
        return load_event(envelope)


@pytest.fixture
def envelopes() -> Envelopes:
    """Envelopes for pure tests (no broker, no config): the local run's pepper."""
    return Envelopes(DEV_SECRET)


@pytest.fixture
def bus_envelopes(config) -> Envelopes:
    """Envelopes whose security digest matches the pepper of the test's config."""
    return Envelopes(config["CODE_PEPPER"])


@pytest.fixture
def new_application():
    """A fresh (application id, canonical tracking code) pair."""
    return lambda: (new_event_id(), new_tracking_code())


@pytest.fixture
def publish(config):
    """Publish an envelope to its producer's exchange, as the outbox relay does."""
    return functools.partial(support.publish, config)


@pytest.fixture
def make_parts(config):
    """`make_parts(cfg=None, **kwargs)`: a tracking composition (`TrackingParts`) over the
    test's databases, as a Flask-only process builds it; all closed after the test. Several
    made in one test are several replicas of the service. Their limiter counts at
    `COUNTED_AT` unless given another `clock`."""
    from services.tracking.bootstrap import TrackingParts

    made = []

    def make(cfg: dict | None = None, **kwargs):
        kwargs.setdefault("clock", counted_at())
        made.append(TrackingParts(config if cfg is None else cfg, **kwargs))
        return made[-1]

    yield make
    for parts in made:
        parts.close()


@pytest.fixture
def tracking_parts(make_parts):
    """The test's tracking composition: what the handlers (`handle`) and `client` share."""
    return make_parts()


@pytest.fixture
def make_app(make_parts):
    """`make_app(cfg=None, **kwargs)`: tracking's Flask app over parts of its own (a config
    changed by the test, a pinned clock), closed after the test."""
    from services.tracking.web import create_app

    return lambda cfg=None, **kwargs: create_app(make_parts(cfg, **kwargs))


@pytest.fixture
def tracking_store(config):
    """Tracking's store over the test's database, to inspect what the service stored."""
    from services.tracking.store import TrackingStore

    return TrackingStore(support.database(config, "tracking"))


@pytest.fixture
def handle(tracking_parts):
    """Hand an envelope to tracking's matching handler, as the bus would (no broker traffic)."""
    from nameko.testing.services import worker_factory

    from services.tracking.service import TrackingService

    service = worker_factory(TrackingService, parts=tracking_parts)

    def _handle(envelope: dict) -> dict:
        getattr(service, f"handle_{envelope['type']}")(load_event(envelope))
        return envelope

    return _handle


@pytest.fixture
def concluded_application(bus_envelopes, new_application, handle):
    """(application id, tracking code) of a road damage resolved and closed a minute ago."""

    def make(category: str = "road_damage") -> tuple[str, str]:
        application_id, code = new_application()
        handle(bus_envelopes.received(application_id, code, category=category))
        handle(bus_envelopes.routed(application_id, code))
        handle(bus_envelopes.case("case_resolved", application_id, "resolved",
                                  result="Çukur kapatıldı."))
        handle(bus_envelopes.case("case_closed", application_id, "closed"))
        return application_id, code

    return make


@pytest.fixture
def container(container_factory, config):
    """The tracking service, running on the test's broker and store."""
    from services.tracking.service import TrackingService

    container = container_factory(TrackingService, config)
    container.start()
    return container


@pytest.fixture
def running_client(container):
    """The HTTP side of the running service: its Flask app over the container's own parts,
    as the runner serves it (one catalogue cache, one relay for both sides)."""
    from services.common.bootstrap import parts_of
    from services.tracking.web import create_app

    return create_app(parts_of(container)).test_client()


@pytest.fixture
def store(tracking_store):
    """Tracking's store over the test's database."""
    return tracking_store


@pytest.fixture
def client(tracking_parts):
    """Tracking's HTTP API over the test's composition (the one `handle` folds into)."""
    from services.tracking.web import create_app

    return create_app(tracking_parts).test_client()
