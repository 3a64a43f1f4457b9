"""The services' staff APIs as the console calls them: server-side, over HTTP, with a staff
token minted for the signed-in user and valid `domain.TOKEN_MINUTES` minutes.

Each service checks the token's role and scope itself, exactly as for any other caller: the
console never widens what a staff member may see. When a service does not answer (down, slow,
a 5xx) a call raises `ServiceUnavailable`; a refusal (401, 403, 404, 409, 422) raises
`ServiceRefused` with the service's own message and the field it names.

`StaffApi` is that one way of calling; `IntakeClient` is the desk's, `SlaClient` and
`ReportingClient` the mayor's office's and the unit overview's, `TrackingClient` the lookup by
tracking code's, `NotifyClient` the administrators' message templates' (routing's are in
`routing_client`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import requests

from services.common.auth import mint_token
from services.console import domain

TIMEOUT_SECONDS = 5


class ServiceUnavailable(Exception):
    """The service did not answer usefully; the page says so (503)."""


class ServiceRefused(Exception):
    """The service refused the call; `status` and `message` are its own."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 errors: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.errors = errors or {}  # the service's `errors`, as it sent them


def named_field(errors: object) -> str | None:
    """The first field a service's `errors` names (`{"json": {"result": [...]}}` → `result`)."""
    if not isinstance(errors, dict):
        return None
    for key, value in errors.items():
        if key in ("json", "form", "query", "path") and isinstance(value, dict):
            return named_field(value)
        return str(key)
    return None


class StaffApi:
    """Calls one service's staff API as the signed-in staff member."""

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

    def get(self, session: dict, path: str, params: dict | None = None) -> dict:
        """`GET path` as the session's user; the service's JSON answer."""
        return self._call(session, "GET", path, params=params)

    def _call(self, session: dict, method: str, path: str, params: dict | None = None,
              body: dict | None = None, headers: dict | None = None) -> dict:
        try:
            answer = self.http.request(method, f"{self.base_url}{path}", params=params,
                                       json=body, timeout=self.timeout, headers={
                                           "Authorization": f"Bearer {self.token_for(session)}",
                                           "Accept": "application/json", **(headers or {})})
        except requests.RequestException as exc:
            raise ServiceUnavailable(type(exc).__name__) from None
        if answer.status_code >= 500:
            raise ServiceUnavailable(f"status {answer.status_code}")
        if answer.status_code == 204:  # done, nothing to say (a DELETE)
            return {}
        try:
            body = answer.json()
        except ValueError:
            raise ServiceUnavailable("not JSON") from None
        if answer.status_code not in (200, 201):
            errors = body.get("errors")
            raise ServiceRefused(answer.status_code, str(body.get("message") or "refused"),
                                 named_field(errors), errors if isinstance(errors, dict) else None)
        return body

    def close(self) -> None:
        self.http.close()


class SlaClient(StaffApi):
    """SLA's lists (`/api/v1/sla/…`)."""

    def reached_the_top(self, session: dict, limit: int = 100) -> dict:
        """The cases that climbed to the top of the ladder, in the caller's scope."""
        return self.get(session, "/api/v1/sla/mayor", {"limit": limit})

    # the administrators' pages (`console.admin`): SLA's policy rules

    def policies(self, session: dict) -> dict:
        """Every policy rule (`GET /api/v1/sla/policies`)."""
        return self.get(session, "/api/v1/sla/policies")

    def put_policy(self, session: dict, rule: dict) -> dict:
        """Create or replace the rule of `rule["scope"]` (`PUT /api/v1/sla/policies`)."""
        return self._call(session, "PUT", "/api/v1/sla/policies", body=rule)

    def delete_policy(self, session: dict, rule_id: str) -> dict:
        """Remove a rule (`DELETE /api/v1/sla/policies/<rule>`)."""
        return self._call(session, "DELETE", f"/api/v1/sla/policies/{quote(rule_id, safe='')}")

    def overdue(self, session: dict, limit: int = 100) -> dict:
        """Running cases past their read or resolve deadline in the caller's scope, the
        earliest due first (SLA's `GET /api/v1/sla/overdue`)."""
        return self.get(session, "/api/v1/sla/overdue", {"limit": limit})

    def at_risk(self, session: dict, limit: int = 100) -> dict:
        """Running cases past their first warning and not yet due, in the caller's scope
        (SLA's `GET /api/v1/sla/at-risk`)."""
        return self.get(session, "/api/v1/sla/at-risk", {"limit": limit})


class ReportingClient(StaffApi):
    """Reporting's call-back list (`/api/v1/reports/callbacks…`)."""

    def callbacks(self, session: dict, week: str | None = None) -> dict:
        """The week's call-back list with each citizen's contact (read and audited by
        reporting and intake)."""
        return self.get(session, "/api/v1/reports/callbacks",
                         {"week": week} if week else None)

    def note_callback(self, session: dict, week: str, application_id: str, reached: bool,
                      note: str | None) -> dict:
        """Record how a call went."""
        return self._call(session, "PUT", f"/api/v1/reports/callbacks/{quote(week, safe='')}/"
                                          f"{quote(application_id, safe='')}",
                          body={"reached": reached, "note": note or None})

    def backlog(self, session: dict) -> dict:
        """What is open now in the caller's scope, by age, and how much is overdue."""
        return self.get(session, "/api/v1/reports/backlog")

    def summary(self, session: dict) -> dict:
        """The last 30 days' summary in the caller's scope (reporting's default period)."""
        return self.get(session, "/api/v1/reports/summary")

    def series(self, session: dict, granularity: str = "day") -> dict:
        """Received against concluded over the last 30 days, per `granularity`."""
        return self.get(session, "/api/v1/reports/series", {"granularity": granularity})

    def files(self, session: dict) -> dict:
        """The weekly and monthly report files generated for the caller's scope."""
        return self.get(session, "/api/v1/reports/files")

    def file(self, session: dict, file_id: str, fmt: str) -> tuple[bytes, str, str]:
        """One generated report file, scoped by reporting: its bytes, content type and
        `Content-Disposition` (a refusal raises `ServiceRefused` with reporting's 404/422)."""
        try:
            answer = self.http.get(
                f"{self.base_url}/api/v1/reports/files/{quote(file_id, safe='')}",
                params={"format": fmt}, timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.token_for(session)}"})
        except requests.RequestException as exc:
            raise ServiceUnavailable(type(exc).__name__) from None
        if answer.status_code >= 500:
            raise ServiceUnavailable(f"status {answer.status_code}")
        if answer.status_code != 200:
            try:
                body = answer.json()
            except ValueError:
                raise ServiceUnavailable("not JSON") from None
            raise ServiceRefused(answer.status_code, str(body.get("message") or "refused"),
                                 named_field(body.get("errors")))
        return (answer.content, answer.headers.get("Content-Type", "application/octet-stream"),
                answer.headers.get("Content-Disposition", "attachment"))


@dataclass
class Download:
    """A file a service streams: its type, its `Content-Disposition`, and the body in chunks
    (`close()` when done, read or not)."""

    content_type: str
    disposition: str | None
    chunks: Iterator[bytes]
    close: Callable[[], None]


class IntakeClient(StaffApi):
    """Intake's citizen search, the desk's simplified form, and a case's application: its
    citizen's contact (asked with a reason) and its attachments (`/api/v1/…`)."""

    def application(self, session: dict, application_id: str) -> dict:
        """The application as staff see it (intake audits the read): its citizen's id and
        its attachments' metadata, no contact."""
        return self.get(session, f"/api/v1/applications/{quote(application_id, safe='')}")

    def citizen(self, session: dict, citizen_id: str, reason: str,
                application_id: str) -> dict:
        """The citizen of the case `application_id` with their contact (TCKN masked), read for
        `reason` (intake audits the read with it). Intake lets a role that does not see
        everything read a citizen only through a case routing lets it read, and then lists
        that application alone."""
        return self.get(session, f"/api/v1/citizens/{quote(citizen_id, safe='')}",
                        {"reason": reason, "application_id": application_id})

    def attachment(self, session: dict, application_id: str, file_id: str) -> Download:
        """An application's attachment (intake audits the read), streamed."""
        path = (f"/api/v1/applications/{quote(application_id, safe='')}/attachments/"
                f"{quote(file_id, safe='')}")
        try:
            answer = self.http.get(f"{self.base_url}{path}", stream=True, timeout=self.timeout,
                                   headers={"Authorization": f"Bearer {self.token_for(session)}"})
        except requests.RequestException as exc:
            raise ServiceUnavailable(type(exc).__name__) from None
        if answer.status_code != 200:
            try:
                body = answer.json() if answer.status_code < 500 else {}
            except ValueError:
                body = {}
            finally:
                answer.close()
            if answer.status_code >= 500:
                raise ServiceUnavailable(f"status {answer.status_code}")
            raise ServiceRefused(answer.status_code, str(body.get("message") or "refused"),
                                 named_field(body.get("errors")))
        return Download(answer.headers.get("Content-Type") or "application/octet-stream",
                        answer.headers.get("Content-Disposition"),
                        answer.iter_content(64 * 1024), answer.close)

    def find_citizen(self, session: dict, tckn: str) -> dict:
        """The citizen with this TCKN, masked, with their applications (audited by intake);
        the TCKN travels in the body, never in a URL."""
        return self._call(session, "POST", "/api/v1/citizens/search", body={"tckn": tckn})

    def file_desk_application(self, session: dict, form: dict, key: str) -> dict:
        """File seed 004's simplified form; `key` makes a resubmitted form answer with the
        application already filed instead of filing it twice."""
        return self._call(session, "POST", "/api/v1/applications/desk", body=form,
                          headers={"Idempotency-Key": key})


class TrackingClient(StaffApi):
    """Tracking's staff lookup (`/api/v1/track/staff/…`)."""

    def look_up(self, session: dict, tracking_code: str) -> dict:
        """The application behind a tracking code as a caller read it out (status, unit,
        timeline; no personal data); the code travels in the body, never in a URL."""
        return self._call(session, "POST", "/api/v1/track/staff/lookup",
                          body={"tracking_code": tracking_code})


class NotifyClient(StaffApi):
    """Notify's message templates (`/api/v1/notifications/templates…`), for the
    administrators' pages (`console.admin`)."""

    def templates(self, session: dict) -> dict:
        """Every template file with its override, if any."""
        return self.get(session, "/api/v1/notifications/templates")

    def put_template(self, session: dict, channel: str, name: str, text: str) -> dict:
        """Send `text` instead of the file (`PUT …/templates/<channel>/<name>`)."""
        return self._call(session, "PUT", self._path(channel, name), body={"text": text})

    def delete_template(self, session: dict, channel: str, name: str) -> dict:
        """Remove the override: the file's text goes again (`DELETE …`)."""
        return self._call(session, "DELETE", self._path(channel, name))

    @staticmethod
    def _path(channel: str, name: str) -> str:
        return (f"/api/v1/notifications/templates/{quote(channel, safe='')}/"
                f"{quote(name, safe='')}")
