"""Notify's HTTP contracts: the delivery log, a citizen's opt-out, the message templates."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate


class DeliveryLogQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    application_id = fields.String(required=True, validate=validate.Length(1, 64))


class MessageSchema(Schema):
    """One outbound message; the destination is masked, the text is not kept."""

    id = fields.String(attribute="_id")
    application_id = fields.String()
    cause_event_id = fields.String()
    cause_type = fields.String()
    channel = fields.String()
    template = fields.String()
    destination = fields.String(allow_none=True)
    provider = fields.String()
    provider_message_id = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    audience = fields.String(allow_none=True)
    status = fields.String()
    due_at = fields.AwareDateTime(allow_none=True)  # deferred: when it goes
    held_for = fields.String(allow_none=True)  # deferred: quiet_hours | retry
    retries = fields.Integer()
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)


class DeliveryLogSchema(Schema):
    application_id = fields.String()
    count = fields.Integer()
    items = fields.List(fields.Nested(MessageSchema))


class OptOutSchema(Schema):
    """A citizen's choice, by their opaque reference (never a phone number)."""

    class Meta:
        unknown = EXCLUDE

    citizen_ref = fields.String(dump_only=True)
    opted_out = fields.Boolean(required=True)
    source = fields.String(dump_only=True, allow_none=True)
    at = fields.AwareDateTime(dump_only=True, allow_none=True)


class TemplateSchema(Schema):
    """One template file (`<channel>/<name>.j2`, `name` = `<template>.<language>`), its text and
    the administrators' override of it, if any (what is sent instead)."""

    channel = fields.String()
    name = fields.String()
    template = fields.String()
    language = fields.String()
    file_text = fields.String()
    override_text = fields.String(allow_none=True)
    updated_at = fields.AwareDateTime(allow_none=True)
    updated_by = fields.String(allow_none=True)


class TemplateListSchema(Schema):
    count = fields.Integer()
    items = fields.List(fields.Nested(TemplateSchema))


class TemplateOverrideSchema(Schema):
    """The text that replaces a template file (checked against the template's variables)."""

    class Meta:
        unknown = EXCLUDE

    text = fields.String(required=True, validate=validate.Length(1, 20000))
