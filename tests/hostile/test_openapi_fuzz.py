"""Schemathesis over every service's OpenAPI document (issue 14): hostile input never earns a 5xx.

Each service's Flask app is built on the test's real store and broker, as its HTTP tests build
it; its `/openapi.json` is loaded from the app itself, and every documented operation is called
with generated requests, both those that fit the schema (positive) and those that do not
(negative), with a staff token and without one. The console documents no operation (its
pages are server-rendered forms): for it, only the document is loaded. Two things are
asserted for every response:

- no status 5xx (bad input is the caller's fault, and must be told so);
- every 4xx is the one documented error shape `{code, status, message, errors}`, with
  `code` equal to the status, so a client can always show the field named.

Runs are reproducible (`derandomize=True`, no example database) and bounded for CI: a few
examples per operation, mode and token, no shrinking. A failure names the service (one test
per service) and lists each bad answer as `METHOD path [mode, token]: status body`, with the
request that earned it.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import NonInteractiveExampleWarning, Unsatisfiable
from schemathesis import GenerationMode

from tests.support import bearer

SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
# Per operation, mode and token (a staff operation gets a quarter of it without a token): about
# a minute for the seven services on a quiet machine. FUZZ_EXAMPLES=60 digs deeper by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@schemathesis.serializer("message/rfc822")
def _raw_mail(ctx, value: object) -> bytes:
    """Intake's inbound e-mail webhook takes a raw message: whatever was generated, as bytes
    (schemathesis has no serializer of its own for message/rfc822)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


# Staff tokens the fuzzer sends: an admin passes every role check, so the generated input
# reaches the validation and the use case behind `staff_required`. Scoped roles (an expert of
# one unit) would double the time for little: scope is checked after the input is loaded.
ROLES = ("admin",)


@dataclass
class BadAnswer:
    """One response that broke the contract, with what was sent to earn it."""

    where: str
    status: int
    body: str
    request: str

    def __str__(self) -> str:
        return f"{self.where}: {self.status} {self.body[:300]}\n    sent: {self.request[:400]}"


def build_app(service: str, config: dict) -> tuple[object, Callable[[], None], dict]:
    """The service's Flask app on `config`, a closer for its parts, and the headers every
    request carries (intake's channel endpoints check the gateway's webhook secret)."""
    import importlib

    bootstrap = importlib.import_module(f"services.{service}.bootstrap")
    web = importlib.import_module(f"services.{service}.web")
    parts = bootstrap.build(config)
    headers = {}
    if service == "intake":
        headers["X-Webhook-Secret"] = config["CHANNEL_WEBHOOK_SECRET"]
    return web.create_app(parts), parts.close, headers


def error_shape_problem(status: int, body: object) -> str | None:
    """Why a 4xx body is not `{code, status, message, errors}` with code == status, or None."""
    if not isinstance(body, dict):
        return "not a JSON object"
    if set(body) != {"code", "status", "message", "errors"}:
        return f"keys {sorted(body)}"
    if body["code"] != status:
        return f"code {body['code']!r} is not the status {status}"
    if not isinstance(body["status"], str) or not isinstance(body["message"], str):
        return "status and message must be strings"
    if not isinstance(body["errors"], dict):
        return "errors must be an object"
    return None


def judge(response, where: str, case) -> BadAnswer | None:
    """The response as a bad answer, or None when it keeps the contract."""
    status = response.status_code
    text = response.content.decode("utf-8", "replace")  # exports answer XLSX and PDF bytes
    sent = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"
    if status >= 500:
        return BadAnswer(where, status, text, sent)
    if 400 <= status < 500 and case.operation.path != "/openapi.json":
        try:
            body = response.json()
        except ValueError:
            body = None
        problem = error_shape_problem(status, body)
        if problem:
            return BadAnswer(where, status, f"({problem}) {text}", sent)
    return None


def staff_only(operation) -> bool:
    """The operation documents the staff token as its security (see services/common/web.py)."""
    return bool(operation.definition.raw.get("security"))


def fuzz_operation(operation, mode: GenerationMode, headers: dict, label: str,
                   found: list[BadAnswer], examples: int = MAX_EXAMPLES) -> None:
    """Call `operation` with up to `examples` generated requests; collect the bad answers."""
    where = f"{operation.method.upper()} {operation.path} [{mode.value}, {label}]"
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: every bad answer is kept
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case) -> None:
        response = case.call(headers=headers)
        bad = judge(response, where, case)
        if bad:
            found.append(bad)

    try:
        run()
    except Unsatisfiable:
        # Nothing to break: an operation without parameters or body has no negative requests
        # (schemathesis cannot make one), and that is no finding.
        if mode is GenerationMode.POSITIVE:
            raise


@pytest.fixture(params=SERVICES)
def service_app(request, config) -> Iterator[tuple[str, object, dict, dict]]:
    service = request.param
    app, close, headers = build_app(service, config)
    yield service, app, headers, config
    close()


def test_no_5xx_and_every_4xx_in_the_error_shape(service_app):
    service, app, base_headers, config = service_app
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    found: list[BadAnswer] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations or service == "console", f"{service} documents no operation"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                # Without a token a staff operation stops at `staff_required` (a 401 before
                # any validation): a few requests show that, the budget goes to the token's.
                anonymous = max(3, MAX_EXAMPLES // 4) if staff_only(operation) else MAX_EXAMPLES
                fuzz_operation(operation, mode, dict(base_headers), "anonymous", found,
                               anonymous)
                for role in ROLES:
                    headers = dict(base_headers, **bearer(config, role=role))
                    fuzz_operation(operation, mode, headers, role, found)
    assert not found, f"{service}: {len(found)} bad answers\n" + "\n".join(
        str(bad) for bad in found[:40])
