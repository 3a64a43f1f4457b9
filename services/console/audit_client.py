"""The audit logs as the console's search page reads them (`/console/denetim`): each service
that keeps one answers `GET <its prefix>/audit` (`services.common.audit`) to an administrator's
token, minted here for the signed-in user as for routing's calls.

The services are asked one after the other and their answers merged, newest first, cut at the
limit. A service that does not answer is named in `unavailable` and the others are still shown
(an administrator looking for one access should not be stopped by one service being down, but
must know the answer may be incomplete). A refusal (401, 403, 400) is the service's own and
raises `AuditRefused` with its message and the field it names.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.console.clients import ServiceRefused, ServiceUnavailable, StaffApi

# a refusal of the search is the service's own, as for every other staff API call
AuditRefused = ServiceRefused


@dataclass(frozen=True)
class AuditSource:
    """One service's audit log: its name, base URL and search path."""

    service: str
    base_url: str
    path: str


def sources_of(config: dict) -> list[AuditSource]:
    """Intake's personal-data reads, routing's refused case reads, reporting's call-back list
    reads, at the URLs the console reaches each service on."""
    return [
        AuditSource("intake", config["CONSOLE_INTAKE_URL"], "/api/v1/citizens/audit"),
        AuditSource("routing", config["CONSOLE_ROUTING_URL"], "/api/v1/cases/audit"),
        AuditSource("reporting", config["CONSOLE_REPORTING_URL"], "/api/v1/reports/audit"),
    ]


class AuditClient:
    """Searches every service's audit log as the signed-in administrator."""

    def __init__(self, sources: list[AuditSource], secret: str):
        self.sources = [(source, StaffApi(source.base_url, secret)) for source in sources]

    def search(self, session: dict, query: dict) -> dict:
        """`{items, more, unavailable}`: the entries of every log matching `query` (the API's
        parameters), newest first, at most `query["limit"]`; each item names its service."""
        items: list[dict] = []
        more, unavailable = False, []
        for source, api in self.sources:
            try:
                body = api.get(session, source.path, query)
            except ServiceUnavailable:
                unavailable.append(source.service)
                continue
            except ServiceRefused as refused:
                if refused.status != 404:
                    raise
                unavailable.append(source.service)  # a service without the search (older)
                continue
            items += [dict(item, service=source.service) for item in body.get("items") or []]
            more = more or bool(body.get("more"))
        items.sort(key=lambda item: item["at"], reverse=True)
        limit = int(query["limit"])
        return {"items": items[:limit], "more": more or len(items) > limit,
                "unavailable": unavailable}

    def close(self) -> None:
        for _, api in self.sources:
            api.close()
