"""Intake's rules: a validated submission becomes an application, a citizen profile and the events
that happened — received, merged into an earlier application, or answered at first contact.

Pure: no nameko, no pymongo. Codes are drawn here; storing them (and retrying on a collision) is
the store's job. Duplicate detection is pure too: the store hands over the recent applications
filed under the keys `probe_keys` names and `find_original` decides.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.common.catalogue import Category
from services.common.codes import new_security_code, new_tracking_code, security_digest
from services.common.events import make_event, new_event_id

CALLER_TYPES = ("citizen", "muhtar", "tradesperson", "council_member")
# Where the applicant reads the 201 answer themselves; everywhere else (a text message, a call,
# a desk, CİMER) both codes also go out by SMS / e-mail, since the applicant never saw the answer.
SELF_SERVICE_CHANNELS = frozenset({"web", "muhtar"})
RECEIVED, MERGED, ANSWERED = "received", "merged", "answered"
# Fields of a person that are kept on the profile (never in an event).
PROFILE_FIELDS = ("first_name", "last_name", "phone", "home_phone", "email", "address",
                  "province", "district", "neighbourhood", "preferred_channel", "consent",
                  "language")
# The languages notify writes to citizens in; a profile that names none is written to in Turkish.
LANGUAGES = ("tr", "en")
DEFAULT_LANGUAGE = "tr"


class Rejected(Exception):
    """A submission that is well-formed but not acceptable; `errors` names the fields."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class Accepted:
    """What a submission became: the documents to store, the code shown once, the event."""

    application: dict
    citizen: dict | None
    security_code: str | None
    event: dict

    @property
    def status(self) -> str:
        return self.application["status"]


METRES_PER_DEGREE = 111_320
# Kept around the distance when choosing the neighbouring cells to read: the flat-earth distance
# to a cell's edge differs from the haversine one `find_original` uses by far less than this.
PROBE_MARGIN_M = 1.0


@dataclass(frozen=True)
class DuplicatePolicy:
    """Same citizen, or the same spot within `distance_m`, same category, within `window`."""

    window: timedelta
    distance_m: float

    @property
    def cell_degrees(self) -> float:
        # A grid cell at least `distance_m` wide in both directions up to 60° latitude (a degree
        # of longitude is half as long there), so two points within the distance are always in
        # the same or neighbouring cells.
        return max(self.distance_m, 1.0) / METRES_PER_DEGREE / 0.5


# -- identity ------------------------------------------------------------------------------

def _keyed(hash_key: str, text: str) -> str:
    return hmac.new(hash_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def citizen_key(hash_key: str, tckn: str) -> str:
    """The keyed hash citizens are looked up by; the TCKN itself is never an index key."""
    return _keyed(hash_key, tckn)


def contact_key(hash_key: str, kind: str, value: str) -> str:
    """The key of a person without a TCKN, by the contact they reached us from."""
    return "nt-" + _keyed(hash_key, f"{kind}:{value.strip().lower()}")


def phone_key(hash_key: str, phone: str) -> str:
    """The `_id` of an E.164 mobile number in the phone index (which citizens use it): a keyed
    hash, so the index holds no phone number (SMS replies find their sender through it)."""
    return "ph-" + _keyed(hash_key, f"phone-index:{phone.strip()}")


def mask_tckn(tckn: str | None) -> str | None:
    """`10000000146` → `100******46`: enough to compare with a card, not to reuse."""
    if not tckn:
        return None
    return tckn[:3] + "*" * (len(tckn) - 5) + tckn[-2:]


_TR_UPPER = str.maketrans({"I": "ı", "İ": "i"})


def tr_fold(text: str) -> str:
    """Turkish-aware case folding: `İSMAİL`, `ismail` and `İsmail` compare equal; `I` is `ı`."""
    return " ".join((text or "").translate(_TR_UPPER).lower().split())


def names_match(stored_first: str, stored_last: str, first: str, last: str) -> bool:
    """Compare a person's names Turkish-case-insensitively, in constant time per name."""
    pairs = ((stored_first, first), (stored_last, last))
    results = [hmac.compare_digest(tr_fold(a).encode(), tr_fold(b).encode()) for a, b in pairs]
    return all(results)


def build_citizen(person: dict | None, hash_key: str, *, channel: str,
                  caller_type: str = "citizen") -> dict | None:
    """The profile a submission names, keyed for lookup; None for an anonymous application.

    With a TCKN the key is its keyed hash. Without one (foreign residents, people writing from
    a phone or an address only) the key is the keyed hash of that contact, and the profile is
    flagged `no_tckn`. Only fields the submission carries are set: an SMS never blanks a name.
    """
    if not person:
        return None
    tckn = person.get("tckn")
    if tckn:
        key, identity = citizen_key(hash_key, tckn), "tckn"
    elif person.get("phone"):
        key, identity = contact_key(hash_key, "phone", person["phone"]), "no_tckn"
    elif person.get("email"):
        key, identity = contact_key(hash_key, "email", person["email"]), "no_tckn"
    elif person.get("handle"):
        key, identity = contact_key(hash_key, f"handle:{channel}", person["handle"]), "no_tckn"
    else:
        return None
    citizen = {"_id": key, "identity": identity, "tckn": tckn}
    citizen.update({k: person[k] for k in PROFILE_FIELDS if person.get(k) is not None})
    if person.get("handle"):
        citizen["handles"] = {channel: person["handle"]}
    if caller_type != "citizen":
        citizen["caller_type"] = caller_type
    return citizen


# -- acceptance ----------------------------------------------------------------------------

def check_category(payload: dict, catalogue: dict[str, Category]) -> Category:
    """The category must exist and allow the application's kind; returns it."""
    category = catalogue.get(payload["category"])
    if category is None:
        raise Rejected({"category": ["Bilinmeyen kategori / unknown category."]})
    if category.kinds and payload["kind"] not in category.kinds:
        raise Rejected({"kind": [f"{category.code} için izin verilen türler / allowed kinds: "
                                 f"{', '.join(category.kinds)}"]})
    return category


def check_answer(payload: dict, category: Category) -> str | None:
    """An answer at first contact is allowed only for categories marked `first_contact`."""
    answer = (payload.get("answer") or "").strip() or None
    if payload.get("answered") and not answer:
        raise Rejected({"answer": ["Verilen cevap yazılmalı / the answer given is required."]})
    if answer and not category.first_contact:
        raise Rejected({"answer": [
            f"{category.code} ilk temasta cevaplanamaz / cannot be answered at first contact."]})
    return answer


def received_data(application: dict) -> dict:
    """`application_received`'s data for a stored application (no personal data)."""
    location = application["location"]
    return {
        "tracking_code": application["tracking_code"],
        "security_digest": application["security_digest"],
        "kind": application["kind"],
        "category": application["category"],
        "channel": application["channel"],
        "priority": application["priority"],
        "confidential": application["confidential"],
        "caller_type": application["caller_type"],
        "location": {k: location.get(k) for k in ("province", "district", "neighbourhood")},
        "citizen_ref": application.get("citizen_id"),
        "received_at": application["received_at"],
        "answered": application["status"] == ANSWERED,
        "answer": application.get("answer"),
    }


def accept(
    payload: dict,
    catalogue: dict[str, Category],
    *,
    now: datetime,
    hash_key: str,
    pepper: str,
    application_id: str | None = None,
) -> Accepted:
    """Build the application, citizen profile and `application_received` for a submission."""
    category = check_category(payload, catalogue)
    answer = check_answer(payload, category)
    caller_type = payload.get("caller_type") or "citizen"
    person = None if payload.get("anonymous") else payload.get("citizen")
    # The profile's caller type is the registry's (muhtars, staff-registered esnaf / council
    # members); a submission never changes it — claiming "muhtar" must not open the portal.
    citizen = build_citizen(person, hash_key, channel=payload["channel"])
    application_id = application_id or new_event_id()
    tracking_code = new_tracking_code()
    security_code = new_security_code()
    location = dict(payload["location"])
    application = {
        "_id": application_id,
        "tracking_code": tracking_code,
        "security_digest": security_digest(pepper, security_code),
        "kind": payload["kind"],
        "category": payload["category"],
        "channel": payload["channel"],
        "priority": payload.get("priority") or category.priority,
        "confidential": bool(payload.get("confidential")),
        "caller_type": caller_type,
        "description": payload["description"],
        "location": location,
        "citizen_id": citizen["_id"] if citizen else None,
        "anonymous": citizen is None,
        "no_tckn": citizen is not None and citizen["identity"] == "no_tckn",
        "status": ANSWERED if answer else RECEIVED,
        "answer": answer,
        "received_at": now,
        "codes_by_message": payload["channel"] not in SELF_SERVICE_CHANNELS,
    }
    for optional in ("applied_at", "desk", "inbound_id", "source", "attachments"):
        if payload.get(optional):
            application[optional] = payload[optional]
    event = make_event("application_received", application_id, received_data(application),
                       occurred_at=now)
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


def merge(accepted: Accepted, original: dict, *, now: datetime) -> Accepted:
    """The submission as a duplicate of `original`: no codes of its own, `application_merged`.

    The caller is given the original's tracking code. No security code: the same citizen holds
    the original's already, and a different citizen must never be shown it (it is not stored).
    """
    application = dict(accepted.application, status=MERGED, tracking_code=None,
                       security_digest=None, codes_by_message=False,
                       merged_into={"application_id": original["application_id"],
                                    "tracking_code": original["tracking_code"],
                                    "at": now})
    event = make_event("application_merged", application["_id"], {
        "original_application_id": original["application_id"],
        "original_tracking_code": original["tracking_code"],
    }, correlation_id=original["application_id"], occurred_at=now)
    return replace(accepted, application=application, security_code=None, event=event)


def unlink(application: dict, *, now: datetime, pepper: str, by: str) -> tuple[dict, str, dict]:
    """A merged duplicate made its own application: `(fields to set, security code, event)`.

    Fresh codes, both sent to the citizen by message (they were never shown any).
    """
    if application.get("status") != MERGED:
        raise Rejected({"application_id": ["Birleştirilmiş bir başvuru değil / not merged."]})
    security_code = new_security_code()
    fields = {
        "status": RECEIVED,
        "tracking_code": new_tracking_code(),
        "security_digest": security_digest(pepper, security_code),
        "codes_by_message": True,
        "unlinked": {"from": application["merged_into"], "by": by, "at": now},
        "merged_into": None,
    }
    event = make_event("application_received", application["_id"],
                       received_data(dict(application, **fields)), occurred_at=now)
    return fields, security_code, event


def with_new_unlink_codes(fields: dict, event: dict, pepper: str) -> tuple[dict, str, dict]:
    """Unlink fields and event with fresh codes (after a tracking-code collision)."""
    security_code = new_security_code()
    fields = dict(fields, tracking_code=new_tracking_code(),
                  security_digest=security_digest(pepper, security_code))
    event = dict(event, data=dict(event["data"], tracking_code=fields["tracking_code"],
                                  security_digest=fields["security_digest"]))
    return fields, security_code, event


# -- duplicates ----------------------------------------------------------------------------

def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    earth = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * earth * math.asin(min(1.0, math.sqrt(a)))


def _point(application: dict) -> tuple[float, float] | None:
    location = application.get("location") or {}
    lat, lon = location.get("lat"), location.get("lon")
    return (lat, lon) if lat is not None and lon is not None else None


def _cell(policy: DuplicatePolicy, lat: float, lon: float) -> tuple[int, int]:
    size = policy.cell_degrees
    return math.floor(lat / size), math.floor(lon / size)


def duplicate_candidate(application: dict) -> bool:
    """Answered requests are closed at once; only received applications can be originals."""
    return application.get("status") == RECEIVED


def _reachable(policy: DuplicatePolicy, lat: float, lon: float, row: int, col: int) -> bool:
    """Whether any point of grid cell (row, col) may lie within the distance of (lat, lon)."""
    size = policy.cell_degrees
    nearest_lat = min(max(lat, row * size), (row + 1) * size)
    nearest_lon = min(max(lon, col * size), (col + 1) * size)
    dy = (lat - nearest_lat) * METRES_PER_DEGREE
    dx = (lon - nearest_lon) * METRES_PER_DEGREE * math.cos(math.radians(abs(lat) + size))
    return math.hypot(dx, dy) <= policy.distance_m + PROBE_MARGIN_M


def _keys(application: dict, policy: DuplicatePolicy, around: int) -> list[str]:
    keys = []
    category = application["category"]
    if application.get("citizen_id"):
        keys.append(f"cit:{category}:{application['citizen_id']}")
    point = _point(application)
    if point:
        row, col = _cell(policy, *point)
        span = range(-around, around + 1)
        # Only the neighbouring cells the distance reaches: a cell is twice the distance tall,
        # so a point reaches one row above or below, and one or two columns: 3 to 5 of the 8
        # neighbours, each read costing a round trip or two per submission.
        keys += [f"geo:{category}:{row + dr}:{col + dc}" for dr in span for dc in span
                 if (dr, dc) == (0, 0) or _reachable(policy, *point, row + dr, col + dc)]
    return keys


def own_keys(application: dict, policy: DuplicatePolicy) -> list[str]:
    """The keys an original is filed under: its citizen and its grid cell, per category."""
    return _keys(application, policy, around=0)


def probe_keys(application: dict, policy: DuplicatePolicy) -> list[str]:
    """The keys to look in for an original: the citizen's, the spot's cell, and those of the
    8 cells around it that lie partly within the distance."""
    return _keys(application, policy, around=1)


def duplicate_entry(application: dict) -> dict:
    """What is filed under an original's keys: enough to decide, nothing personal."""
    point = _point(application)
    return {
        "application_id": application["_id"],
        "tracking_code": application["tracking_code"],
        "citizen_id": application.get("citizen_id"),
        "category": application["category"],
        "lat": point[0] if point else None,
        "lon": point[1] if point else None,
        "received_at": application["received_at"],
        "confidential": bool(application.get("confidential")),
    }


def find_original(application: dict, entries: list[dict], policy: DuplicatePolicy, *,
                  filed_before: set[str] | frozenset[str] = frozenset()) -> dict | None:
    """The earliest earlier application this one duplicates, or None.

    `filed_before` names applications that filed under one of this one's own keys before it:
    they count as earlier whatever their clocks said (of two submissions at the same moment,
    the one whose entry was filed first is the original, and the other one knows it).
    """
    if not duplicate_candidate(application):
        return None
    since = application["received_at"] - policy.window
    point = _point(application)
    matches = []
    for entry in entries:
        if entry["application_id"] == application["_id"]:
            continue
        if entry["category"] != application["category"] or entry["received_at"] <= since:
            continue
        # only earlier ones; ties (same millisecond) are broken by id (ULIDs sort by time)
        if (entry["received_at"], entry["application_id"]) > (application["received_at"],
                                                              application["_id"]) \
                and entry["application_id"] not in filed_before:
            continue
        same_citizen = bool(application.get("citizen_id")) and (
            entry.get("citizen_id") == application["citizen_id"])
        # Someone else's confidential application is never revealed (not even its tracking
        # code) by linking a neighbour's report to it, nor a confidential one to theirs.
        private = bool(entry.get("confidential") or application.get("confidential"))
        near = not private and point is not None and entry.get("lat") is not None and (
            haversine_m(point[0], point[1], entry["lat"], entry["lon"]) <= policy.distance_m)
        if same_citizen or near:
            matches.append(entry)
    return min(matches, key=lambda e: (e["received_at"], e["application_id"]), default=None)


def recent_entries(entries: list[dict], now: datetime, policy: DuplicatePolicy) -> list[dict]:
    """Entries still inside the window (what a bucket keeps)."""
    return [e for e in entries if e["received_at"] >= now - policy.window]
