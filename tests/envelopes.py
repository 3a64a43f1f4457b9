"""Envelopes as the bus carries them, built for tests of the services that read them (reporting,
the console's pages over reporting): an application received, routed, referred, its case events,
SLA's events, a satisfaction score."""
from __future__ import annotations

from datetime import datetime

from services.common.codes import new_tracking_code, security_digest
from services.common.config import DEV_SECRET
from services.common.events import load_event, make_event, new_event_id, utcnow


def received(application_id: str | None = None, *, at: datetime | None = None,
             category: str = "road_damage", channel: str = "web", kind: str = "complaint",
             district: str | None = "Yenişehir") -> dict:
    """An `application_received` envelope (a new application unless `application_id`)."""
    at = at or utcnow()
    return make_event("application_received", application_id or new_event_id(), {
        "tracking_code": new_tracking_code(),
        "security_digest": security_digest(DEV_SECRET, "SECRETCODE1"),
        "kind": kind, "category": category, "channel": channel,
        "location": {"province": "Mersin", "district": district, "neighbourhood": "Limonluk"},
        "received_at": at,
    }, occurred_at=at)


def routed(receipt: dict, *, at: datetime | None = None, unit: str = "mersin_bb.roads",
           unit_name: str = "Yol Yapım Dairesi Başkanlığı",
           institution_name: str = "Mersin Büyükşehir Belediyesi") -> dict:
    """The `application_routed` that follows `receipt` (the unit's institution its prefix)."""
    return make_event("application_routed", receipt["application_id"], {
        "tracking_code": receipt["data"]["tracking_code"],
        "category": receipt["data"]["category"], "tier": "metropolitan",
        "institution": unit.split(".")[0], "institution_name": institution_name,
        "unit": unit, "unit_name": unit_name, "rule": f"mapping:{unit}",
        "priority": "normal", "read_hours": 24, "resolve_hours": 72,
    }, occurred_at=at)


def referred(receipt: dict, *, at: datetime | None = None) -> dict:
    """The `application_referred` that follows `receipt`."""
    return make_event("application_referred", receipt["application_id"], {
        "tracking_code": receipt["data"]["tracking_code"],
        "category": receipt["data"]["category"], "institution": "gas_distributor",
        "institution_name": "Toroslar Doğalgaz", "contact": {"phone": "187"},
        "rule": "outside:gas_distributor",
    }, occurred_at=at)


def case(receipt: dict, event_type: str, state: str, *, at: datetime | None = None,
         **data) -> dict:
    """A case event of routing about `receipt`'s application, reaching `state`."""
    return make_event(event_type, receipt["application_id"], {
        "state": state, "tracking_code": receipt["data"]["tracking_code"], **data},
        occurred_at=at)


def sla(receipt: dict, event_type: str, *, at: datetime | None = None, **data) -> dict:
    """An sla event about `receipt`'s application (`sla_outcome_recorded`, `case_escalated`)."""
    return make_event(event_type, receipt["application_id"], {
        "tracking_code": receipt["data"]["tracking_code"], "unit": "mersin_bb.roads", **data},
        occurred_at=at)


def rated(receipt: dict, score: int, *, at: datetime | None = None) -> dict:
    return make_event("satisfaction_recorded", receipt["application_id"],
                      {"score": score, "source": "sms"}, occurred_at=at)


class Events:
    """The builders above, handed to tests as a fixture (as a fixture in reporting's tests)."""

    received = staticmethod(received)
    routed = staticmethod(routed)
    referred = staticmethod(referred)
    case = staticmethod(case)
    sla = staticmethod(sla)
    rated = staticmethod(rated)
    loaded = staticmethod(load_event)
