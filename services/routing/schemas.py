"""Routing's HTTP contracts."""
from __future__ import annotations

from marshmallow import Schema, fields


class CategorySchema(Schema):
    code = fields.String()
    name_tr = fields.String()
    name_en = fields.String()
    kinds = fields.List(fields.String())
    tier = fields.String()
    institution = fields.String(allow_none=True)
    read_hours = fields.Float()
    resolve_hours = fields.Float()
    priority = fields.String()
    reopen_days = fields.Integer()
    first_contact = fields.Boolean()
    muhtar = fields.Boolean()


class CategoryListSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema))
    total = fields.Integer()


class CaseStepSchema(Schema):
    at = fields.DateTime()
    state = fields.String()
    event = fields.String()
    by = fields.String(allow_none=True)
    rule = fields.String(allow_none=True)


class CaseSchema(Schema):
    application_id = fields.String()
    tracking_code = fields.String()
    state = fields.String()
    category = fields.String()
    tier = fields.String()
    institution = fields.String()
    unit = fields.String(allow_none=True)
    rule = fields.String()
    escalation_level = fields.Integer()
    received_at = fields.DateTime()
    routed_at = fields.DateTime()
    history = fields.List(fields.Nested(CaseStepSchema))
