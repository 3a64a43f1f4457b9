"""Tracking's HTTP contracts: the public lookup and its answer."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from services.common.codes import normalise_tracking_code

MALFORMED_CODE = "Geçersiz takip kodu / malformed tracking code."
_TYPED_MAX = 32  # generous for dashes and spaces around 9 characters; stops absurd input early


class TrackingCodeField(fields.String):
    """A typed tracking code, loaded to its canonical form; a failed check character is an error.

    Dashes, spaces, lower case and look-alike letters are forgiven (`normalise_tracking_code`);
    the error message never repeats what was typed.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        code = normalise_tracking_code(text) if len(text) <= _TYPED_MAX else None
        if code is None:
            raise ValidationError(MALFORMED_CODE)
        return code


class TrackRequestSchema(Schema):
    """A citizen's lookup: both codes travel in the body, never in a URL."""

    class Meta:
        unknown = EXCLUDE

    tracking_code = TrackingCodeField(required=True)
    security_code = fields.String(required=True, validate=validate.Length(1, _TYPED_MAX))


class NamedRefSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ReferralSchema(Schema):
    """The outside institution a referred application went to, and how to reach it."""

    institution = fields.String(required=True)
    name = fields.String(required=True)
    contact = fields.Dict(keys=fields.String(), values=fields.String())


class TimelineEntrySchema(Schema):
    """One step of the application's history (hareket bilgileri)."""

    at = fields.DateTime(required=True)
    status = fields.String(allow_none=True)  # None for steps that do not change the status
    text = fields.String(required=True)  # Turkish
    text_en = fields.String(required=True)


class TrackingAnswerSchema(Schema):
    """What the holder of both codes is shown."""

    tracking_code = fields.String(required=True)  # display form, XXX-XXX-XXX
    status = fields.String(required=True)
    status_text_tr = fields.String(required=True)
    status_text_en = fields.String(required=True)
    kind = fields.String(required=True)
    category = fields.String(required=True)
    category_name_tr = fields.String(allow_none=True)
    category_name_en = fields.String(allow_none=True)
    institution = fields.Nested(NamedRefSchema, allow_none=True)
    unit = fields.Nested(NamedRefSchema, allow_none=True)
    referral = fields.Nested(ReferralSchema, allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)
