"""Tracking's rules: folding events into the public read model and answering a lookup.

Pure: no nameko, no pymongo. The read model of an application is a function of the *set* of
events folded into it, not of their order: events reach tracking on separate queues, so
`application_routed` may be handled before `application_received`. To make that hold,

- every timestamp is cut to whole milliseconds before it is compared or stored (MongoDB and the
  embedded store keep milliseconds; comparing a stored value with a fresh microsecond one would
  make the outcome depend on which event was stored first);
- the timeline is kept sorted by (time, lifecycle step, event id), and `status` is that of the
  last status-bearing entry in that order — so a routing decision stamped in the same
  millisecond as the receipt still sorts after it;
- the assignment (institution and unit) is "last writer wins" by the same key.

Nothing here carries personal data: the events tracking consumes have none.
"""
from __future__ import annotations

import copy
from datetime import UTC, datetime

from services.common.codes import digests_match, display_tracking_code

# The status each status-bearing event moves an application to.
STATUS_OF_EVENT = {
    "application_received": "received",
    "application_routed": "assigned",
    "application_referred": "referred",
}

# Where an event sits in the lifecycle when two carry the same millisecond: receipt first, then
# the routing outcome, then what was said to the citizen about it.
_STEP = {
    "application_received": 0,
    "application_routed": 1,
    "application_referred": 1,
    "notification_sent": 2,
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


def status_text(status: str | None) -> tuple[str, str]:
    """The (Turkish, English) citizen-facing name of a status."""
    if status is None:
        # Only a notification has been folded so far: the receipt is still on its way.
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
        "received_at": None,
        "status": None,
        "institution": None,
        "unit": None,
        "referral": None,
        "assigned_at": None,
        "assigned_event": None,
        "updated_at": None,
        "timeline": [],
    }


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
    raise ValueError(f"tracking does not fold {etype}")


def _order(entry: dict) -> tuple:
    return (entry["at"], _STEP.get(entry["type"], 9), entry["event_id"])


def fold_event(current: dict | None, event: dict) -> tuple[dict | None, list[dict]]:
    """Fold one validated envelope into the read model; `(None, [])` when it changes nothing.

    Returns `(new_document, events_to_publish)` as `services.common.outbox.fold_once` expects;
    tracking publishes nothing in reaction to these events.
    """
    etype = event["type"]
    if etype not in _STEP:
        raise ValueError(f"tracking does not fold {etype}")
    doc = new_read_model(event["application_id"]) if current is None else copy.deepcopy(current)
    timeline = doc.setdefault("timeline", [])
    if any(entry["event_id"] == event["event_id"] for entry in timeline):
        return None, []  # fold_once remembers only the last 100 event ids; the timeline all
    if etype == "application_received" and doc.get("received_at") is not None:
        return None, []  # a replay under a new event id: one receipt per application
    at = to_millis(event["occurred_at"])
    data = event["data"]
    if etype == "application_received":
        doc.update(
            tracking_code=data["tracking_code"],
            security_digest=data["security_digest"],
            kind=data["kind"],
            confidential=bool(data.get("confidential", False)),
            received_at=to_millis(data["received_at"]),
        )
        # The receipt's category is what the citizen chose; routing only echoes it.
        doc["category"] = data["category"]
    elif etype in ("application_routed", "application_referred"):
        doc["category"] = doc.get("category") or data["category"]
        doc["tracking_code"] = doc.get("tracking_code") or data["tracking_code"]
        _assign(doc, event, at)
    text_tr, text_en = _timeline_text(event)
    timeline.append({
        "at": at,
        "type": etype,
        "status": STATUS_OF_EVENT.get(etype),
        "text_tr": text_tr,
        "text_en": text_en,
        "event_id": event["event_id"],
    })
    timeline.sort(key=_order)
    statuses = [entry for entry in timeline if entry["status"] is not None]
    doc["status"] = statuses[-1]["status"] if statuses else None
    doc["updated_at"] = timeline[-1]["at"]
    return doc, []


def _assign(doc: dict, event: dict, at: datetime) -> None:
    """Record who must act, unless a later routing outcome is already recorded."""
    key = (at, event["event_id"])
    if doc.get("assigned_at") is not None and (doc["assigned_at"], doc["assigned_event"]) > key:
        return
    data = event["data"]
    doc["assigned_at"], doc["assigned_event"] = key
    doc["institution"] = {"code": data["institution"], "name": data["institution_name"]}
    if event["type"] == "application_routed":
        doc["unit"] = {"code": data["unit"], "name": data["unit_name"]}
        doc["referral"] = None
    else:
        doc["unit"] = None
        doc["referral"] = {"institution": data["institution"], "name": data["institution_name"],
                           "contact": dict(data.get("contact") or {})}


def public_view(doc: dict, category_names: dict[str, tuple[str, str]] | None = None) -> dict:
    """What the holder of both codes is shown: status, who acts, and the timeline."""
    status_tr, status_en = status_text(doc.get("status"))
    names = (category_names or {}).get(doc.get("category") or "")
    return {
        "tracking_code": display_tracking_code(doc["tracking_code"]),
        "status": doc.get("status"),
        "status_text_tr": status_tr,
        "status_text_en": status_en,
        "kind": doc.get("kind"),
        "category": doc.get("category"),
        "category_name_tr": names[0] if names else None,
        "category_name_en": names[1] if names else None,
        "institution": doc.get("institution"),
        "unit": doc.get("unit"),
        "referral": doc.get("referral"),
        "received_at": doc.get("received_at"),
        "updated_at": doc.get("updated_at"),
        "timeline": [
            {"at": entry["at"], "status": entry["status"], "text": entry["text_tr"],
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
