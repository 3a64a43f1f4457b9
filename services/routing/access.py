"""Who may do what: staff scopes over cases and over the directory. Pure (no Flask, no pymongo).

A staff token carries `sub` (staff code), `role`, `unit` and `inst`. Scopes combine the token's
claims with the positions the directory gives the staff code, so the primary and the backup
expert of a unit both reach its cases without a unit claim, and a unit's supervisor and director
reach the units they supervise.

| role | acts on |
|---|---|
| expert, supervisor, director | cases held by their units |
| deputy_mayor, mayor, governor | cases of their institution and the institutions under it |
| ministry_officer | cases waiting at their desk (forward) |
| coordinator, admin | every case; with an `inst` claim, that institution and those under it |

Directory changes need role admin or coordinator: without `inst` on everything, with `inst` only
on that institution's own records (its units, staff, category → unit mappings and neighbourhood
overrides). Creating or removing institutions, the catalogue and reloading the files need a
token without `inst`.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.common import scope
from services.routing.directory import Directory

UNIT_ROLES = ("expert", "supervisor", "director")
INSTITUTION_ROLES = ("deputy_mayor", "mayor", "governor")
CENTRAL_ROLES = scope.CENTRAL_ROLES
DIRECTORY_ROLES = ("admin", "coordinator")

WORK = frozenset({"acknowledge", "start", "transfer", "return", "wait", "resume", "resolve"})
APPROVAL = frozenset({"approve", "reject"})
ACTIONS_OF_ROLE: dict[str, frozenset[str]] = {
    "expert": WORK,
    "supervisor": WORK | APPROVAL,
    "director": WORK | APPROVAL,
    "deputy_mayor": APPROVAL,
    "mayor": APPROVAL,
    "governor": APPROVAL,
    "ministry_officer": frozenset({"forward"}),
    # the coordination centre dispatches, works its own cases and closes; approval stays with
    # the unit's hierarchy (seed 002: "en üst amirden onay çıktıktan sonra")
    "coordinator": WORK | {"close", "forward"},
    "admin": WORK | {"close", "forward"},
}


@dataclass(frozen=True)
class Actor:
    """The staff member acting, from the staff token."""

    user: str
    role: str
    unit: str | None = None
    institution: str | None = None


class Denied(Exception):
    """The actor may not do this (HTTP 403); `field` names what was wrong."""

    def __init__(self, message: str, field: str = "role"):
        super().__init__(message)
        self.message = message
        self.field = field


def units_in_charge(actor: Actor, directory: Directory) -> set[str]:
    """The units whose cases `actor` works: the token's unit and the directory's positions."""
    units = {actor.unit} if actor.unit else set()
    for kind, code in directory.positions.get(actor.user, ()):
        if kind in UNIT_ROLES:
            units.add(code)
    return units


def institutions_in_charge(actor: Actor, directory: Directory) -> set[str]:
    """The institutions `actor` answers for (and those under them); empty for unit staff."""
    roots = {actor.institution} if actor.institution else set()
    if actor.role in INSTITUTION_ROLES:
        roots |= {code for kind, code in directory.positions.get(actor.user, ())
                  if kind in ("head", "deputy")}
    found: set[str] = set()
    for root in roots:
        found |= directory.family(root)
    return found


def sees_everything(actor: Actor) -> bool:
    """A coordinator or admin without an institution claim: the whole system (the one rule
    intake and notify also use to skip asking routing, `services.common.scope`)."""
    return scope.sees_everything(actor.role, actor.institution)


def in_scope(actor: Actor, case: dict, directory: Directory) -> bool:
    """Whether `case` is within what `actor` may act on (role permitting)."""
    if sees_everything(actor):
        return True
    if actor.role in UNIT_ROLES:
        return case.get("unit") in units_in_charge(actor, directory)
    if actor.role == "ministry_officer":
        return (case.get("unit") in units_in_charge(actor, directory)
                or case.get("institution") in institutions_in_charge(actor, directory))
    return case.get("institution") in institutions_in_charge(actor, directory)


def read_verdict(claims: dict, case: dict | None, directory: Directory) -> dict:
    """Whether the staff member of `claims` ({user, role, unit, institution}, as a staff token
    says) may read the application `case` belongs to: `{allowed, unit, institution}`, for
    intake's and notify's staff reads (routing's `may_read` RPC).

    The rule is `in_scope`, as for routing's own case view. An application routing holds no
    case for (unknown, or not routed yet) is allowed only to those who see everything: no one
    else can have been given it, and a unit's staff learn of a case from routing's inbox.
    Claims that are not a staff token's (an unknown role, no user) are refused.
    """
    role, user = claims.get("role"), claims.get("user")
    if role not in ACTIONS_OF_ROLE or not isinstance(user, str) or not user:
        return {"allowed": False, "unit": None, "institution": None}
    actor = Actor(user, role, claims.get("unit") or None, claims.get("institution") or None)
    if case is None:
        return {"allowed": sees_everything(actor), "unit": None, "institution": None}
    return {"allowed": in_scope(actor, case, directory), "unit": case.get("unit"),
            "institution": case.get("institution")}


def check_case_action(actor: Actor, action: str, case: dict, directory: Directory) -> None:
    """Raise `Denied` unless `actor` may take `action` on `case`."""
    if action not in ACTIONS_OF_ROLE.get(actor.role, frozenset()):
        raise Denied(f"role {actor.role} may not {action} a case")
    if not in_scope(actor, case, directory):
        raise Denied(f"case {case['application_id']} is held by {case.get('unit')}, "
                     f"outside what {actor.user} may act on", "unit")


def inbox_scope(actor: Actor, directory: Directory, unit: str | None,
                institution: str | None) -> tuple[list[str] | None, list[str] | None]:
    """(units, institutions) an inbox query is limited to; `None` means no limit.

    Raises `Denied` when the actor asks for a unit or institution outside their scope.
    """
    if sees_everything(actor):
        return ([unit] if unit else None), ([institution] if institution else None)
    units = units_in_charge(actor, directory) if actor.role in (*UNIT_ROLES, "ministry_officer") \
        else set()
    institutions = institutions_in_charge(actor, directory) \
        if actor.role not in UNIT_ROLES else set()
    if unit:
        unit_inst = directory.units[unit].institution if unit in directory.units else None
        if unit not in units and unit_inst not in institutions:
            raise Denied(f"{actor.user} may not see the inbox of {unit}", "unit")
        return [unit], None
    if institution:
        if institution not in institutions:
            raise Denied(f"{actor.user} may not see the cases of {institution}", "institution")
        return None, [institution]
    if not units and not institutions:
        raise Denied(f"{actor.user} is in charge of no unit", "unit")
    return (sorted(units) or None), (sorted(institutions) or None)


def inbox_holders(units: list[str] | None, institutions: list[str] | None,
                  directory: Directory) -> list[str]:
    """The units whose inboxes hold the cases an inbox query in this scope can show."""
    if units is None and institutions is None:
        return sorted(directory.units)
    wanted = set(institutions or ())
    return sorted(set(units or ()) | {code for code, unit in directory.units.items()
                                      if unit.institution in wanted})


def check_directory_change(actor: Actor, institution: str | None) -> None:
    """Raise `Denied` unless `actor` may change records of `institution` (None: system-wide)."""
    if actor.role not in DIRECTORY_ROLES:
        raise Denied(f"role {actor.role} may not change the directory")
    if actor.institution is None:
        return
    if institution is None:
        raise Denied("only a system-wide admin (a token without an institution) may do this",
                     "inst")
    if institution != actor.institution:
        raise Denied(f"an admin of {actor.institution} may only change {actor.institution}'s "
                     f"own records, not {institution}'s", "inst")


def coordination_units(actor: Actor, directory: Directory) -> list[str]:
    """The coordination units whose queue `actor` sees (where what no rule matched lands:
    every institution's coordination unit but the ministry desk's): all of them for a
    system-wide coordinator or admin, else those of the institutions in its charge.

    Raises `Denied` for a role other than coordinator or admin (the role is checked first).
    """
    if actor.role not in CENTRAL_ROLES:
        raise Denied(f"role {actor.role} has no coordination queue")
    wanted = None if sees_everything(actor) else institutions_in_charge(actor, directory)
    return sorted(inst.coordination_unit for inst in directory.institutions.values()
                  if inst.coordination_unit and inst.type != "ministry_desk"
                  and inst.coordination_unit in directory.units
                  and (wanted is None or inst.code in wanted))
