"""Whether a staff member may read an application's records, as routing decides (issue 13).

Intake (an application, its attachments) and notify (its delivery log) do not know which unit
holds an application; routing does. `ReadScope.check` asks routing's `may_read` RPC, which
applies the same `in_scope` rule as routing's own case reads, for every staff member whose
scope is narrower than the whole system; the coordination centre and system-wide
administrators (`sees_everything`: a coordinator or admin token without `inst`) are not asked.
An institution's coordinator or administrator and the mayor's office are: routing scopes them
to their institution and those under it.

Pure: no Flask, no nameko. The caller gives the `ask` callable (an RPC pool's call in the
composition roots; the routing parts' own answer in tests) and turns the outcome into HTTP.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# The roles whose token without an institution reaches every case (routing's `access`).
CENTRAL_ROLES = ("coordinator", "admin")


def sees_everything(role: str, institution: str | None) -> bool:
    """A coordinator or admin without an institution claim: the whole system."""
    return role in CENTRAL_ROLES and not institution


class StaffClaims(Protocol):
    """What a staff token says (`services.common.auth.Staff`)."""

    user: str
    role: str
    unit: str | None
    institution: str | None


@dataclass(frozen=True)
class Verdict:
    """Routing's answer: may the staff member read the application, and who holds it."""

    allowed: bool
    unit: str | None = None
    institution: str | None = None


class ScopeUnavailable(Exception):
    """Routing could not say (down, slow, broken): the read is answered 503, never allowed."""


class ReadScope:
    """Asks routing whether staff may read an application (`ask(application_id, actor)`)."""

    def __init__(self, ask: Callable[[str, dict], Any]):
        self.ask = ask

    def check(self, application_id: str, staff: StaffClaims) -> Verdict | None:
        """None when `staff` sees everything (routing not asked), else routing's verdict.

        Raises `ScopeUnavailable` when routing does not answer or answers something else than
        a verdict: without an answer nothing is shown.
        """
        if sees_everything(staff.role, staff.institution):
            return None
        actor = {"user": staff.user, "role": staff.role, "unit": staff.unit,
                 "institution": staff.institution}
        try:
            answer = self.ask(application_id, actor)
        except Exception as exc:
            raise ScopeUnavailable(f"routing did not answer: {type(exc).__name__}") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("allowed"), bool):
            raise ScopeUnavailable("routing's answer is not a verdict")
        return Verdict(answer["allowed"], answer.get("unit"), answer.get("institution"))
