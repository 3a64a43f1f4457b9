"""Routing's staff API as the console calls it: server-side, over HTTP, with a staff token
minted for the signed-in user and valid `domain.TOKEN_MINUTES` minutes: the inbox, a case, the
case actions (`POST /api/v1/cases/<id>/<action>`) and the directory's units (for transfers).

Routing checks the token's role and unit scope itself, exactly as for any other caller: the
console never widens what a staff member may see. When routing does not answer (down, slow, a
5xx) the call raises `RoutingUnavailable`; a refusal (401, 403, 404, 409, 422) raises
`RoutingRefused` with routing's own message and the field it names.
"""
from __future__ import annotations

from urllib.parse import quote

from services.console.clients import ServiceRefused, ServiceUnavailable, StaffApi

# routing's refusals and silences are the console's general ones under routing's names
RoutingUnavailable = ServiceUnavailable
RoutingRefused = ServiceRefused


class RoutingClient(StaffApi):
    """Calls routing's `/api/v1/cases…` as the signed-in staff member."""

    def inbox(self, session: dict, page: int = 1, per_page: int = 50) -> dict:
        """One page of the caller's inbox, oldest first (routing's `GET /api/v1/cases`)."""
        return self.get(session, "/api/v1/cases", {"page": page, "per_page": per_page})

    def case(self, session: dict, application_id: str) -> dict:
        """One case with its history (routing's `GET /api/v1/cases/<id>`)."""
        return self.get(session, f"/api/v1/cases/{quote(application_id, safe='')}")

    def resolved(self, session: dict, approved: bool, per_page: int = 200) -> dict:
        """Resolved cases of the caller's scope, oldest first, approved or not yet: routing's
        inbox in state `resolved` (which an approval leaves unchanged), filtered here."""
        answer = self.get(session, "/api/v1/cases",
                           {"state": "resolved", "page": 1, "per_page": per_page})
        items = [item for item in answer["items"] if bool(item.get("approved")) == approved]
        return {"items": items, "total": len(items),
                "more": answer["total"] > len(answer["items"])}

    def act(self, session: dict, application_id: str, action: str, fields: dict) -> dict:
        """Take `action` on the case (routing's `POST /api/v1/cases/<id>/<action>`); the case
        as it is afterwards."""
        return self._call(session, "POST", f"/api/v1/cases/{quote(application_id, safe='')}/"
                                           f"{quote(action, safe='')}", body=fields)

    def units(self, session: dict) -> list[dict]:
        """Every unit of the directory with its institution's name, grouped by institution in
        the directory's order (routing's `GET /api/v1/directory/tree`)."""
        tree = self.get(session, "/api/v1/directory/tree")
        found: list[dict] = []

        def walk(node: dict) -> None:
            found.extend(dict(unit, institution_name=node.get("name_tr"))
                         for unit in node.get("units") or [])
            for child in node.get("children") or []:
                walk(child)

        for root in tree.get("institutions") or []:
            walk(root)
        return found

    # the administrators' pages (`console.admin`): the catalogue and the directory

    def categories(self, session: dict) -> dict:
        """Every category of the catalogue (`GET /api/v1/categories`)."""
        return self.get(session, "/api/v1/categories")

    def create_category(self, session: dict, category: dict) -> dict:
        """Add a category (`POST /api/v1/categories`)."""
        return self._call(session, "POST", "/api/v1/categories", body=category)

    def update_category(self, session: dict, code: str, change: dict) -> dict:
        """Change a category's fields (`PATCH /api/v1/categories/<code>`)."""
        return self._call(session, "PATCH", f"/api/v1/categories/{quote(code, safe='')}",
                          body=change)

    def unit(self, session: dict, code: str) -> dict:
        """A unit with its people and escalation ladder (`GET /api/v1/directory/units/<code>`)."""
        return self.get(session, f"/api/v1/directory/units/{quote(code, safe='')}")

    def update_unit(self, session: dict, code: str, change: dict) -> dict:
        """Change a unit's names or people (`PATCH /api/v1/directory/units/<code>`)."""
        return self._call(session, "PATCH", f"/api/v1/directory/units/{quote(code, safe='')}",
                          body=change)

    def staff(self, session: dict) -> dict:
        """The staff records the caller may read (`GET /api/v1/directory/staff`)."""
        return self.get(session, "/api/v1/directory/staff")

    def create_staff(self, session: dict, person: dict) -> dict:
        """Add a staff member (`POST /api/v1/directory/staff`)."""
        return self._call(session, "POST", "/api/v1/directory/staff", body=person)

    def coordination_queue(self, session: dict, per_page: int = 200) -> dict:
        """The cases waiting at the coordination centres in the caller's scope, oldest first:
        what no rule matched (routing's `GET /api/v1/cases/coordination`)."""
        return self.get(session, "/api/v1/cases/coordination", {"page": 1, "per_page": per_page})

    def muhtar_pending(self, session: dict, per_page: int = 200) -> dict:
        """The muhtar requests waiting at the ministry desk in the caller's scope, oldest first
        (routing's inbox in state `received`, which only they are ever in)."""
        answer = self.get(session, "/api/v1/cases",
                          {"state": "received", "page": 1, "per_page": per_page})
        items = [item for item in answer["items"] if item.get("muhtar")]
        return {"items": items, "total": len(items),
                "more": answer["total"] > len(answer["items"])}

    def institutions(self, session: dict) -> list[dict]:
        """Every institution of the directory (`code`, `type`, `name_tr`), in the directory's
        order (routing's `GET /api/v1/directory/tree`)."""
        tree = self.get(session, "/api/v1/directory/tree")
        found: list[dict] = []

        def walk(node: dict) -> None:
            found.append({key: node.get(key) for key in ("code", "type", "name_tr")})
            for child in node.get("children") or []:
                walk(child)

        for root in tree.get("institutions") or []:
            walk(root)
        return found

    # the administrators' routing rules page (`console.admin`, `yonetim/kurallar`)

    def institution(self, session: dict, code: str) -> dict:
        """An institution with its units, its category → unit mappings (`category_units`) and
        neighbourhood overrides (`GET /api/v1/directory/institutions/<code>`)."""
        return self.get(session, f"/api/v1/directory/institutions/{quote(code, safe='')}")

    def put_mapping(self, session: dict, code: str, category: str, unit: str) -> dict:
        """The institution's rule: `category` goes to `unit`
        (`PUT /api/v1/directory/institutions/<code>/mappings/<category>`)."""
        return self._call(session, "PUT", f"/api/v1/directory/institutions/"
                                          f"{quote(code, safe='')}/mappings/"
                                          f"{quote(category, safe='')}", body={"unit": unit})

    def delete_mapping(self, session: dict, code: str, category: str) -> None:
        """Drop the institution's rule for `category` (the coordination unit gets it then)."""
        self._call(session, "DELETE", f"/api/v1/directory/institutions/{quote(code, safe='')}/"
                                      f"mappings/{quote(category, safe='')}")

    def put_override(self, session: dict, code: str, override: dict) -> dict:
        """A neighbourhood override: district, neighbourhood, category → unit
        (`PUT /api/v1/directory/institutions/<code>/overrides`)."""
        return self._call(session, "PUT", f"/api/v1/directory/institutions/"
                                          f"{quote(code, safe='')}/overrides", body=override)

    def delete_override(self, session: dict, code: str, key: dict) -> None:
        """Remove the override of (district, neighbourhood, category)
        (`DELETE /api/v1/directory/institutions/<code>/overrides?…`)."""
        self._call(session, "DELETE", f"/api/v1/directory/institutions/"
                                      f"{quote(code, safe='')}/overrides", params=key)
