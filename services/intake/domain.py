"""Intake's rules: turning a validated submission into an application, a citizen and an event.

Pure: no nameko, no pymongo. Codes are drawn here; storing them (and retrying on a collision) is
the store's job.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from services.common.catalogue import Category
from services.common.codes import new_security_code, new_tracking_code, security_digest
from services.common.events import make_event, new_event_id


class Rejected(Exception):
    """A submission that is well-formed but not acceptable; `errors` names the fields."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class Accepted:
    application: dict
    citizen: dict
    security_code: str
    event: dict


def citizen_key(hash_key: str, tckn: str) -> str:
    """The keyed hash citizens are looked up by; the TCKN itself is never an index key."""
    return hmac.new(hash_key.encode(), tckn.encode(), hashlib.sha256).hexdigest()


def check_category(payload: dict, catalogue: dict[str, Category]) -> None:
    """The category must exist and allow the application's kind."""
    category = catalogue.get(payload["category"])
    if category is None:
        raise Rejected({"category": ["Bilinmeyen kategori / unknown category."]})
    if category.kinds and payload["kind"] not in category.kinds:
        raise Rejected({"kind": [f"{category.code} için izin verilen türler / allowed kinds: "
                                 f"{', '.join(category.kinds)}"]})


def accept(
    payload: dict,
    catalogue: dict[str, Category],
    *,
    now: datetime,
    hash_key: str,
    pepper: str,
) -> Accepted:
    """Build the application, citizen profile and `application_received` for a submission."""
    check_category(payload, catalogue)
    person = payload["citizen"]
    citizen_id = citizen_key(hash_key, person["tckn"])
    application_id = new_event_id()
    tracking_code = new_tracking_code()
    security_code = new_security_code()
    digest = security_digest(pepper, security_code)
    location = payload["location"]
    application = {
        "_id": application_id,
        "tracking_code": tracking_code,
        "security_digest": digest,
        "kind": payload["kind"],
        "category": payload["category"],
        "channel": payload["channel"],
        "priority": payload["priority"],
        "confidential": payload["confidential"],
        "caller_type": "citizen",
        "description": payload["description"],
        "location": location,
        "citizen_id": citizen_id,
        "status": "received",
        "received_at": now,
    }
    citizen = {
        "_id": citizen_id,
        "tckn": person["tckn"],
        "first_name": person["first_name"],
        "last_name": person["last_name"],
        "phone": person["phone"],
        "email": person.get("email"),
    }
    event = make_event(
        "application_received",
        application_id,
        {
            "tracking_code": tracking_code,
            "security_digest": digest,
            "kind": payload["kind"],
            "category": payload["category"],
            "channel": payload["channel"],
            "priority": payload["priority"],
            "confidential": payload["confidential"],
            "caller_type": "citizen",
            "location": {k: location.get(k) for k in ("province", "district", "neighbourhood")},
            "citizen_ref": citizen_id,
            "received_at": now,
        },
        occurred_at=now,
    )
    return Accepted(application, citizen, security_code, event)


def with_new_codes(accepted: Accepted, pepper: str) -> Accepted:
    """The same submission with freshly drawn codes (after a tracking-code collision)."""
    tracking_code = new_tracking_code()
    security_code = new_security_code()
    digest = security_digest(pepper, security_code)
    application = dict(accepted.application, tracking_code=tracking_code, security_digest=digest)
    event = dict(accepted.event, data=dict(accepted.event["data"], tracking_code=tracking_code,
                                           security_digest=digest))
    return Accepted(application, accepted.citizen, security_code, event)
