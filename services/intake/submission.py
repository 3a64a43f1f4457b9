"""Accepting one submission, whatever door it came through (HTTP form, desk API, RPC).

Validation has already happened (schemas); this applies the domain rules, claims a unique
tracking code, registers or refreshes the citizen and stores the application with its
`application_received` event in one write.
"""
from __future__ import annotations

from services.common.catalogue import Category
from services.common.codes import display_tracking_code
from services.common.events import utcnow
from services.intake import domain
from services.intake.store import IntakeStore

CODE_ATTEMPTS = 8


class NoTrackingCode(Exception):
    """Every drawn tracking code was taken (practically impossible; retry the request)."""


def submit(store: IntakeStore, catalogue: dict[str, Category], payload: dict,
           config: dict) -> dict:
    """Accept a validated submission; returns the answer shown to the applicant once.

    Raises `domain.Rejected` (fields named) for a well-formed but unacceptable submission.
    """
    pepper = config["CODE_PEPPER"]
    hash_key = config.get("CITIZEN_HASH_KEY") or pepper
    accepted = domain.accept(payload, catalogue, now=utcnow(), hash_key=hash_key, pepper=pepper)
    for _ in range(CODE_ATTEMPTS):
        if store.reserve_tracking_code(accepted.application["tracking_code"],
                                       accepted.application["_id"]):
            break
        accepted = domain.with_new_codes(accepted, pepper)
    else:
        raise NoTrackingCode()
    store.save_citizen(accepted.citizen)
    store.save_application(accepted.application, [accepted.event])
    return {
        "application_id": accepted.application["_id"],
        "tracking_code": display_tracking_code(accepted.application["tracking_code"]),
        "security_code": accepted.security_code,
        "status": "received",
    }
