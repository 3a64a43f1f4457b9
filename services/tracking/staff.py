"""Tracking's staff lookup: an application by its tracking code alone, for the coordination
centre's desk and call centre (seed 001: a caller reads their code out on the phone).

`POST /api/v1/track/staff/lookup` with `{"tracking_code": …}` (any spelling a citizen reads
out: `codes.normalise_tracking_code`; the code travels in the body, never in a URL, as every
code here does; under tracking's own prefix, so every proxy already sends it here). The staff
token is checked before the body: a role without the lookup learns nothing from a 422.
Answers:

- 200: the application's status, kind, category, institution and unit, district and
  neighbourhood, received / updated / expected times, the result and the timeline, and its
  `application_id` for the case page. No personal data (design §9): no name, TCKN, phone,
  e-mail, address, citizen reference, rating comment or security digest — so there is
  nothing to write to an audit log, and tracking keeps none.
- 404: no such code (or its receipt has not arrived yet); also for an institution-bound
  coordinator or administrator when the application is another institution's (as unknown).
- 422 naming `tracking_code`: it cannot be a tracking code (length, alphabet, check digit).

Rate limiting is not applied: the caller holds a signed staff token, and the answer carries no
secret (the security code is what protects the citizen's own view).
"""
from __future__ import annotations

from datetime import datetime

from flask import g
from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.common.events import utcnow
from services.tracking import domain
from services.tracking.lookup import Tracker
from services.tracking.schemas import StaffLookupRequestSchema, StaffLookupSchema

LOOKUP_ROLES = ("coordinator", "admin")
# The keys of `domain.public_view` staff are shown; the rest is the holder's (offers to reopen
# and rate) or personal.
VIEW_KEYS = ("tracking_code", "status", "status_text_tr", "status_text_en", "kind",
             "category", "category_name_tr", "category_name_en", "institution", "unit",
             "received_at", "updated_at", "expected_at", "result", "merged_into", "timeline")
PLACE_KEYS = ("province", "district", "neighbourhood")  # never the street address


def staff_view(doc: dict, category_names: dict[str, tuple[str, str]],
               now: datetime | None = None) -> dict:
    """What staff are shown of a read model: the public view's progress fields, the place
    without the address, and the application id (for the case page)."""
    public = domain.public_view(doc, category_names, now=now or utcnow())
    view = {key: public.get(key) for key in VIEW_KEYS}
    location = doc.get("location") or {}
    view["place"] = {key: location.get(key) for key in PLACE_KEYS} if location else None
    view["application_id"] = doc["_id"]
    view["confidential"] = bool(doc.get("confidential"))
    return view


def in_scope(doc: dict, role: str, institution: str | None) -> bool:
    """Whether the token may see `doc`: the coordination centre everything; a coordinator or
    administrator bound to an institution only that institution's applications (tracking has
    no directory to tell which institutions are under it, so it does not guess)."""
    if role not in LOOKUP_ROLES:
        return False
    if not institution:
        return True
    held = doc.get("institution") or {}
    return isinstance(held, dict) and held.get("code") == institution


def blueprint(tracker: Tracker) -> Blueprint:
    """`POST /api/v1/track/staff/lookup`."""
    staff = Blueprint("tracking_staff", __name__, url_prefix="/api/v1/track/staff",
                      description="Personel için takip kodu sorgusu / staff lookup by "
                                  "tracking code")

    @staff.route("/lookup", methods=["POST"])
    @staff.doc(security=[{"staffToken": []}])
    # Above `arguments`: who is asking is checked before what is asked.
    @staff_required(*LOOKUP_ROLES)
    @staff.arguments(StaffLookupRequestSchema)
    @staff.response(200, StaffLookupSchema)
    @staff.alt_response(401, description="no valid staff token")
    @staff.alt_response(403, description="the role has no lookup")
    @staff.alt_response(404, description="no application with this tracking code")
    @staff.alt_response(422, description="not a tracking code; `errors` names `tracking_code`")
    def lookup(payload: dict):
        """An application's status, unit and timeline by its tracking code alone (the
        caller on the phone reads it out); no personal data."""
        entry = tracker.store.code_entry(payload["tracking_code"])
        doc = tracker.doc(entry["application_id"]) if entry else None
        if doc is None or not in_scope(doc, g.staff.role, g.staff.institution):
            abort(404, message="Bu takip koduyla başvuru yok / no application with this "
                               "tracking code",
                  errors={"json": {"tracking_code": ["unknown"]}})
        return staff_view(doc, tracker.category_names)

    return staff
