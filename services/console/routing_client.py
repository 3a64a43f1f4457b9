"""Routing's staff API as the console calls it: server-side, over HTTP, with a staff token
minted for the signed-in user and valid `domain.TOKEN_MINUTES` minutes.

Routing checks the token's role and unit scope itself, exactly as for any other caller: the
console never widens what a staff member may see. When routing does not answer (down, slow, a
5xx) the call raises `RoutingUnavailable`; a refusal (401, 403, 404, 422) raises
`RoutingRefused` with routing's own message.
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

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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
        try:
            answer = self.http.get(f"{self.base_url}{path}", params=params,
                                   timeout=self.timeout, headers={
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
            raise RoutingRefused(answer.status_code, str(body.get("message") or "refused"))
        return body

    def inbox(self, session: dict, page: int = 1, per_page: int = 50) -> dict:
        """One page of the caller's inbox, oldest first (routing's `GET /api/v1/cases`)."""
        return self._get(session, "/api/v1/cases", {"page": page, "per_page": per_page})

    def case(self, session: dict, application_id: str) -> dict:
        """One case with its history (routing's `GET /api/v1/cases/<id>`)."""
        return self._get(session, f"/api/v1/cases/{quote(application_id, safe='')}")

    def close(self) -> None:
        self.http.close()
