"""Routing's rules: which institution and unit must act on an application, and the case it opens.

Precedence (documented in docs/architecture.md): an unknown category goes to the coordination
centre; tier `outside` is referred to the category's institution; tier `named` goes to that
institution; tier `coordination` to the coordination centre; otherwise the tier
(metropolitan / district / governorship) and the location pick the institution. Inside the
institution a neighbourhood override beats the institution's category → unit mapping, and an
unmapped category lands in that institution's coordination unit — never nowhere. Every decision
names the rule that matched.

Two kinds of application do not go straight to a unit:

- an information request answered at first contact (`answered`) is opened as `answered` and
  closed at once (`case_closed`, rule `first-contact`);
- a muhtar request (channel or caller type `muhtar`, seed 003) waits at the ministry desk
  (state `received`: the muhtar sees it Pending) with the decision the rules suggest; a ministry
  officer forwards it (`cases.forward`), to the suggested institution or another one.

Pure: no nameko, no pymongo. Functions return the new case and the events that happened.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.catalogue import Category
from services.common.events import make_event
from services.routing.directory import Directory

DEFAULT_READ_HOURS = 24.0
DEFAULT_RESOLVE_HOURS = 72.0
DEFAULT_REOPEN_DAYS = 15


@dataclass(frozen=True)
class Organisation:
    """One consistent view of the directory and the catalogue, and the version it was read at."""

    directory: Directory
    catalogue: dict[str, Category]
    version: int = 0


@dataclass(frozen=True)
class Decision:
    outcome: str  # "routed" or "referred"
    tier: str
    institution: str
    unit: str | None
    rule: str
    contact: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "tier": self.tier, "institution": self.institution,
                "unit": self.unit, "rule": self.rule, "contact": dict(self.contact)}


def decide(category: Category | None, category_code: str, location: dict,
           directory: Directory) -> Decision:
    """The routing decision for an application: pure dictionary lookups."""
    province, district = location.get("province"), location.get("district")

    if category is None:
        return _coordination(directory, province, f"unknown-category:{category_code}")
    if category.tier == "outside":
        inst = directory.institutions.get(category.institution or "")
        if inst is None:
            return _coordination(directory, province,
                                 f"outside-institution-missing:{category.code}")
        return Decision("referred", "outside", inst.code, None,
                        f"category:{category.code}→outside:{inst.code}", dict(inst.contact))
    if category.tier == "coordination":
        return _coordination(directory, province, f"category:{category.code}→coordination")
    if category.tier == "named":
        institution = category.institution
    else:
        institution = directory.institution_for(category.tier, province, district)
    if institution is None or institution not in directory.institutions:
        return _coordination(directory, province,
                             f"no-{category.tier}-institution:{province}/{district}",
                             category.tier)
    rule_head = f"category:{category.code}→{category.tier}:{institution}"
    return decide_within(institution, category, category_code, location, directory, rule_head,
                         category.tier)


def decide_within(institution: str, category: Category | None, category_code: str,
                  location: dict, directory: Directory, rule_head: str,
                  tier: str) -> Decision:
    """The unit inside `institution`: override, else its own mapping, else its coordination."""
    inst = directory.institutions[institution]
    district, neighbourhood = location.get("district"), location.get("neighbourhood")
    unit = directory.override(inst.code, district, neighbourhood, category_code)
    if unit and unit in directory.units:
        return Decision("routed", tier, directory.units[unit].institution, unit,
                        f"{rule_head}|override:{district}/{neighbourhood}")
    unit = inst.category_units.get(category_code)
    if unit and unit in directory.units:
        # A governorship maps categories onto units of its provincial directorates.
        return Decision("routed", tier, directory.units[unit].institution, unit,
                        f"{rule_head}|mapping:{unit}")
    if inst.coordination_unit:
        return Decision("routed", tier, inst.code, inst.coordination_unit,
                        f"{rule_head}|unmapped→{inst.coordination_unit}")
    return _coordination(directory, location.get("province"), f"{rule_head}|unmapped", tier)


def _coordination(directory: Directory, province: str | None, rule: str,
                  tier: str = "coordination") -> Decision:
    unit = directory.coordination_unit_for(province)
    return Decision("routed", tier, directory.units[unit].institution, unit, rule)


def is_muhtar_request(data: dict) -> bool:
    """A request a muhtar brought (seed 003): through the muhtar channel or as a muhtar."""
    return data.get("channel") == "muhtar" or data.get("caller_type") == "muhtar"


def sla_of(category: Category | None) -> tuple[float, float]:
    """(read hours, resolve hours) of a category; the defaults for an unknown one."""
    if category is None:
        return DEFAULT_READ_HOURS, DEFAULT_RESOLVE_HOURS
    return category.read_hours, category.resolve_hours


def outcome_event(case: dict, decision: Decision, directory: Directory, category: Category | None,
                  correlation_id: str, now: datetime) -> dict:
    """`application_routed` or `application_referred` for a decision about `case`."""
    inst = directory.institutions[decision.institution]
    if decision.outcome == "referred":
        return make_event("application_referred", case["application_id"], {
            "tracking_code": case["tracking_code"], "category": case["category"],
            "institution": inst.code, "institution_name": inst.name_tr,
            "contact": {k: v for k, v in decision.contact.items() if v is not None},
            "rule": decision.rule}, correlation_id=correlation_id, occurred_at=now)
    unit = directory.units[decision.unit]
    read_hours, resolve_hours = sla_of(category)
    return make_event("application_routed", case["application_id"], {
        "tracking_code": case["tracking_code"], "category": case["category"],
        "tier": decision.tier, "institution": inst.code,
        "institution_name": inst.name_tr, "unit": unit.code, "unit_name": unit.name_tr,
        "rule": decision.rule, "priority": case.get("priority", "normal"),
        "category_name": category.name_tr if category else None,
        "read_hours": read_hours, "resolve_hours": resolve_hours,
    }, correlation_id=correlation_id, occurred_at=now)


def apply_decision(case: dict, decision: Decision) -> None:
    """Put `case` where `decision` says: referred, or assigned to the decided unit."""
    case.update(tier=decision.tier, institution=decision.institution, unit=decision.unit,
                rule=decision.rule, state="referred" if decision.outcome == "referred"
                else "assigned", read_at=None)
    if decision.outcome == "referred":
        case["referral"] = {"institution": decision.institution,
                            "contact": dict(decision.contact)}


def open_case(
    current: dict | None,
    received: dict,
    catalogue: dict[str, Category],
    directory: Directory,
    now: datetime,
) -> tuple[dict | None, list[dict]]:
    """Fold `application_received` into a new case: decide, record the rule, emit the outcome."""
    if current is not None and current.get("state") not in (None, "received"):
        return None, []  # already routed (a replay with a new event id, for instance)
    if current is not None and current.get("muhtar_pending"):
        return None, []  # already waiting at the ministry desk
    data = received["data"]
    category = catalogue.get(data["category"])
    case = {
        "application_id": received["application_id"],
        "tracking_code": data["tracking_code"],
        "category": data["category"],
        "kind": data["kind"],
        "channel": data["channel"],
        "caller_type": data.get("caller_type", "citizen"),
        "priority": data.get("priority", "normal"),
        "location": data["location"],
        "muhtar": is_muhtar_request(data),
        "escalation_level": 0,
        "approved": False,
        "reopen_days": category.reopen_days if category else DEFAULT_REOPEN_DAYS,
        "received_at": data["received_at"],
        "routed_at": now,
        "correlation_id": received["correlation_id"],
    }
    correlation = received["correlation_id"]
    if data.get("answered"):
        # Answered at first contact (seed 004): nothing to route, the answer is the result.
        coordination = directory.coordination_unit_for(data["location"].get("province"))
        case.update(state="answered", tier="first_contact", unit=None,
                    institution=directory.units[coordination].institution,
                    rule="first-contact", result=data.get("answer"), closed_at=now)
        event = make_event("case_closed", received["application_id"], {
            "state": "answered", "result": data.get("answer"),
            "tracking_code": data["tracking_code"], "institution": case["institution"],
            "institution_name": directory.institutions[case["institution"]].name_tr,
        }, correlation_id=correlation, occurred_at=now)
        case["history"] = [history_step(now, "answered", "case_closed", rule="first-contact")]
        return case, [event]
    decision = decide(category, data["category"], data["location"], directory)
    desk = directory.ministry_desk() if case["muhtar"] else None
    if desk is not None:
        # Seed 003: the ministry desk receives muhtar requests first (Pending) and forwards them.
        rule = f"muhtar→ministry-desk:{desk}"
        case.update(state="received", tier="ministry_desk", unit=desk,
                    institution=directory.units[desk].institution, rule=rule,
                    muhtar_pending=True, suggestion=decision.to_dict(), routed_at=None)
        case["history"] = [history_step(now, "received", "muhtar_pending", rule=rule,
                                 suggestion=decision.rule)]
        return case, []
    apply_decision(case, decision)
    event = outcome_event(case, decision, directory, category, correlation, now)
    case["history"] = [history_step(now, case["state"], event["type"], rule=decision.rule)]
    return case, [event]


def history_step(at: datetime, state: str, event: str, by: str | None = None, **details) -> dict:
    """One history entry: what happened, the state it left the case in, who and when."""
    entry = {"at": at, "state": state, "event": event, "by": by}
    entry.update({k: v for k, v in details.items() if v is not None})
    return entry

