"""A small Open311 GeoReport v2 client, written from the published specification only.

It knows the spec's resources and formats, not Açık Kapı: `.json` answers follow the Spark
convention, `.xml` answers the spec's element names, and both come back as the same Python
structures (XML text is kept as text, so compare values with `str()`). Errors in either format
raise `Open311ClientError` with the HTTP status and the spec's `(code, description)` list.
A transport does the HTTP: `HttpTransport` (requests, a real server) or `FlaskTransport` (an
app's test client).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Protocol

import requests

LISTS = {"services": "service", "attributes": "attribute", "values": "value",
         "service_requests": "request", "errors": "error", "endpoints": "endpoint",
         "formats": "format"}


class Transport(Protocol):
    def get(self, path: str, params: dict) -> tuple[int, str, bytes]: ...

    def post(self, path: str, form: dict) -> tuple[int, str, bytes]: ...


class HttpTransport:
    """Over real HTTP, e.g. `HttpTransport("http://127.0.0.1:8000/open311/v2")`."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        self.session = requests.Session()

    def get(self, path, params):
        answer = self.session.get(f"{self.endpoint}/{path}", params=params, timeout=10)
        return answer.status_code, answer.headers.get("Content-Type", ""), answer.content

    def post(self, path, form):
        # The spec: "Content-Type: application/x-www-form-urlencoded; charset=utf-8"
        answer = self.session.post(f"{self.endpoint}/{path}", data=form, timeout=10)
        return answer.status_code, answer.headers.get("Content-Type", ""), answer.content


class FlaskTransport:
    """Through a Flask app's test client, for the same calls without a server."""

    def __init__(self, client, endpoint: str = "/open311/v2"):
        self.client = client
        self.endpoint = endpoint

    def get(self, path, params):
        answer = self.client.get(f"{self.endpoint}/{path}", query_string=params)
        return answer.status_code, answer.content_type, answer.get_data()

    def post(self, path, form):
        answer = self.client.post(f"{self.endpoint}/{path}", data=form)
        return answer.status_code, answer.content_type, answer.get_data()


class Open311ClientError(Exception):
    def __init__(self, status: int, errors: list[dict]):
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors


def _from_xml(element: ET.Element):
    children = list(element)
    if element.tag in LISTS:
        return [_from_xml(child) for child in children if child.tag == LISTS[element.tag]]
    if not children:
        return element.text if element.text not in (None, "") else None
    return {child.tag: _from_xml(child) for child in children}


def parse(fmt: str, content_type: str, body: bytes):
    """A response body as Python data (lists for the spec's lists)."""
    if fmt == "json":
        assert content_type.startswith("application/json"), content_type
        return json.loads(body)
    assert content_type.startswith("text/xml"), content_type
    assert body.startswith(b"<?xml"), "the spec requires the XML declaration"
    return _from_xml(ET.fromstring(body))  # noqa: S314 - our own server's answer, in a test


class Open311Client:
    """GeoReport v2 calls for one jurisdiction, in one format (`json` or `xml`)."""

    def __init__(self, transport: Transport, jurisdiction_id: str, *, fmt: str = "json",
                 api_key: str | None = None):
        self.transport = transport
        self.jurisdiction_id = jurisdiction_id
        self.fmt = fmt
        self.api_key = api_key

    def _answer(self, status: int, content_type: str, body: bytes):
        data = parse(self.fmt, content_type, body)
        if status >= 400:
            raise Open311ClientError(status, data)
        return data

    def _get(self, resource: str, **params):
        params = {k: v for k, v in params.items() if v is not None}
        return self._answer(*self.transport.get(f"{resource}.{self.fmt}", params))

    def discovery(self) -> dict:
        return self._answer(*self.transport.get(f"discovery.{self.fmt}", {}))

    def services(self) -> list[dict]:
        """GET Service List."""
        return self._get("services", jurisdiction_id=self.jurisdiction_id)

    def service_definition(self, service_code: str) -> dict:
        """GET Service Definition (needed when a service's `metadata` is true)."""
        return self._get(f"services/{service_code}", jurisdiction_id=self.jurisdiction_id)

    def create(self, service_code: str, *, attributes: dict | None = None, **fields) -> dict:
        """POST Service Request: location (lat/long, address_string or address_id),
        `attribute[code]=value` pairs, and optional person and description fields."""
        form = {"api_key": self.api_key, "jurisdiction_id": self.jurisdiction_id,
                "service_code": service_code, **fields}
        for code, value in (attributes or {}).items():
            if isinstance(value, list):  # multivaluelist: attribute[code][]=a&attribute[code][]=b
                form[f"attribute[{code}][]"] = value
            else:
                form[f"attribute[{code}]"] = value
        form = {k: v for k, v in form.items() if v is not None}
        [created] = self._answer(*self.transport.post(f"requests.{self.fmt}", form))
        return created

    def requests(self, **filters) -> list[dict]:
        """GET Service Requests (service_request_id, service_code, start_date, end_date,
        status: comma-delimited where the spec allows)."""
        return self._get("requests", jurisdiction_id=self.jurisdiction_id, **filters)

    def request(self, service_request_id: str) -> dict:
        """GET Service Request."""
        [found] = self._get(f"requests/{service_request_id}",
                            jurisdiction_id=self.jurisdiction_id)
        return found

    def token(self, token: str) -> list[dict]:
        """GET service_request_id from a token."""
        return self._get(f"tokens/{token}", jurisdiction_id=self.jurisdiction_id)
