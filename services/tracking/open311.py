"""Open311 GeoReport v2 under `/open311/v2/`, as the published specification describes it.

Resources (each as `.xml` and `.json`): `discovery`, `services`, `services/{service_code}`,
`requests` (GET with `service_request_id`, `service_code`, `start_date`, `end_date`, `status`;
POST with `api_key`, form-encoded), `requests/{service_request_id}`, `tokens/{token}`. JSON follows
the spec's Spark convention (the XML root dropped: lists are arrays). Errors use the spec's own
shape — `<errors><error><code/><description/></error></errors>` / `[{"code", "description"}]` —
with 400 for bad input (the description names the field), 403 for a missing or wrong api_key and
404 for anything unknown; this is the one place the shared `{code, status, message, errors}`
shape gives way, because Open311 clients parse the spec's.

Mapping to Açık Kapı:
- a service is a category of the catalogue (`service_code` = category code); its definition has
  three attributes: `kind` (the kinds the category allows), `district` and `neighbourhood`
  (the location the routing rules need; Open311's lat/long are kept but not geocoded);
- a jurisdiction is an institution (`jurisdiction_id` = its web host, e.g. `mersin.bel.tr`, or its
  code); it is required, since the endpoint serves many; `requests` lists, and `requests/{id}`
  shows, the applications in the jurisdiction's area (province, district); `agency_responsible`
  names who holds each one. A POST must place the request in that area (a district's
  jurisdiction places one that names no district in its own): otherwise it is refused with 400
  naming the jurisdiction that covers the place, so what a jurisdiction accepts it can read back;
- `service_request_id` is the application id; confidential applications are never listed nor
  shown; `description`, contact fields and media are never published (they may hold personal
  data and live in intake) — status, dates, the area and who acts are;
- status `open` / `closed`: closed = closed, referred, answered or merged;
- POST files the application through intake's `submit_application` (channel `web`) and answers
  `realtime` with its id and tracking code; `tokens` therefore knows no token;
- the listing never scans the read model: it reads the per-(area, day) index the receipts fill
  (`PublicListing`), at most 90 days and `MAX_RESULTS` requests, reusing entries briefly.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, request
from nameko.exceptions import RemoteError

from services.common.catalogue import Category
from services.common.catalogue_cache import CatalogueCache
from services.common.codes import display_tracking_code
from services.common.events import utcnow
from services.common.places import place_key
from services.common.refusals import SubmissionRefused
from services.common.rpc import RpcPool
from services.tracking import domain
from services.tracking.lookup import Tracker
from services.tracking.organisation import Jurisdiction, Organisation
from services.tracking.ratelimit import client_address
from services.tracking.store import TrackingStore

log = logging.getLogger(__name__)

SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = "<any(json, xml):fmt>"
MIME = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
MAX_IDS = 100  # service_request_id=a,b,…: each is one read
# A listing reads at most about this many applications, newest first (the spec lets a server
# limit results): a narrow filter over a busy area's 90 days stops here.
MAX_EXAMINED = 10_000
ENTRY_SECONDS = 30.0
PAST_DAY_SECONDS = 300.0
ENTRY_CACHE_SIZE = 50_000
DAY_CACHE_SIZE = 20_000
DESCRIPTION_MAX = 4000
CHANGESET = "2025-01-01T00:00:00Z"
# Element names of list items in XML (JSON arrays have none).
ITEM_TAG = {"services": "service", "attributes": "attribute", "values": "value",
            "service_requests": "request", "errors": "error", "endpoints": "endpoint",
            "formats": "format"}


class Open311Error(Exception):
    """An answer in the spec's error shape: HTTP status and (code, description) pairs."""

    def __init__(self, status: int, *errors: str):
        super().__init__(errors)
        self.status = status
        self.errors = [{"code": status, "description": text} for text in errors]


# -- rendering ---------------------------------------------------------------------------------

def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _element(tag: str, value) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, child in value.items():
            element.append(_element(key, child))
    elif isinstance(value, list):
        for child in value:
            element.append(_element(ITEM_TAG.get(tag, "item"), child))
    else:
        element.text = _text(value)
    return element


def render(fmt: str, root: str, value, status: int = 200) -> Response:
    """`value` as the spec's XML (under `root`) or JSON (Spark convention: root dropped)."""
    if fmt == "json":
        body = json.dumps(value, ensure_ascii=False).encode()
    else:
        body = ET.tostring(_element(root, value), encoding="utf-8", xml_declaration=True)
    response = Response(body, status=status, content_type=MIME[fmt])
    response.headers["Access-Control-Allow-Origin"] = "*"  # public data for any client
    return response


def w3(moment: datetime | None) -> str | None:
    """A w3 datetime in UTC, e.g. `2010-01-01T00:00:00Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_w3(name: str, text: str) -> datetime:
    """A w3 datetime argument; it must carry its time zone (the spec says so)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Open311Error(400, f"{name}: not a w3 datetime (e.g. 2010-01-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name}: the time zone is required (Z or ±HH:MM)")
    return moment.astimezone(UTC)


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


# -- the resources -----------------------------------------------------------------------------

def service_entry(category: Category) -> dict:
    return {
        "service_code": category.code,
        "service_name": category.name_tr,
        "description": f"{category.name_tr} / {category.name_en}",
        "metadata": True,
        "type": "realtime",
        "keywords": f"{category.name_tr}, {category.name_en}",
        "group": category.tier,
    }


def service_definition(category: Category, organisation: Organisation) -> dict:
    kinds = list(category.kinds) or ["request"]
    districts = [{"key": f"{province}/{district}", "name": f"{district} ({province})"}
                 for province, names in organisation.places.items() for district in names]
    return {
        "service_code": category.code,
        "attributes": [
            {"variable": True, "code": "kind", "datatype": "singlevaluelist",
             "required": len(kinds) > 1, "datatype_description": "Başvuru türü / kind",
             "order": 1, "description": "Başvurunuzun türü / the kind of application",
             "values": [{"key": k, "name": " / ".join(domain.KIND_NAMES.get(k, (k, k)))}
                        for k in kinds]},
            {"variable": True, "code": "district", "datatype": "singlevaluelist",
             "required": False, "datatype_description": "İlçe / district", "order": 2,
             "description": "Sorunun bulunduğu ilçe / the district the issue is in",
             "values": districts},
            {"variable": True, "code": "neighbourhood", "datatype": "string",
             "required": False, "datatype_description": "Mahalle adı / neighbourhood name",
             "order": 3, "description": "Sorunun bulunduğu mahalle / the neighbourhood"},
        ],
    }


def request_entry(doc: dict, category_names: dict[str, tuple[str, str]]) -> dict:
    """One application as a public service request (no personal data, no description)."""
    status = doc.get("status")
    location = doc.get("location") or {}
    holder = " — ".join(name for name in ((doc.get("institution") or {}).get("name"),
                                          (doc.get("unit") or {}).get("name")) if name)
    address = ", ".join(part for part in (location.get("neighbourhood"),
                                          location.get("district"),
                                          location.get("province")) if part)
    closed = status in domain.CLOSED_STATUSES
    return {
        "service_request_id": doc["application_id"],
        "status": "closed" if closed else "open",
        "status_notes": domain.status_text(status)[0],
        "service_name": category_names.get(doc.get("category") or "", (doc.get("category"),))[0],
        "service_code": doc.get("category"),
        "description": None,
        "agency_responsible": holder or None,
        "service_notice": None,
        "requested_datetime": w3(doc.get("received_at")),
        "updated_datetime": w3(doc.get("updated_at")),
        "expected_datetime": None if closed else w3(domain.expected_at(doc)),
        "address": address or None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def listing_args(args: dict, now: datetime) -> tuple[datetime, datetime, set[str], set[str]]:
    """`GET requests`' optional arguments, checked: (start, end, statuses, service codes)."""
    start = parse_w3("start_date", args["start_date"]) if args.get("start_date") else None
    end = parse_w3("end_date", args["end_date"]) if args.get("end_date") else None
    if start and end and end < start:
        raise Open311Error(400, "end_date: before start_date")
    if start and end and end - start > MAX_SPAN:
        raise Open311Error(400, "start_date, end_date: the range may not span more than 90 days")
    if start is None and end is None:
        end = now
    if start is None:
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    statuses = set(_csv(args.get("status")))
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status: open, closed or both (comma delimited)")
    return start, end, statuses, set(_csv(args.get("service_code")))


def days_back(start: datetime, end: datetime) -> list[str]:
    """The index's days (`YYYYMMDD`, UTC) from `end`'s back to `start`'s."""
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    return [(last - timedelta(days=n)).strftime("%Y%m%d") for n in range((last - first).days + 1)]


class PublicListing:
    """`GET requests`, bounded: read through the per-(area, day) index the receipts fill, never
    by scanning the read model.

    A listing walks the jurisdiction's days newest first, takes the index entries in the time
    range and the service codes asked for, reads those applications by `_id` and stops once a
    day brings the answer to `MAX_RESULTS`. Reused briefly, so repeated or varied queries cost
    little: each application's public entry (its status may lag by `ENTRY_SECONDS`) and each
    past day's entries (`PAST_DAY_SECONDS`; today and yesterday are probed for new entries on
    every listing — one read each — so a request is listed as soon as its receipt is folded).
    """

    def __init__(self, store: TrackingStore, tracker: Tracker):
        self.store = store
        self.tracker = tracker
        # (scope, day) → (trusted until (monotonic), entries in slot order)
        self._days: dict[tuple[str, str], tuple[float, list[dict]]] = {}
        # application id → (fresh until (monotonic), category names used, summary)
        self._entries: dict[str, tuple[float, dict, dict]] = {}

    def day(self, scope: str, day: str, recent: bool) -> list[dict]:
        """The index entries of one area and day; only slots not seen yet are read."""
        cached = self._days.get((scope, day))
        now = time.monotonic()
        if cached is not None and not recent and cached[0] > now:
            return cached[1]
        entries = list(cached[1]) if cached is not None else []
        entries += self.store.public_day(scope, day, entries[-1]["slot"] + 1 if entries else 1)
        if len(self._days) >= DAY_CACHE_SIZE:
            self._days.clear()  # simple and bounded; it refills at the next listings
        self._days[(scope, day)] = (now + PAST_DAY_SECONDS, entries)
        return entries

    def summary(self, application_id: str, *, cached: bool = True) -> dict | None:
        """What a listing needs of one application — its spec entry, receipt time, area — or
        None when it is not public (not received yet, or confidential)."""
        names = self.tracker.category_names
        now = time.monotonic()
        hit = self._entries.get(application_id)
        if cached and hit is not None and hit[0] > now and hit[1] is names:
            return hit[2]
        doc = self.store.get(application_id)
        if not domain.is_visible(doc) or doc.get("confidential"):
            return None  # not kept: a request being created is read again until it shows
        summary = {"entry": request_entry(doc, names), "received_at": doc["received_at"],
                   "area": doc.get("area")}
        if len(self._entries) >= ENTRY_CACHE_SIZE:
            self._entries.clear()
        self._entries[application_id] = (now + ENTRY_SECONDS, names, summary)
        return summary

    def by_ids(self, ids: list[str], jurisdiction: Jurisdiction) -> list[dict]:
        """`service_request_id=a,b,…` ("overrides all other arguments"), in the jurisdiction."""
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"service_request_id: at most {MAX_IDS} ids at once")
        found = (self.summary(request_id[:64]) for request_id in dict.fromkeys(ids))
        return [summary["entry"] for summary in found
                if summary is not None and in_jurisdiction(summary, jurisdiction)]

    def listing(self, args: dict, jurisdiction: Jurisdiction, now: datetime) -> list[dict]:
        """The jurisdiction's public requests matching the spec's arguments, newest first."""
        ids = _csv(args.get("service_request_id"))
        if ids:
            return self.by_ids(ids, jurisdiction)
        start, end, statuses, codes = listing_args(args, now)
        scope = domain.area_scope(jurisdiction.province, jurisdiction.district)
        recent = {domain.day_key(now), domain.day_key(now - timedelta(days=1))}
        found: list[dict] = []
        seen: set[str] = set()
        examined = 0
        for day in days_back(start, end):
            entries = [entry for entry in self.day(scope, day, day in recent)
                       if start <= entry["received_at"] <= end
                       and (not codes or entry.get("category") in codes)
                       and entry["application_id"] not in seen]
            for entry in sorted(entries, key=lambda e: e["received_at"], reverse=True):
                seen.add(entry["application_id"])
                summary = self.summary(entry["application_id"])
                if summary is not None and (not statuses or summary["entry"]["status"]
                                            in statuses):
                    found.append(summary)
            examined += len(entries)
            # Earlier days only hold earlier receipts: once the answer is full, stop.
            if len(found) >= MAX_RESULTS or examined >= MAX_EXAMINED:
                break
        found.sort(key=lambda summary: summary["received_at"], reverse=True)
        return [summary["entry"] for summary in found[:MAX_RESULTS]]


def in_jurisdiction(summary: dict, jurisdiction: Jurisdiction) -> bool:
    """Whether an application lies in the jurisdiction's area (what its listing shows)."""
    return domain.in_area(summary, jurisdiction.province, jurisdiction.district)


def covering(organisation: Organisation, province: str | None,
             district: str | None) -> list[str]:
    """The jurisdictions whose area holds the place, the most local first."""
    place = {"area": {"province": place_key(province), "district": place_key(district)}}
    found = [j for j in organisation.jurisdictions.values()
             if j.province and domain.in_area(place, j.province, j.district)]
    found.sort(key=lambda j: j.district is None)
    return [j.id for j in found]


def api_keys(config: dict) -> dict[str, str]:
    """`OPEN311_API_KEYS`: comma-separated `client:key` pairs (or bare keys) → key → client."""
    keys = {}
    for number, entry in enumerate(_csv(config.get("OPEN311_API_KEYS"))):
        client, sep, key = entry.partition(":")
        keys[key if sep else client] = client if sep else f"client-{number + 1}"
    return keys


def key_client(keys: dict[str, str], given: str) -> str | None:
    """The client an api_key belongs to, compared in constant time against every key."""
    found = None
    for key, client in keys.items():
        if hmac.compare_digest(key.encode(), given.encode()):
            found = client
    return found


def submission(form, category: Category, jurisdiction: Jurisdiction,
               organisation: Organisation) -> dict:
    """The intake payload for a POSTed service request; `Open311Error` names what is wrong."""
    errors = []
    lat, lon = form.get("lat"), form.get("long")
    address = (form.get("address_string") or "").strip()
    address_id = (form.get("address_id") or "").strip()
    coordinates = None
    if lat or lon:
        try:
            coordinates = (float(lat), float(lon))
            if not (-90 <= coordinates[0] <= 90 and -180 <= coordinates[1] <= 180):
                raise ValueError
        except (TypeError, ValueError):
            errors.append("lat, long: both are required, as WGS84 degrees")
    if not (coordinates or address or address_id) and not errors:
        errors.append("lat & long, address_string or address_id: a location is required")
    kinds = list(category.kinds) or ["request"]
    kind = form.get("attribute[kind]") or (kinds[0] if len(kinds) == 1 else None)
    if kind not in kinds:
        errors.append(f"attribute[kind]: one of {', '.join(kinds)}")
    district_text = (form.get("attribute[district]") or "").strip()
    province, _, district = district_text.rpartition("/")
    district = organisation.district(district) if district_text else None
    if district_text and district is None:
        errors.append("attribute[district]: not a district of this service area")
    if not district_text and jurisdiction.district:
        # A district's jurisdiction takes requests in its district: that is where it lists them.
        district = organisation.district(jurisdiction.district) or jurisdiction.district
    province = province or organisation.province_of(district) or jurisdiction.province
    if province is None and len(organisation.places) == 1:
        province = next(iter(organisation.places))
    if province is None:
        errors.append("attribute[district]: required to place the request")
    elif not (district_text and district is None) and not domain.in_area(
            {"area": {"province": province, "district": district}},
            jurisdiction.province, jurisdiction.district):
        # Accepted, it would be listed and read back under another jurisdiction only.
        elsewhere = covering(organisation, province, district)[:3]
        errors.append(f"attribute[district]: {district or province} is outside the area of "
                      f"{jurisdiction.id}; post it to "
                      + (" or ".join(f"jurisdiction_id {j}" for j in elsewhere)
                         or "the jurisdiction that serves it"))
    description = (form.get("description") or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors.append(f"description: at most {DESCRIPTION_MAX} characters")
    if errors:
        raise Open311Error(400, *errors)
    person = {k: form.get(k, "").strip() for k in ("first_name", "last_name", "phone", "email")}
    person = {k: v for k, v in person.items() if v}
    location = {"province": province, "district": district,
                "neighbourhood": (form.get("attribute[neighbourhood]") or "").strip() or None,
                "address": " ".join(part for part in (address, address_id) if part) or None}
    if coordinates:
        location.update(lat=coordinates[0], lon=coordinates[1])
    payload = {
        "kind": kind, "category": category.code, "channel": "web",
        "description": description or f"{category.name_tr} ({address or district or province})",
        "location": location,
    }
    if person:
        payload["citizen"] = person
    else:
        payload["anonymous"] = True
    return payload


def spec_errors(errors: dict, prefix: str = "") -> list[str]:
    """One spec error description per refused field: `citizen.first_name: Missing data…`."""
    described = []
    for field, value in errors.items():
        path = f"{prefix}.{field}" if prefix else str(field)
        if isinstance(value, dict):
            described += spec_errors(value, path)
        else:
            messages = value if isinstance(value, list) else [value]
            described.append(f"{path}: {' '.join(str(m) for m in messages)}")
    return described


def blueprint(tracker: Tracker, store: TrackingStore, rpc: RpcPool,
              catalogue: CatalogueCache, organisation: Organisation, public: PublicListing,
              config: dict) -> Blueprint:
    """`/open311/v2/…`; `public` is the process's listing (its caches outlive any one app)."""
    bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
    keys = api_keys(config)
    base_url = config["PUBLIC_BASE_URL"].rstrip("/") + "/open311/v2"

    def fmt_of() -> str:
        return (request.view_args or {}).get("fmt", "xml")

    @bp.errorhandler(Open311Error)
    def _spec_error(error: Open311Error):
        return render(fmt_of(), "errors", error.errors, error.status)

    @bp.before_request
    def _gate():
        blocked = tracker.gate(client_address(request.environ, tracker.trusted_hops), "open311")
        if blocked is not None:
            response = render(fmt_of(), "errors", [
                {"code": 429, "description": "too many requests; retry later"}], 429)
            response.headers["Retry-After"] = str(blocked.retry_after)
            return response
        return None

    def jurisdiction_arg(source) -> Jurisdiction:
        given = (source.get("jurisdiction_id") or "").strip()
        if not given:
            raise Open311Error(400, "jurisdiction_id: required (this endpoint serves "
                                    f"{len(organisation.jurisdictions)} jurisdictions)")
        found = organisation.jurisdiction(given)
        if found is None:
            raise Open311Error(404, f"jurisdiction_id: {given[:80]} not found")
        return found

    def category_arg(code: str | None) -> Category:
        if not code:
            raise Open311Error(400, "service_code: required")
        category = catalogue.get().get(code)
        if category is None:
            raise Open311Error(404, f"service_code: {code[:80]} not found")
        return category

    @bp.get(f"/discovery.{FORMATS}")
    def discovery(fmt: str):
        return render(fmt, "discovery", {
            "changeset": CHANGESET,
            "contact": "Açık Kapı koordinasyon merkezi / coordination centre",
            "key_service": "API anahtarı için koordinasyon merkezine başvurun / ask the "
                           "coordination centre for an api_key",
            "endpoints": [{"specification": SPEC, "url": base_url, "changeset": CHANGESET,
                           "type": "production",
                           "formats": ["text/xml", "application/json"]}],
        })

    @bp.get(f"/services.{FORMATS}")
    def services(fmt: str):
        jurisdiction_arg(request.args)
        return render(fmt, "services", [service_entry(c) for c in catalogue.get().values()])

    @bp.get(f"/services/<service_code>.{FORMATS}")
    def definition(service_code: str, fmt: str):
        jurisdiction_arg(request.args)
        return render(fmt, "service_definition",
                      service_definition(category_arg(service_code), organisation))

    @bp.post(f"/requests.{FORMATS}")
    def create(fmt: str):
        form = request.form
        client = key_client(keys, form.get("api_key") or "")
        if client is None:
            raise Open311Error(403, "api_key: missing or invalid -- can't proceed with "
                                    "create_request")
        jurisdiction = jurisdiction_arg(form)
        category = category_arg(form.get("service_code"))
        payload = submission(form, category, jurisdiction, organisation)
        try:
            created = rpc.call("intake", "submit_application", payload)
        except SubmissionRefused as refused:  # crosses RPC as itself: its fields, as named
            raise Open311Error(400, *spec_errors(refused.errors)) from None
        except RemoteError as error:
            log.warning("open311 submission failed", extra={"error": error.exc_type})
            raise Open311Error(400, "the request could not be created now; retry later") from None
        except Exception as exc:
            log.warning("open311 submission failed", extra={"error": type(exc).__name__})
            raise Open311Error(400, "the request could not be created now; retry later") from None
        # A duplicate of an earlier report is answered with the original, as intake answers any
        # second caller: the duplicate itself never becomes a public request of its own.
        request_id = created.get("merged_into") or created["application_id"]
        log.info("open311 request created", extra={"client": client,
                                                   "application_id": request_id})
        code = display_tracking_code(created["tracking_code"].replace("-", ""))
        return render(fmt, "service_requests", [{
            "service_request_id": request_id,
            "service_notice": f"Başvurunuz alındı; takip kodu {code}. / Received; tracking "
                              f"code {code}.",
            "account_id": None,
        }], 201)

    @bp.get(f"/requests.{FORMATS}")
    def listing(fmt: str):
        jurisdiction = jurisdiction_arg(request.args)
        return render(fmt, "service_requests",
                      public.listing(request.args, jurisdiction, utcnow()))

    @bp.get(f"/requests/<service_request_id>.{FORMATS}")
    def one(service_request_id: str, fmt: str):
        jurisdiction = jurisdiction_arg(request.args)
        # Read afresh (a client polls here for the request it just posted), and only within
        # the jurisdiction's area, as its listing shows.
        summary = public.summary(service_request_id[:64], cached=False)
        if summary is None or not in_jurisdiction(summary, jurisdiction):
            raise Open311Error(404, f"service_request_id: {service_request_id[:64]} not found")
        return render(fmt, "service_requests", [summary["entry"]])

    @bp.get(f"/tokens/<token>.{FORMATS}")
    def token(token: str, fmt: str):
        jurisdiction_arg(request.args)
        # Every request is created in real time (type "realtime"): no token is ever issued.
        raise Open311Error(404, f"token: {token[:64]} not found")

    return bp
