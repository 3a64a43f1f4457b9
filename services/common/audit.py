"""The audit log of personal-data access, as every service that keeps one searches it (KVKK).

Intake logs who read or changed whose personal data (`audit_log`: staff code, role, action,
citizen, application, when, why), routing logs the case reads it refused (an expert asking for
another unit's case: `case.read.refused`; intake also its refused application reads,
`application.read.refused`, and notify its refused delivery-log reads,
`notifications.read.refused`), reporting who read the call-back list. Each service
keeps its own `audit_log` collection (it is the one that saw the access) in one entry shape:

    {at, staff, role, unit?, action, citizen_id?, application_id?, path?, reason?, …}

and serves the administrators' search over it with `audit_blueprint`: `GET <prefix>/audit`
with `staff`, `citizen_id`, `application_id`, `action`, `from`, `to` (required) and `limit`,
validated by `AuditQuerySchema` (a 400 naming the field), admin role only (403 otherwise).
The console's `/console/denetim` asks every such service and merges the answers.

Bounded on purpose: on FerretDB 1.24 a filter on anything but `_id` reads the whole collection
(see `services.common.mongo`), so a search always has a time window (`from`, `to`, at most
`MAX_WINDOW_DAYS` apart) and a `limit` (at most `MAX_LIMIT`); on MongoDB the `at` index answers
it. No entry carries a name, TCKN, phone or e-mail: the citizen appears by their opaque id.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import request
from flask_smorest import Blueprint, abort
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)
from pymongo.collection import Collection

from services.common.auth import staff_required
from services.common.web import summary

AUDIT_ROLES = ("admin",)
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_WINDOW_DAYS = 92
# What a search may name: codes, ids and action names, never free text.
_TOKEN = validate.Regexp(r"^[A-Za-z0-9_.:@|\-]{1,100}$",
                         error="Harf, rakam ve _.:@|- olmalı / letters, digits and _.:@|- only.")


class AuditQuerySchema(Schema):
    """An administrator's audit-log search: a required time window and a limit."""

    class Meta:
        unknown = RAISE

    staff = fields.String(validate=_TOKEN)
    citizen_id = fields.String(validate=_TOKEN)
    application_id = fields.String(validate=_TOKEN)
    action = fields.String(validate=_TOKEN)
    from_ = fields.AwareDateTime(required=True, data_key="from")
    to = fields.AwareDateTime(required=True)
    limit = fields.Integer(load_default=DEFAULT_LIMIT,
                           validate=validate.Range(min=1, max=MAX_LIMIT))

    @validates_schema
    def _window(self, data: dict, **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start is None or end is None:
            return
        if end <= start:
            raise ValidationError("'to' 'from'dan sonra olmalı / 'to' must be after 'from'.",
                                  "to")
        if end - start > timedelta(days=MAX_WINDOW_DAYS):
            raise ValidationError(f"En çok {MAX_WINDOW_DAYS} gün / at most {MAX_WINDOW_DAYS} "
                                  "days from 'from'.", "to")


class AuditEntrySchema(Schema):
    """One audit entry as the search answers it (the stored shape, extra fields kept)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(attribute="_id")
    at = fields.AwareDateTime(required=True)
    staff = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    action = fields.String(required=True)
    citizen_id = fields.String(allow_none=True)
    application_id = fields.String(allow_none=True)
    applications = fields.List(fields.String())
    path = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    week = fields.String(allow_none=True)


class AuditPageSchema(Schema):
    service = fields.String(required=True)
    items = fields.List(fields.Nested(AuditEntrySchema), required=True)
    limit = fields.Integer(required=True)
    more = fields.Boolean(required=True, metadata={
        "description": "the limit cut the answer: narrow the window or the filters"})


def audit_filter(query: dict) -> dict:
    """The MongoDB filter of a loaded `AuditQuerySchema` query."""
    match: dict[str, Any] = {"at": {"$gte": query["from_"], "$lt": query["to"]}}
    for name in ("staff", "citizen_id", "action"):
        if query.get(name):
            match[name] = query[name]
    if query.get("application_id"):
        # reporting's list reads name many applications at once (`applications`)
        match["$or"] = [{"application_id": query["application_id"]},
                        {"applications": query["application_id"]}]
    return match


def search_audit(collection: Collection, query: dict) -> tuple[list[dict], bool]:
    """The entries a loaded query matches, newest first, and whether the limit cut them."""
    limit = query["limit"]
    found = list(collection.find(audit_filter(query)).sort("at", -1).limit(limit + 1))
    return found[:limit], len(found) > limit


def load_audit_query(args: Any) -> dict:
    """Load a query string, or answer 400 naming the field (the shared error shape)."""
    try:
        return AuditQuerySchema().load(args)
    except ValidationError as exc:
        errors = {"query": exc.messages}
        abort(400, message=summary(errors), errors=errors)
        raise  # unreachable: abort raises


def audit_blueprint(service: str, url_prefix: str,
                    collection: Callable[[], Collection]) -> Blueprint:
    """`GET <url_prefix>/audit`: the administrators' search of this service's audit log."""
    blp = Blueprint(f"{service}_audit", __name__, url_prefix=url_prefix,
                    description="Denetim kaydı / audit log (KVKK)")

    @blp.route("/audit", methods=["GET"])
    @staff_required(*AUDIT_ROLES)
    @blp.response(200, AuditPageSchema)
    @blp.alt_response(400, description="a parameter is wrong; `errors` names it")
    @blp.alt_response(403, description="administrators only")
    @blp.doc(security=[{"staffToken": []}], parameters=[
        {"in": "query", "name": name, "schema": {"type": "string"}, "required": required}
        for name, required in (("from", True), ("to", True), ("staff", False),
                               ("citizen_id", False), ("application_id", False),
                               ("action", False), ("limit", False))])
    def search():
        """Search the audit log: who read or changed whose personal data, when and why.

        `from` and `to` (ISO 8601 with an offset, at most 92 days apart) are required and
        `limit` is at most 500: the store scans for anything but `_id`, so a search is bounded.
        """
        query = load_audit_query(request.args)
        items, more = search_audit(collection(), query)
        return {"service": service, "items": items, "limit": query["limit"], "more": more}

    return blp
