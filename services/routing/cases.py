"""Case work (design §4) as a pure state machine: each action checks the state, moves the case
and returns the event that happened, with a history entry saying who and when.

```
received ─routed─▶ assigned ─acknowledge─▶ acknowledged ─start─▶ in_progress ─resolve─▶ resolved
  (muhtar: waits at        ▲  transfer / return: from assigned, acknowledged, in_progress   │
   the ministry desk,      │  reject: resolved → in_progress                                │approve
   `forward`)              │                                                   (stays resolved)
                           └── reopen (citizen, within reopen_days) ◀── closed ◀── close ──┘
waiting_citizen: `wait` from acknowledged / in_progress; `resume` returns to the state it paused.
```

An action not allowed in the current state raises `InvalidTransition` (HTTP 409 with the current
state); bad parameters (an unknown unit, a muhtar request leaving the institution it was
forwarded to) raise `BadRequest` (HTTP 422 naming the field). Who may act is `access`'s business.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta

from services.common.events import make_event
from services.common.logs import scrub
from services.routing.directory import ROUTABLE_TYPES, Directory
from services.routing.domain import (
    Decision,
    Organisation,
    apply_decision,
    decide,
    decide_within,
    history_step,
    outcome_event,
)

OPEN_WORK = ("assigned", "acknowledged", "in_progress")
OPEN_STATES = ("received", *OPEN_WORK, "waiting_citizen", "resolved")
FINAL_STATES = ("closed", "referred", "answered", "merged")

# action → (states it may start from, event it emits)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("assigned",), "case_acknowledged"),
    "start": (("acknowledged",), "case_started"),
    "transfer": (OPEN_WORK, "case_transferred"),
    "return": (OPEN_WORK, "case_returned"),
    "wait": (("acknowledged", "in_progress"), "case_waiting"),
    "resume": (("waiting_citizen",), "case_resumed"),
    "resolve": (("in_progress",), "case_resolved"),
    "approve": (("resolved",), "case_approved"),
    "reject": (("resolved",), "case_rejected"),
    "close": (("resolved",), "case_closed"),
    "forward": (("received",), "application_routed"),
}
ACTIONS = tuple(TRANSITIONS)


class InvalidTransition(Exception):
    """The action is not allowed in the case's current state (HTTP 409)."""

    def __init__(self, action: str, state: str, why: str | None = None):
        self.action, self.state = action, state
        self.message = why or f"cannot {action} a case in state {state}"
        super().__init__(self.message)


class BadRequest(Exception):
    """A parameter of the action is wrong (HTTP 422); `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def act(case: dict, action: str, params: dict, by: str, org: Organisation,
        now: datetime) -> tuple[dict, list[dict]]:
    """Apply staff action `action` to `case`; returns the new case and its events."""
    if action not in TRANSITIONS:
        raise BadRequest("action", f"unknown action {action}")
    allowed, event_type = TRANSITIONS[action]
    # Free text travels in events and is shown to the citizen: mask TCKN-, phone- and
    # e-mail-shaped text a staff member may have typed into it.
    params = {k: scrub(v) if k in ("reason", "result") and isinstance(v, str) else v
              for k, v in params.items()}
    state = case["state"]
    if state not in allowed:
        raise InvalidTransition(action, state)
    new = copy.deepcopy(case)
    directory = org.directory
    extra: dict = {}
    if action == "acknowledge":
        new.update(state="acknowledged", read_at=now)
        new.setdefault("first_read_at", now)
    elif action == "start":
        new.update(state="in_progress", started_at=now)
    elif action == "transfer":
        to_unit = params.get("unit")
        if to_unit not in directory.units:
            raise BadRequest("unit", f"unknown unit {to_unit}")
        if to_unit == case.get("unit"):
            raise BadRequest("unit", f"the case is already in {to_unit}")
        target = directory.units[to_unit].institution
        if case.get("muhtar") and case.get("forwarded_to") and \
                target not in directory.family(case["forwarded_to"]):
            # Seed 003: a municipality finishes a muhtar request inside; the governorship and
            # its directorates keep it among themselves. Misrouted? Return it to the desk.
            raise BadRequest("unit", f"a muhtar request forwarded to {case['forwarded_to']} "
                                     f"stays inside it; return it to the ministry desk instead")
        extra["from_unit"] = case.get("unit")
        new.update(state="assigned", unit=to_unit, institution=target, read_at=None,
                   paused_from=None)
    elif action == "return":
        extra["from_unit"] = case.get("unit")
        desk = directory.ministry_desk() if case.get("muhtar") else None
        if desk:
            # back to the ministry desk: Pending again until an officer forwards it anew
            new.update(state="received", unit=desk, institution=directory.units[desk].institution,
                       muhtar_pending=True, forwarded_to=None, read_at=None)
        else:
            centre = directory.coordination_unit_for((case.get("location") or {}).get("province"))
            if centre == case.get("unit"):
                raise InvalidTransition(action, state,
                                        "the case is already at the coordination centre")
            new.update(state="assigned", unit=centre,
                       institution=directory.units[centre].institution, read_at=None)
    elif action == "wait":
        new.update(state="waiting_citizen", paused_from=state, waiting_since=now)
    elif action == "resume":
        new.update(state=case.get("paused_from") or "in_progress", paused_from=None,
                   waiting_since=None)
    elif action == "resolve":
        new.update(state="resolved", result=params["result"], photo=params.get("photo"),
                   resolved_at=now, resolved_by=by, approved=False, approved_by=None)
        extra.update(result=params["result"], photo=params.get("photo"))
    elif action == "approve":
        if case.get("approved"):
            raise InvalidTransition(action, state, "the resolution is already approved")
        new.update(approved=True, approved_by=by, approved_at=now)
    elif action == "reject":
        if case.get("approved"):
            raise InvalidTransition(action, state, "the resolution is already approved")
        new.update(state="in_progress", approved=False)
    elif action == "close":
        if not case.get("approved"):
            raise InvalidTransition(action, state,
                                    "a resolution is closed only after its approval")
        new.update(state="closed", closed_at=now, closed_by=by)
        extra["result"] = case.get("result")
    elif action == "forward":
        return forward(case, params, by, org, now)
    reason = params.get("reason")
    event = case_event(event_type, new, directory, by, now, reason=reason, **extra)
    new["history"] = [*case.get("history", []), history_step(
        now, new["state"], event_type, by, reason=reason, unit=new.get("unit"), **extra)]
    return new, [event]


def forward(case: dict, params: dict, by: str, org: Organisation,
            now: datetime) -> tuple[dict, list[dict]]:
    """A ministry officer forwards a pending muhtar request (seed 003, step 2).

    Without `institution` the suggestion the rules made at receipt is followed (decided anew, in
    case the directory changed meanwhile); with one, that governorship or municipality's own
    rules pick the unit (a governorship's mapping forwards to its provincial directorate).
    """
    if not case.get("muhtar_pending"):
        raise InvalidTransition("forward", case["state"],
                                "only a muhtar request waiting at the ministry desk is forwarded")
    directory = org.directory
    category = org.catalogue.get(case["category"])
    location = case.get("location") or {}
    institution = params.get("institution")
    if institution:
        inst = directory.institutions.get(institution)
        if inst is None or inst.type not in ROUTABLE_TYPES:
            raise BadRequest("institution", f"{institution} is not a governorship or "
                                            "municipality in the directory")
        decision = decide_within(inst.code, category, case["category"], location, directory,
                                 f"muhtar:forwarded-by:{by}→{inst.type}:{inst.code}", inst.type)
        forwarded_to = inst.code
    else:
        suggested = decide(category, case["category"], location, directory)
        decision = Decision(suggested.outcome, suggested.tier, suggested.institution,
                            suggested.unit, f"muhtar:forwarded-by:{by}→{suggested.rule}",
                            suggested.contact)
        forwarded_to = _forwarded_to(suggested, category, location, directory)
    new = copy.deepcopy(case)
    apply_decision(new, decision)
    new.update(muhtar_pending=False, forwarded_to=forwarded_to, routed_at=now)
    event = outcome_event(new, decision, directory, category,
                          case.get("correlation_id") or case["application_id"], now)
    new["history"] = [*case.get("history", []), history_step(
        now, new["state"], event["type"], by, rule=decision.rule, unit=new.get("unit"),
        reason=params.get("reason"), forwarded_to=forwarded_to)]
    return new, [event]


def _forwarded_to(decision: Decision, category, location: dict, directory: Directory) -> str:
    # The institution the desk forwarded to: for a governorship mapping that lands in one of
    # its directorates, the governorship itself (the request stays within its family).
    if category is not None and category.tier in ("governorship", "metropolitan", "district"):
        chosen = directory.institution_for(category.tier, location.get("province"),
                                           location.get("district"))
        if chosen:
            return chosen
    return decision.institution


def reopen(case: dict | None, event: dict, org: Organisation,
           now: datetime) -> tuple[dict | None, list[dict]]:
    """Fold the citizen's `reopen_requested`: back to the same unit within the category's
    reopen window, else refused — recorded in the history with the reason, and told as
    `case_reopen_refused` so the citizen's page stops showing the request as waiting."""
    if case is None:
        return None, []  # nothing to reopen: tracking only offers it for a concluded case
    asked_at = event["occurred_at"]
    reason = event["data"]["reason"]
    why_not = _reopen_refusal(case, asked_at, org)
    new = copy.deepcopy(case)
    if why_not:
        new["history"] = [*case.get("history", []), history_step(
            now, case["state"], "reopen_refused", "citizen", reason=why_not)]
        new["reopen_refusals"] = int(case.get("reopen_refusals", 0)) + 1
        return new, [case_event("case_reopen_refused", new, org.directory, "citizen", now,
                                reason=why_not)]
    directory = org.directory
    unit = case.get("unit")
    if unit not in directory.units:
        # answered at first contact (no unit yet), or its unit has since been removed: the
        # rules decide where it goes now
        decision = decide(org.catalogue.get(case["category"]), case["category"],
                          case.get("location") or {}, directory)
        if decision.outcome != "routed":
            unit = directory.coordination_unit_for((case.get("location") or {}).get("province"))
        else:
            unit = decision.unit
    new.update(state="assigned", unit=unit, institution=directory.units[unit].institution,
               approved=False, approved_by=None, read_at=None, reopened_at=now,
               reopen_count=int(case.get("reopen_count", 0)) + 1)
    out = case_event("case_reopened", new, directory, "citizen", now, reason=reason)
    new["history"] = [*case.get("history", []), history_step(
        now, "assigned", "case_reopened", "citizen", reason=reason, unit=unit)]
    return new, [out]


def _reopen_refusal(case: dict, asked_at: datetime, org: Organisation) -> str | None:
    state = case.get("state")
    if state not in ("closed", "answered"):
        return f"only a closed case can be reopened; this one is {state}"
    category = org.catalogue.get(case["category"])
    days = category.reopen_days if category else int(case.get("reopen_days") or 0)
    if days <= 0:
        return f"category {case['category']} cannot be reopened"
    closed_at = case.get("closed_at")
    if closed_at is None:
        return "the case has no closing time"
    if asked_at > closed_at + timedelta(days=days):
        return f"the reopen window of {days} days after closing has passed"
    return None


def escalate(case: dict | None, event: dict, now: datetime) -> tuple[dict | None, list[dict]]:
    """Fold sla's `case_escalated`: the case carries its escalation level (design §4)."""
    if case is None:
        return None, []
    data = event["data"]
    if data["to_level"] <= case.get("escalation_level", 0):
        return None, []  # steps may arrive out of order: the level only climbs
    new = copy.deepcopy(case)
    new["escalation_level"] = data["to_level"]
    new["history"] = [*case.get("history", []), history_step(
        now, case["state"], "case_escalated", "sla", level=data["to_level"],
        to_role=data["to_role"])]
    return new, []


def plan_deadlines(case: dict | None, event: dict) -> tuple[dict | None, list[dict]]:
    """Fold sla's `deadline_planned`: the staff case shows when its deadlines fall (working
    time), the latest plan wins; routing decides nothing by them."""
    if case is None:
        return None, []  # sla plans only routed cases: the case exists by then
    at = event["occurred_at"]
    known = (case.get("deadlines") or {}).get("planned_at")
    if known is not None and known > at:
        return None, []
    data = event["data"]
    new = copy.deepcopy(case)
    new["deadlines"] = {"read_due_at": data.get("read_due_at"),
                        "resolve_due_at": data.get("resolve_due_at"),
                        "clock": data["clock"], "planned_at": at}
    return new, []


def case_event(event_type: str, case: dict, directory: Directory, by: str | None,
               now: datetime, **extra) -> dict:
    """A `case_*` event: the state reached, who holds the case afterwards, who acted."""
    unit = directory.units.get(case.get("unit") or "")
    inst = directory.institutions.get(case.get("institution") or "")
    data = {
        "state": case["state"], "unit": case.get("unit"),
        "unit_name": unit.name_tr if unit else None,
        "institution": case.get("institution"),
        "institution_name": inst.name_tr if inst else None,
        "tracking_code": case.get("tracking_code"), "by": by,
    }
    data.update({k: v for k, v in extra.items() if v is not None})
    return make_event(event_type, case["application_id"], data,
                      correlation_id=case.get("correlation_id") or case["application_id"],
                      occurred_at=now)
