"""Routing's bus entrypoints: route each received application, reopen on the citizen's request,
carry the escalation level sla decides, and answer over RPC who stands on a unit's ladder (sla,
notify) and whether a staff member may read an application (intake, notify: `may_read`). Every
handler folds into the case exactly once. The relay (in the parts, see `bootstrap`) publishes
the case events and the `category_saved` events of admin catalogue changes."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.bootstrap import Composed
from services.common.events import utcnow
from services.common.handlers import event_handler
from services.routing import access, bootstrap, cases, domain
from services.routing.bootstrap import RoutingParts


class RoutingService:
    name = "routing"

    # store, organisation cache and relay, built once per container and shared with the
    # Flask side of the same process
    parts: RoutingParts = Composed(bootstrap.build)

    @event_handler("intake", "application_received")
    def handle_application_received(self, event: dict) -> None:
        org = self.parts.organisation.current()
        self.parts.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: domain.open_case(current, event, org.catalogue, org.directory,
                                             utcnow()),
        )

    @event_handler("tracking", "reopen_requested")
    def handle_reopen_requested(self, event: dict) -> None:
        org = self.parts.organisation.current()
        self.parts.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: cases.reopen(current, event, org, utcnow()),
        )

    @event_handler("sla", "case_escalated")
    def handle_case_escalated(self, event: dict) -> None:
        self.parts.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: cases.escalate(current, event, utcnow()),
        )

    @event_handler("sla", "deadline_planned")
    def handle_deadline_planned(self, event: dict) -> None:
        """Keep the case's deadlines as sla planned them, for the staff case view."""
        self.parts.store.apply_to_case(
            event["application_id"], event["event_id"],
            lambda current: cases.plan_deadlines(current, event))

    @rpc
    def escalation_ladder(self, unit: str) -> list[str | None]:
        """Who stands at each level (0–4) of `unit`'s ladder: one staff code per level, the
        first the directory names, or None (sla names the person a case escalates to)."""
        try:
            steps = self.parts.organisation.current().directory.ladder(unit)
        except KeyError:
            return [None] * 5
        return [step["who"][0][1] if step["who"] else None for step in steps]

    @rpc
    def ladder_staff(self, unit: str, level: int) -> list[dict]:
        """Everyone at `level` of `unit`'s ladder, `[{code, position}]`, the first to notify
        first (level 0: the primary and the backup expert); notify's staff alerts."""
        try:
            steps = self.parts.organisation.current().directory.ladder(unit)
        except KeyError:
            return []
        if not isinstance(level, int) or not 0 <= level < len(steps):
            return []
        return [{"code": code, "position": position} for position, code in steps[level]["who"]]

    @rpc
    def institution_heads(self) -> list[dict]:
        """`[{institution, code}]`: the head of each institution the directory names one for
        (mayor, governor): the top of every ladder, for notify's morning digest."""
        directory = self.parts.organisation.current().directory
        return [{"institution": code, "code": inst.head["staff"]}
                for code, inst in sorted(directory.institutions.items())
                if (inst.head or {}).get("staff")]

    @rpc
    def institution_family(self, institution: str) -> list[str]:
        """`institution` and every institution below it (reporting scopes an institution's
        figures by it, as routing's access rules scope cases)."""
        return sorted(self.parts.organisation.current().directory.family(institution))

    @rpc
    def institution_ancestry(self, institution: str) -> list[str]:
        """The institution and those above it (sla scopes its lists by it, as routing's
        access rules scope cases: an institution role sees the institutions under it)."""
        return self.parts.organisation.current().directory.ancestry(institution)

    @rpc
    def may_read(self, application_id: str, actor: dict) -> dict:
        """Whether `actor` ({user, role, unit, institution}: a staff token's claims) may read
        the application: `{allowed, unit, institution}` (the holding unit and institution, None
        for an application routing holds no case for). Intake's application and attachment
        reads and notify's delivery log ask it, so they apply the same scope as routing's own
        case view (`access.read_verdict`: `in_scope`; an unknown application only for those who
        see everything)."""
        case = self.parts.store.get_case(application_id) if isinstance(application_id, str) \
            else None
        return access.read_verdict(actor if isinstance(actor, dict) else {}, case,
                                   self.parts.organisation.current().directory)

    @rpc
    def staff_contact(self, code: str) -> dict | None:
        """Where to reach a staff member (notify's staff alerts): phone and e-mail from the
        directory, or None for an unknown code. Staff data, never a citizen's."""
        record = self.parts.organisation.current().directory.staff.get(code)
        if record is None:
            return None
        return {"code": code, "phone": record.get("phone"), "email": record.get("email")}


SERVICE = RoutingService
