"""Intake's HTTP contracts: what a submission must look like and what it is answered."""
from __future__ import annotations

import phonenumbers
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from stdnum.tr import tckimlik

from services.common.events import CHANNELS, KINDS, PRIORITIES

DESCRIPTION_MAX = 4000


def validate_tckn(value: str) -> None:
    """A well-formed TC Kimlik No (11 digits, two check digits); proves form, not a person."""
    if not tckimlik.is_valid(value):
        raise ValidationError("Geçersiz T.C. Kimlik No / invalid TC Kimlik No.")


class PhoneField(fields.String):
    """A phone number, Turkish by default, stored in E.164 (`+905551234567`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            number = phonenumbers.parse(text, "TR")
        except phonenumbers.NumberParseException as exc:
            raise ValidationError("Geçersiz telefon numarası / invalid phone number.") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValidationError("Geçersiz telefon numarası / invalid phone number.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class LocationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    province = fields.String(required=True, validate=validate.Length(1, 60))
    district = fields.String(load_default=None, validate=validate.Length(1, 60))
    neighbourhood = fields.String(load_default=None, validate=validate.Length(1, 100))
    address = fields.String(load_default=None, validate=validate.Length(max=500))
    lat = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, validate=validate.Range(-180, 180))


class CitizenSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    tckn = fields.String(required=True, validate=validate_tckn)
    first_name = fields.String(required=True, validate=validate.Length(1, 100))
    last_name = fields.String(required=True, validate=validate.Length(1, 100))
    phone = PhoneField(required=True)
    email = fields.Email(load_default=None)


class CreateApplicationSchema(Schema):
    """A submission from the web form, the desk or the call centre."""

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    category = fields.String(required=True, validate=validate.Length(1, 80))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    description = fields.String(required=True, validate=validate.Length(1, DESCRIPTION_MAX))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    confidential = fields.Boolean(load_default=False)
    location = fields.Nested(LocationSchema, required=True)
    citizen = fields.Nested(CitizenSchema, required=True)


class ApplicationCreatedSchema(Schema):
    """The answer to a submission: the codes are shown once, here."""

    application_id = fields.String(required=True)
    tracking_code = fields.String(required=True)
    security_code = fields.String(required=True)
    status = fields.String(required=True)
