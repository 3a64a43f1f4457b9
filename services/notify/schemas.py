"""Notify's HTTP contracts: the delivery log."""
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
    status = fields.String()
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)


class DeliveryLogSchema(Schema):
    application_id = fields.String()
    count = fields.Integer()
    items = fields.List(fields.Nested(MessageSchema))
