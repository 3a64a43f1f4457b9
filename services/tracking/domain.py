"""Tracking's rules: folding events into the public read model, and what its holder may do.

Pure: no nameko, no pymongo. The read model of an application is a function of the *set* of
events folded into it, not of their order: events reach tracking on separate queues, so
`application_routed` may be handled before `application_received`, and a case event before
either. To make that hold,

- every timestamp is cut to whole milliseconds before it is compared or stored (MongoDB and the
  embedded store keep milliseconds; comparing a stored value with a fresh microsecond one would
  make the outcome depend on which event was stored first);
- the timeline is kept sorted by (time, lifecycle step, event id), and `status`, the result and
  the pending reopen request are derived from that order — so a routing decision stamped in the
  same millisecond as the receipt still sorts after it;
- who holds the application (institution and unit) is "last writer wins" by the same key.

Timeline texts are Turkish first, English second, and never name the staff member who acted:
citizens read "Yol Yapım Dairesi Başkanlığı başvurunuzu incelemeye aldı", not who. Nothing here
carries personal data: the events tracking consumes have none, and the free text a citizen writes
(a reopen reason, a comment) is scrubbed before it goes into an event.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from services.common.codes import digests_match, display_tracking_code
from services.common.events import CASE_EVENTS, make_event
from services.common.logs import scrub
from services.common.places import place_key

REOPEN_REQUESTED = "reopen_requested"
SATISFACTION_RECORDED = "satisfaction_recorded"

# The status each status-bearing event moves an application to; case events carry theirs.
STATUS_OF_EVENT = {
    "application_received": "received",
    "application_routed": "assigned",
    "application_referred": "referred",
}

# Where an event sits in the lifecycle when two carry the same millisecond: receipt first, then
# the routing outcome, the case work in its usual order, then what was said about it.
_STEP = {
    "application_received": 0,
    "application_routed": 1,
    "application_referred": 1,
    "application_merged": 1,
    "case_acknowledged": 2,
    "case_transferred": 2,
    "case_returned": 2,
    "case_started": 3,
    "case_waiting": 4,
    "case_resumed": 5,
    "case_resolved": 6,
    "case_rejected": 7,
    "case_approved": 7,
    "case_closed": 8,
    REOPEN_REQUESTED: 9,
    "case_reopened": 10,
    "case_reopen_refused": 10,
    SATISFACTION_RECORDED: 11,
    "notification_sent": 12,
}
FOLDED = frozenset(_STEP) - {REOPEN_REQUESTED, SATISFACTION_RECORDED}

# Statuses at which the work is done: a result can be rated, and (within the category's period)
# the application reopened.
CONCLUDED = frozenset({"resolved", "closed", "answered"})
# Open311's two statuses (design §4: Concluded = closed / referred; answered and merged too).
CLOSED_STATUSES = frozenset({"closed", "referred", "answered", "merged"})
# The muhtar portal's three lists (seed 003).
PENDING, FORWARDED, CONCLUDED_LIST = "pending", "forwarded", "concluded"

# Citizen-facing names of the kinds of application (design §2), Turkish first.
KIND_NAMES: dict[str, tuple[str, str]] = {
    "complaint": ("Şikâyet", "Complaint"), "request": ("Talep", "Request"),
    "suggestion": ("Öneri", "Suggestion"), "information": ("Bilgi edinme", "Information"),
    "thanks": ("Teşekkür", "Thanks"),
}

# Citizen-facing names of every case state (design §4), Turkish first.
STATUS_TEXT: dict[str, tuple[str, str]] = {
    "received": ("Başvurunuz alındı", "Application received"),
    "assigned": ("İlgili birime iletildi", "Assigned to the responsible unit"),
    "acknowledged": ("Birim tarafından incelemeye alındı", "Acknowledged by the unit"),
    "in_progress": ("İşlem yapılıyor", "In progress"),
    "waiting_citizen": ("Sizden bilgi bekleniyor", "Waiting for information from you"),
    "resolved": ("Sonuçlandırıldı", "Resolved"),
    "closed": ("Kapatıldı", "Closed"),
    "referred": ("Yetkili kuruma yönlendirildi", "Referred to the responsible institution"),
    "answered": ("Cevaplandı", "Answered"),
    "merged": ("Başka bir başvuruyla birleştirildi", "Merged with another application"),
}


class NotAllowed(Exception):
    """A reopen or rating the application does not allow now; `code` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code = code
        self.message = message


def status_text(status: str | None) -> tuple[str, str]:
    """The (Turkish, English) citizen-facing name of a status."""
    if status is None:
        # Only a later step has been folded so far: the receipt is still on its way.
        return ("Başvurunuz işleniyor", "Application being processed")
    return STATUS_TEXT.get(status, (status, status))


def to_millis(moment: datetime) -> datetime:
    """`moment` in UTC, cut to whole milliseconds (what the store keeps)."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def new_read_model(application_id: str) -> dict:
    """The read model before any event: fields the receipt fills in are None."""
    return {
        "application_id": application_id,
        "tracking_code": None,
        "security_digest": None,
        "kind": None,
        "category": None,
        "confidential": False,
        "caller_type": None,
        "location": None,
        "area": None,
        "received_at": None,
        "status": None,
        "institution": None,
        "unit": None,
        "referral": None,
        "assigned_at": None,
        "assigned_event": None,
        "assigned_by": None,
        "unit_by": None,
        "expected_at": None,
        "merged_into": None,
        "satisfaction": None,
        "updated_at": None,
        "timeline": [],
    }


# -- timeline texts --------------------------------------------------------------------------

def _unit(data: dict, fallback_tr: str = "İlgili birim", fallback_en: str = "The unit"):
    name = data.get("unit_name")
    return (name or fallback_tr, name or fallback_en)


def _case_text(etype: str, data: dict) -> tuple[str, str]:
    unit_tr, unit_en = _unit(data)
    if etype == "case_acknowledged":
        return (f"{unit_tr} başvurunuzu incelemeye aldı",
                f"{unit_en} started reviewing your application")
    if etype == "case_started":
        return (f"{unit_tr} başvurunuz üzerinde çalışmaya başladı",
                f"{unit_en} started working on your application")
    if etype == "case_transferred":
        return (f"Başvurunuz {unit_tr} birimine aktarıldı",
                f"Your application was transferred to {unit_en}")
    if etype == "case_returned":
        return ("Başvurunuz doğru birime yönlendirilmek üzere koordinasyon merkezine döndü",
                "Your application went back to the coordination centre to be re-routed")
    if etype == "case_waiting":
        # The reason is the question put to the citizen: it is meant for them.
        ask = f": {data['reason']}" if data.get("reason") else ""
        return (f"{unit_tr} sizden ek bilgi bekliyor{ask}",
                f"{unit_en} is waiting for information from you{ask}")
    if etype == "case_resumed":
        return ("Başvurunuz üzerindeki çalışma devam ediyor", "Work on your application resumed")
    if etype == "case_resolved":
        return (f"{unit_tr} başvurunuzu sonuçlandırdı", f"{unit_en} resolved your application")
    if etype == "case_approved":
        return ("Sonuç onaylandı", "The result was approved")
    if etype == "case_rejected":
        # An internal step of the approval ladder: the citizen learns only that work goes on.
        return ("Sonuç yeniden değerlendiriliyor; çalışma sürüyor",
                "The result is being reconsidered; work continues")
    if etype == "case_closed":
        if data.get("state") == "answered":
            return ("Bilgi talebiniz cevaplandı", "Your information request was answered")
        return ("Başvurunuz sonuçlandırıldı ve kapatıldı",
                "Your application was concluded and closed")
    if etype == "case_reopened":
        return ("Başvurunuz yeniden açıldı", "Your application was reopened")
    if etype == "case_reopen_refused":
        return ("Yeniden açma talebiniz kabul edilmedi (süre dolmuş ya da bu konu yeniden "
                "açılamıyor)", "Your request to reopen was not accepted (the period is over or "
                "this kind of application cannot be reopened)")
    raise ValueError(f"no text for {etype}")


def _timeline_text(event: dict) -> tuple[str, str]:
    data = event["data"]
    etype = event["type"]
    if etype == "application_received":
        return ("Başvurunuz alındı ve kayda geçti", "Your application was received and recorded")
    if etype == "application_routed":
        where = f"{data['institution_name']} — {data['unit_name']}"
        return (f"Başvurunuz {where} birimine iletildi",
                f"Your application was assigned to {where}")
    if etype == "application_referred":
        return (f"Başvurunuz yetkili kuruma yönlendirildi: {data['institution_name']}",
                f"Your application was referred to {data['institution_name']}, "
                "the responsible institution")
    if etype == "notification_sent":
        # Never the destination: the timeline is shown to whoever holds the codes.
        return ("Bilgilendirme mesajı gönderildi", "Notification sent")
    if etype in CASE_EVENTS:
        return _case_text(etype, data)
    raise ValueError(f"tracking does not fold {etype}")


def _merged_texts(original: bool, data: dict) -> tuple[str, str]:
    if original:
        return ("Aynı konuda başka bir kanaldan yapılan başvuru bu başvuruyla birleştirildi",
                "An application about the same matter made through another channel was merged "
                "into this one")
    code = display_tracking_code(data["original_tracking_code"])
    return (f"Bu başvuru aynı konudaki {code} numaralı başvuruyla birleştirildi; takibi oradan "
            "yapılır",
            f"This application was merged with application {code} about the same matter; "
            "follow that one")


def _order(entry: dict) -> tuple:
    return (entry["at"], _STEP.get(entry["type"], 99), entry["event_id"])


# -- folding -----------------------------------------------------------------------------------

def fold_event(current: dict | None, event: dict) -> tuple[dict | None, list[dict]]:
    """Fold one validated envelope into the read model of `event["application_id"]`.

    Returns `(new_document, events_to_publish)` as `services.common.outbox.fold_once` expects,
    `(None, [])` when it changes nothing; tracking publishes nothing in reaction to these events.
    `application_merged` is folded by `fold_merged` (it concerns two applications).
    """
    etype = event["type"]
    if etype not in FOLDED or etype == "application_merged":
        raise ValueError(f"tracking does not fold {etype}")
    doc = new_read_model(event["application_id"]) if current is None else copy.deepcopy(current)
    if _already_folded(doc, event):
        return None, []
    if etype == "application_received" and doc.get("received_at") is not None:
        return None, []  # a replay under a new event id: one receipt per application
    at = to_millis(event["occurred_at"])
    data = event["data"]
    status = STATUS_OF_EVENT.get(etype)
    result = None
    if etype == "application_received":
        _receive(doc, data)
    elif etype in ("application_routed", "application_referred"):
        doc["category"] = doc.get("category") or data["category"]
        doc["tracking_code"] = doc.get("tracking_code") or data["tracking_code"]
        _assign(doc, event, at)
    elif etype in CASE_EVENTS:
        status = data["state"]
        if data.get("unit"):
            _hold(doc, (at, event["event_id"]),
                  {"code": data["unit"], "name": data.get("unit_name") or data["unit"]})
        if etype in ("case_resolved", "case_closed") and data.get("result"):
            result = data["result"]
    text_tr, text_en = _timeline_text(event)
    _append(doc, {"at": at, "type": etype, "status": status, "text_tr": text_tr,
                  "text_en": text_en, "event_id": event["event_id"], "result": result})
    return doc, []


def fold_deadline(current: dict | None, event: dict) -> tuple[dict | None, list]:
    """Fold sla's `deadline_planned`: the expected date in working time, the latest wins
    (it may arrive before the receipt; the page shows it once the receipt is folded)."""
    doc = new_read_model(event["application_id"]) if current is None else copy.deepcopy(current)
    key = (to_millis(event["occurred_at"]), event["event_id"])
    if not _newer(doc, "deadline_by", key):
        return None, []
    doc["deadline_by"] = list(key)
    due = event["data"].get("resolve_due_at")
    doc["sla_expected_at"] = to_millis(due) if due else None
    doc["sla_clock"] = event["data"]["clock"]
    return doc, []


def expected_at(doc: dict) -> datetime | None:
    """When the citizen may expect a result: sla's working-time deadline once it has said,
    else the category's resolve hours from the routing; none while waiting for the citizen."""
    if doc.get("deadline_by"):
        return doc.get("sla_expected_at")
    return doc.get("expected_at")


def fold_merged(current: dict | None, event: dict, *, original: bool) -> tuple[dict | None, list]:
    """Fold `application_merged` into the original (`original=True`) or the duplicate.

    The event's `application_id` is the duplicate's. The original gets a timeline step; the
    duplicate becomes `merged` and points at the original's tracking code.
    """
    data = event["data"]
    doc_id = data["original_application_id"] if original else event["application_id"]
    doc = new_read_model(doc_id) if current is None else copy.deepcopy(current)
    if _already_folded(doc, event):
        return None, []
    text_tr, text_en = _merged_texts(original, data)
    if not original:
        doc["merged_into"] = data["original_tracking_code"]
    _append(doc, {"at": to_millis(event["occurred_at"]), "type": "application_merged",
                  "status": None if original else "merged", "text_tr": text_tr,
                  "text_en": text_en, "event_id": event["event_id"], "result": None})
    return doc, []


def _already_folded(doc: dict, event: dict) -> bool:
    # fold_once remembers only the last 100 event ids; the timeline remembers all of them.
    return any(entry["event_id"] == event["event_id"] for entry in doc.get("timeline") or [])


def _receive(doc: dict, data: dict) -> None:
    location = data.get("location") or {}
    doc.update(
        tracking_code=data["tracking_code"],
        security_digest=data["security_digest"],
        kind=data["kind"],
        confidential=bool(data.get("confidential", False)),
        caller_type=data.get("caller_type") or "citizen",
        location={k: location.get(k) for k in ("province", "district", "neighbourhood")},
        # Normalised names, so Open311 can list a jurisdiction's area whatever the spelling.
        area={"province": place_key(location.get("province")),
              "district": place_key(location.get("district"))},
        received_at=to_millis(data["received_at"]),
    )
    # The receipt's category is what the citizen chose; routing only echoes it.
    doc["category"] = data["category"]
    if doc["caller_type"] == "muhtar" and data.get("citizen_ref"):
        # Pseudonymous (intake's keyed hash): lets the portal list a muhtar's own requests.
        # Never shown, never sent anywhere.
        doc["citizen_ref"] = data["citizen_ref"]


def _append(doc: dict, entry: dict) -> None:
    timeline = doc.setdefault("timeline", [])
    timeline.append(entry)
    timeline.sort(key=_order)
    statuses = [item for item in timeline if item["status"] is not None]
    doc["status"] = statuses[-1]["status"] if statuses else None
    doc["updated_at"] = timeline[-1]["at"]


def _newer(doc: dict, field: str, key: tuple) -> bool:
    """Whether `key` (time, event id) is at least as late as the one `field` was set by."""
    current = doc.get(field)
    return current is None or tuple(current) <= key


def _assign(doc: dict, event: dict, at: datetime) -> None:
    """Record the routing outcome (institution, referral, expected date): the latest wins.

    The unit is kept apart: a later case event (a transfer) may already have moved it.
    """
    key = (at, event["event_id"])
    data = event["data"]
    if _newer(doc, "assigned_by", key):
        doc["assigned_at"], doc["assigned_event"] = key
        doc["assigned_by"] = list(key)
        doc["institution"] = {"code": data["institution"], "name": data["institution_name"]}
        if event["type"] == "application_routed":
            doc["referral"] = None
            # The category's resolve time from routing; the SLA service may publish better.
            doc["expected_at"] = at + timedelta(hours=float(data["resolve_hours"]))
        else:
            doc["referral"] = {"institution": data["institution"],
                               "name": data["institution_name"],
                               "contact": dict(data.get("contact") or {})}
            doc["expected_at"] = None
    if event["type"] == "application_routed":
        _hold(doc, key, {"code": data["unit"], "name": data["unit_name"]})
    else:
        _hold(doc, key, None)


def _hold(doc: dict, key: tuple, unit: dict | None) -> None:
    """Who holds the case now: the latest routing outcome or case event naming a unit."""
    if _newer(doc, "unit_by", key):
        doc["unit_by"] = list(key)
        doc["unit"] = unit


# -- what the timeline says --------------------------------------------------------------------

def _last(timeline: list[dict], types: set[str] | None = None, statuses=None) -> dict | None:
    for entry in reversed(timeline):
        if types is not None and entry["type"] not in types:
            continue
        if statuses is not None and entry["status"] not in statuses:
            continue
        return entry
    return None


def concluded_at(doc: dict) -> datetime | None:
    """When the application last reached a concluded status, if that is where it stands."""
    if doc.get("status") not in CONCLUDED:
        return None
    entry = _last(doc.get("timeline") or [], statuses=CONCLUDED)
    return entry["at"] if entry else None


def current_result(doc: dict) -> str | None:
    """The result text of the latest resolution, unless the application was reopened since."""
    for entry in reversed(doc.get("timeline") or []):  # sorted: the latest step is last
        if entry["type"] == "case_reopened":
            return None
        if entry["type"] in ("case_resolved", "case_closed") and entry.get("result"):
            return entry["result"]
    return None


def pending_reopen(doc: dict) -> dict | None:
    """The citizen's reopen request still waiting for routing's answer, if any."""
    timeline = doc.get("timeline") or []
    asked = _last(timeline, types={REOPEN_REQUESTED})
    if asked is None:
        return None
    answered = _last(timeline, types={"case_reopened", "case_reopen_refused"})
    if answered is not None and _order(answered) > _order(asked):
        return None
    return asked


def reopen_until(doc: dict, reopen_days: int) -> datetime | None:
    """Until when the citizen may reopen (None: not now, whatever the reason)."""
    since = concluded_at(doc)
    if since is None or reopen_days <= 0:
        return None
    return since + timedelta(days=reopen_days)


def check_reopen(doc: dict, reopen_days: int, now: datetime) -> None:
    """Raise `NotAllowed` unless the holder may ask to reopen the application now."""
    if doc.get("status") not in CONCLUDED:
        raise NotAllowed("not_concluded", "Başvurunuz henüz sonuçlanmadı / the application is "
                                          "not concluded yet.")
    if pending_reopen(doc) is not None:
        raise NotAllowed("already_requested", "Yeniden açma talebiniz zaten alındı / a reopen "
                                              "request is already waiting.")
    until = reopen_until(doc, reopen_days)
    if until is None:
        raise NotAllowed("not_reopenable", "Bu konudaki başvurular yeniden açılamaz / "
                                           "applications in this category cannot be reopened.")
    if now > until:
        raise NotAllowed("period_over", "Yeniden açma süresi doldu / the period to reopen is "
                                        "over.")


def satisfaction_due(doc: dict) -> bool:
    """Whether the latest result may still be rated (once per conclusion)."""
    since = concluded_at(doc)
    rated = doc.get("satisfaction")
    return since is not None and (rated is None or rated["at"] < since)


def check_satisfaction(doc: dict) -> None:
    """Raise `NotAllowed` unless the holder may rate the result now."""
    if concluded_at(doc) is None:
        raise NotAllowed("not_concluded", "Başvurunuz henüz sonuçlanmadı / the application is "
                                          "not concluded yet.")
    if not satisfaction_due(doc):
        raise NotAllowed("already_rated", "Bu sonucu zaten değerlendirdiniz / you already rated "
                                          "this result.")


# -- the holder's actions ----------------------------------------------------------------------

def reopen_event(doc: dict, reason: str, now: datetime) -> dict:
    """The `reopen_requested` event for `doc`; the reason is scrubbed of personal data."""
    return make_event(REOPEN_REQUESTED, doc["application_id"],
                      {"reason": scrub(reason.strip())[:2000]}, occurred_at=now)


def satisfaction_event(doc: dict, score: int, comment: str | None, now: datetime,
                       source: str = "web") -> dict:
    """The `satisfaction_recorded` event for `doc`; the comment is scrubbed of personal data.
    `source`: `web` (the pages, the API) or `sms` (a reply to the survey SMS)."""
    text = scrub(comment.strip())[:2000] if comment and comment.strip() else None
    return make_event(SATISFACTION_RECORDED, doc["application_id"],
                      {"score": score, "comment": text, "source": source}, occurred_at=now)


def request_reopen(current: dict | None, event: dict, reopen_days: int,
                   now: datetime) -> tuple[dict | None, list[dict]]:
    """Fold the holder's reopen request (its event already built) into the read model.

    Shown at once as a timeline step; the real outcome arrives as `case_reopened` from routing.
    Raises `NotAllowed` if the application does not allow it (checked again here, inside the
    guarded write, so two concurrent requests cannot both pass).
    """
    if current is None:
        raise NotAllowed("not_concluded", "no such application")
    doc = copy.deepcopy(current)
    if _already_folded(doc, event):
        return None, []
    check_reopen(doc, reopen_days, now)
    _append(doc, {"at": to_millis(now), "type": REOPEN_REQUESTED, "status": None,
                  "text_tr": "Yeniden açma talebiniz alındı; değerlendiriliyor",
                  "text_en": "Your request to reopen was received and is being considered",
                  "event_id": event["event_id"], "result": None})
    return doc, [event]


def record_satisfaction(current: dict | None, event: dict, now: datetime,
                        reply_id: str | None = None) -> tuple[dict | None, list[dict]]:
    """Fold the holder's rating (its event already built) into the read model, once.

    `reply_id` names the SMS reply that carried it (intake's inbound id): kept with the rating
    so that the same reply delivered again is recognised instead of rating a second result.
    """
    if current is None:
        raise NotAllowed("not_concluded", "no such application")
    doc = copy.deepcopy(current)
    if _already_folded(doc, event):
        return None, []
    check_satisfaction(doc)
    at = to_millis(now)
    source = event["data"].get("source") or "web"
    doc["satisfaction"] = {"score": event["data"]["score"], "at": at, "source": source}
    if reply_id:
        doc["satisfaction"]["reply_id"] = reply_id
    by_sms = source == "sms"
    _append(doc, {"at": at, "type": SATISFACTION_RECORDED, "status": None,
                  "text_tr": "Memnuniyet değerlendirmeniz SMS ile alındı" if by_sms else
                             "Memnuniyet değerlendirmeniz kaydedildi",
                  "text_en": "Your satisfaction rating was received by SMS" if by_sms else
                             "Your satisfaction rating was recorded",
                  "event_id": event["event_id"], "result": None})
    return doc, [event]


def awaiting_rating(docs: Iterable[dict | None]) -> dict | None:
    """Of a citizen's applications, the one a survey reply rates: the most recently concluded
    whose result is still unrated (ties by application id, so the answer is stable)."""
    due = [doc for doc in docs if is_visible(doc) and satisfaction_due(doc)]
    return max(due, key=lambda doc: (concluded_at(doc), doc["application_id"]), default=None)


def rated_by_reply(doc: dict | None, reply_id: str) -> bool:
    """Whether `doc`'s current rating came from the SMS reply `reply_id`."""
    return bool(reply_id) and ((doc or {}).get("satisfaction") or {}).get("reply_id") == reply_id


def reply_result(doc: dict) -> dict:
    """What an SMS reply's sender is told it rated: public fields only."""
    return {"application_id": doc["application_id"],
            "tracking_code": display_tracking_code(doc["tracking_code"]),
            "score": doc["satisfaction"]["score"]}


# -- answering ---------------------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def public_view(doc: dict, category_names: dict[str, tuple[str, str]] | None = None,
                *, reopen_days: int = 0, now: datetime | None = None) -> dict:
    """What the holder of both codes is shown, JSON-ready (`TrackingAnswerSchema` documents it).

    Built by hand rather than dumped through marshmallow: this is the hot path of every lookup.
    """
    status = doc.get("status")
    status_tr, status_en = status_text(status)
    names = (category_names or {}).get(doc.get("category") or "")
    until = reopen_until(doc, reopen_days)
    now = now or datetime.now(UTC)
    reopen_open = (until is not None and now <= until and pending_reopen(doc) is None)
    satisfaction = doc.get("satisfaction")
    return {
        "tracking_code": display_tracking_code(doc["tracking_code"]),
        "status": status,
        "status_text_tr": status_tr,
        "status_text_en": status_en,
        "kind": doc.get("kind"),
        "category": doc.get("category"),
        "category_name_tr": names[0] if names else None,
        "category_name_en": names[1] if names else None,
        "institution": doc.get("institution"),
        "unit": doc.get("unit"),
        "referral": doc.get("referral"),
        "location": doc.get("location"),
        "received_at": _iso(doc.get("received_at")),
        "updated_at": _iso(doc.get("updated_at")),
        "expected_at": _iso(expected_at(doc)) if status not in CLOSED_STATUSES else None,
        "result": current_result(doc),
        "merged_into": (display_tracking_code(doc["merged_into"])
                        if doc.get("merged_into") else None),
        "reopen": {
            "allowed": reopen_open,
            "until": _iso(until) if reopen_open else None,
            "requested": pending_reopen(doc) is not None,
        },
        "satisfaction": {
            "allowed": satisfaction_due(doc),
            "score": satisfaction["score"] if satisfaction else None,
        },
        "timeline": [
            {"at": _iso(entry["at"]), "status": entry["status"], "text": entry["text_tr"],
             "text_en": entry["text_en"]}
            for entry in doc.get("timeline") or []
        ],
    }


def may_answer(doc: dict | None, given_digest: str, dummy_digest: str) -> bool:
    """Whether a lookup may be answered, doing the same comparison whether or not `doc` exists.

    `dummy_digest` stands in for a missing application (or one whose receipt has not arrived)
    so that "no such code" and "wrong security code" cost the same constant-time comparison.
    """
    expected = (doc or {}).get("security_digest")
    matched = digests_match(expected or dummy_digest, given_digest)
    return bool(matched and expected)


def is_visible(doc: dict | None) -> bool:
    """An application can be shown once its receipt is folded (codes and category known)."""
    return bool(doc and doc.get("received_at") is not None and doc.get("tracking_code"))


def day_key(moment: datetime) -> str:
    """The UTC day of `moment` as Open311's listing index keys it: `YYYYMMDD`."""
    return moment.astimezone(UTC).strftime("%Y%m%d")


def area_scope(province: str | None, district: str | None = None) -> str:
    """The listing index's name for an area: `*` (the country), a province, or a district within
    it — names normalised (`place_key`), so any spelling finds the same entries."""
    if not place_key(province):
        return "*"
    if not place_key(district):
        return place_key(province)
    return f"{place_key(province)}/{place_key(district)}"


def public_scopes(area: dict | None) -> list[str]:
    """Every area an application's place belongs to: the country, its province, its district."""
    area = area or {}
    scopes = ["*"]
    if area.get("province"):
        scopes.append(area_scope(area["province"]))
        if area.get("district"):
            scopes.append(area_scope(area["province"], area["district"]))
    return scopes


def in_area(doc: dict, province: str | None, district: str | None) -> bool:
    """Whether an application's place lies in the area (province, district); None = all."""
    return area_scope(province, district) in public_scopes(doc.get("area"))


def muhtar_list(status: str | None) -> str:
    """Seed 003's lists: Pending (received), Forwarded (assigned … resolved), Concluded."""
    if status in (None, "received"):
        return PENDING
    if status in CLOSED_STATUSES:
        return CONCLUDED_LIST
    return FORWARDED
