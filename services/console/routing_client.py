"""Routing's staff API as the console calls it: server-side, over HTTP, with a staff token
minted for the signed-in user and valid `domain.TOKEN_MINUTES` minutes: the inbox, a case, the
case actions (`POST /api/v1/cases/<id>/<action>`) and the directory's units (for transfers).

Routing checks the token's role and unit scope itself, exactly as for any other caller: the
console never widens what a staff member may see. When routing does not answer (down, slow, a
5xx) the call raises `RoutingUnavailable`; a refusal (401, 403, 404, 409, 422) raises
`RoutingRefused` with routing's own message and the field it names.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import requests

from services.common.auth import mint_token
from services.console import domain

TIMEOUT_SECONDS = 5


class RoutingUnavailable(Exception):
    """Routing did not answer usefully; the page says so (503)."""


class RoutingRefused(Exception):
    """Routing refused the call; `status` and `message` are its own."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def named_field(errors: object) -> str | None:
    """The first field routing's `errors` names (`{"json": {"result": [...]}}` → `result`)."""
    if not isinstance(errors, dict):
        return None
    for key, value in errors.items():
        if key in ("json", "form", "query") and isinstance(value, dict):
            return named_field(value)
        return str(key)
    return None


class RoutingClient:
    """Calls routing's `/api/v1/cases…` as the signed-in staff member."""

    def __init__(self, base_url: str, secret: str, timeout: float = TIMEOUT_SECONDS):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout = timeout
        self.http = requests.Session()

    def token_for(self, session: dict) -> str:
        """A short-lived staff token carrying the session's user, role, unit, institution."""
        return mint_token(self.secret, session["user"], session["role"], session.get("unit"),
                          session.get("institution"),
                          ttl=timedelta(minutes=domain.TOKEN_MINUTES))

    def _get(self, session: dict, path: str, params: dict | None = None) -> dict:
        return self._call(session, "GET", path, params=params)

    def _call(self, session: dict, method: str, path: str, params: dict | None = None,
              body: dict | None = None) -> dict:
        try:
            answer = self.http.request(method, f"{self.base_url}{path}", params=params,
                                       json=body, timeout=self.timeout, headers={
                                           "Authorization": f"Bearer {self.token_for(session)}",
                                           "Accept": "application/json"})
        except requests.RequestException as exc:
            raise RoutingUnavailable(type(exc).__name__) from None
        if answer.status_code >= 500:
            raise RoutingUnavailable(f"status {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise RoutingUnavailable("not JSON") from None
        if answer.status_code != 200:
            raise RoutingRefused(answer.status_code, str(body.get("message") or "refused"),
                                 named_field(body.get("errors")))
        return body

    def inbox(self, session: dict, page: int = 1, per_page: int = 50) -> dict:
        """One page of the caller's inbox, oldest first (routing's `GET /api/v1/cases`)."""
        return self._get(session, "/api/v1/cases", {"page": page, "per_page": per_page})

    def case(self, session: dict, application_id: str) -> dict:
        """One case with its history (routing's `GET /api/v1/cases/<id>`)."""
        return self._get(session, f"/api/v1/cases/{quote(application_id, safe='')}")

    def resolved(self, session: dict, approved: bool, per_page: int = 200) -> dict:
        """Resolved cases of the caller's scope, oldest first, approved or not yet: routing's
        inbox in state `resolved` (which an approval leaves unchanged), filtered here."""
        answer = self._get(session, "/api/v1/cases",
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
        tree = self._get(session, "/api/v1/directory/tree")
        found: list[dict] = []

        def walk(node: dict) -> None:
            found.extend(dict(unit, institution_name=node.get("name_tr"))
                         for unit in node.get("units") or [])
            for child in node.get("children") or []:
                walk(child)

        for root in tree.get("institutions") or []:
            walk(root)
        return found

    def close(self) -> None:
        self.http.close()
