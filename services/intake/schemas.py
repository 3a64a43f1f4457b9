"""Intake's HTTP contracts: what each door's submission must look like and what it is answered."""
from __future__ import annotations

from typing import Any

import phonenumbers
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from services.common.events import CHANNELS, KINDS, PRIORITIES
from services.common.tckn import is_tckn
from services.intake.domain import CALLER_TYPES, DEFAULT_LANGUAGE, LANGUAGES

DESCRIPTION_MAX = 4000
ANSWER_MAX = 2000
DESK_CHANNELS = ("desk", "call_centre", "field_team", "neighbourhood_meeting", "mayor_office",
                 "post")
MESSAGE_CHANNELS = ("whatsapp", "social")
CONTACT_CHANNELS = ("sms", "email")


def validate_tckn(value: str) -> None:
    """A well-formed TC Kimlik No (11 digits, two check digits); proves form, not a person."""
    if not is_tckn(value):
        raise ValidationError("Geçersiz T.C. Kimlik No / invalid TC Kimlik No.")


def normalise_phone(text: str) -> str:
    """A phone number, Turkish by default, in E.164 (`+905551234567`); raises ValidationError."""
    try:
        number = phonenumbers.parse(text, "TR")
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("Geçersiz telefon numarası / invalid phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("Geçersiz telefon numarası / invalid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PhoneField(fields.String):
    """A phone number, Turkish by default, stored in E.164 (`+905551234567`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return normalise_phone(super()._deserialize(value, attr, data, **kwargs))


class LocationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    province = fields.String(required=True, validate=validate.Length(1, 60))
    district = fields.String(load_default=None, validate=validate.Length(1, 60))
    neighbourhood = fields.String(load_default=None, validate=validate.Length(1, 100))
    address = fields.String(load_default=None, validate=validate.Length(max=500))
    lat = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, validate=validate.Range(-180, 180))

    @validates_schema
    def _both_coordinates(self, data: dict, **_: Any) -> None:
        if (data.get("lat") is None) != (data.get("lon") is None):
            missing = "lat" if data.get("lat") is None else "lon"
            raise ValidationError("Enlem ve boylam birlikte verilmeli / give both lat and lon.",
                                  missing)


class CitizenSchema(Schema):
    """The applicant. Without a TCKN (foreign residents) a phone or e-mail identifies them."""

    class Meta:
        unknown = EXCLUDE

    tckn = fields.String(load_default=None, validate=validate_tckn)
    first_name = fields.String(required=True, validate=validate.Length(1, 100))
    last_name = fields.String(required=True, validate=validate.Length(1, 100))
    phone = PhoneField(load_default=None)  # mobile: SMS goes here
    home_phone = PhoneField(load_default=None)
    email = fields.Email(load_default=None)
    address = fields.String(load_default=None, validate=validate.Length(max=500))
    district = fields.String(load_default=None, validate=validate.Length(1, 60))
    neighbourhood = fields.String(load_default=None, validate=validate.Length(1, 100))
    preferred_channel = fields.String(load_default=None,
                                      validate=validate.OneOf(CONTACT_CHANNELS))
    consent = fields.Boolean(load_default=None)  # KVKK: may we contact them about it
    # The language our messages to them are written in. Not given: the profile keeps what it
    # has (Turkish unless they chose otherwise), so a later submission never resets a choice.
    language = fields.String(load_default=None, validate=validate.OneOf(LANGUAGES))

    @validates_schema
    def _reachable(self, data: dict, **_: Any) -> None:
        if not data.get("phone") and not data.get("email"):
            raise ValidationError(
                "Cep telefonu veya e-posta gerekli / a mobile phone or an e-mail is required.",
                "phone")


class CreateApplicationSchema(Schema):
    """A submission from the web, the desk or the call centre, or another service over RPC."""

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    category = fields.String(required=True, validate=validate.Length(1, 80))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    description = fields.String(required=True, validate=validate.Length(1, DESCRIPTION_MAX))
    priority = fields.String(load_default=None, validate=validate.OneOf(PRIORITIES))
    confidential = fields.Boolean(load_default=False)
    caller_type = fields.String(load_default="citizen", validate=validate.OneOf(CALLER_TYPES))
    location = fields.Nested(LocationSchema, required=True)
    citizen = fields.Nested(CitizenSchema, load_default=None)
    anonymous = fields.Boolean(load_default=False)
    answered = fields.Boolean(load_default=False)
    answer = fields.String(load_default=None, validate=validate.Length(max=ANSWER_MAX))
    applied_at = fields.AwareDateTime(load_default=None)

    @validates_schema
    def _someone_or_anonymous(self, data: dict, **_: Any) -> None:
        if not data.get("anonymous") and not data.get("citizen"):
            raise ValidationError("Başvuru sahibi gerekli (ya da anonymous: true) / the "
                                  "applicant is required, or anonymous: true.", "citizen")


class ReceivedBySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Length(1, 120))
    staff_code = fields.String(load_default=None, validate=validate.Regexp(
        r"^[a-z0-9_]+-\d{4}$", error="Personel kodu <önek>-NNNN / staff code <prefix>-NNNN."))


class DeskCitizenSchema(CitizenSchema):
    """Seed 004's simplified form: home and mobile phones."""

    mobile_phone = PhoneField(load_default=None)

    @post_load
    def _mobile_is_the_phone(self, data: dict, **_: Any) -> dict:
        if data.get("mobile_phone") and not data.get("phone"):
            data["phone"] = data["mobile_phone"]
        data.pop("mobile_phone", None)
        return data

    @validates_schema
    def _reachable(self, data: dict, **_: Any) -> None:
        if not (data.get("phone") or data.get("mobile_phone") or data.get("email")
                or data.get("home_phone")):
            raise ValidationError("Bir telefon veya e-posta gerekli / a phone or an e-mail is "
                                  "required.", "mobile_phone")


class DeskApplicationSchema(Schema):
    """Seed 004 "Sadeleştirilmiş Form": date and time, place, the person, phones (home and
    mobile), e-mail, address, who received it (name and Açık Kapı staff code), through which
    door, the category (its unit is routing's business) and the description. An information
    request may be answered on the spot (`answer`)."""

    class Meta:
        unknown = EXCLUDE

    applied_at = fields.AwareDateTime(required=True)
    place = fields.String(required=True, validate=validate.Length(1, 120))
    channel = fields.String(load_default="desk", validate=validate.OneOf(DESK_CHANNELS))
    received_by = fields.Nested(ReceivedBySchema, required=True)
    citizen = fields.Nested(DeskCitizenSchema, load_default=None)
    anonymous = fields.Boolean(load_default=False)
    caller_type = fields.String(load_default="citizen", validate=validate.OneOf(CALLER_TYPES))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    category = fields.String(required=True, validate=validate.Length(1, 80))
    description = fields.String(required=True, validate=validate.Length(1, DESCRIPTION_MAX))
    location = fields.Nested(LocationSchema, required=True)
    priority = fields.String(load_default=None, validate=validate.OneOf(PRIORITIES))
    confidential = fields.Boolean(load_default=False)
    answer = fields.String(load_default=None, validate=validate.Length(max=ANSWER_MAX))

    @validates_schema
    def _someone_or_anonymous(self, data: dict, **_: Any) -> None:
        if not data.get("anonymous") and not data.get("citizen"):
            raise ValidationError("Başvuru sahibi gerekli / the applicant is required.",
                                  "citizen")


class SmsWebhookSchema(Schema):
    """What the SMS gateway posts for one message to the short number."""

    class Meta:
        unknown = EXCLUDE

    from_ = PhoneField(required=True, data_key="from")
    text = fields.String(load_default="", validate=validate.Length(max=5000))
    received_at = fields.AwareDateTime(load_default=None)


class MessageWebhookSchema(Schema):
    """One message from WhatsApp or a social media account, tagged by channel."""

    class Meta:
        unknown = EXCLUDE

    channel = fields.String(required=True, validate=validate.OneOf(MESSAGE_CHANNELS))
    from_ = fields.String(required=True, data_key="from", validate=validate.Length(1, 200))
    name = fields.String(load_default=None, validate=validate.Length(max=200))
    text = fields.String(load_default="", validate=validate.Length(max=5000))
    received_at = fields.AwareDateTime(load_default=None)

    @post_load
    def _whatsapp_is_a_phone(self, data: dict, **_: Any) -> dict:
        if data["channel"] == "whatsapp":
            try:
                data["from_"] = normalise_phone(data["from_"])
            except ValidationError as exc:
                raise ValidationError({"from": exc.messages}) from None
        return data


class SmsReplyAnswerSchema(Schema):
    """The answer to an SMS that was a reply, not an application: a satisfaction score
    recorded (`satisfaction_recorded`, with the public tracking code it rated), or messages
    stopped or restarted (`opted_out` / `opted_in`). Never who the sender is."""

    result = fields.String(required=True)
    inbound_id = fields.String(required=True)
    tracking_code = fields.String()
    score = fields.Integer()
    replayed = fields.Boolean()


class CimerItemSchema(Schema):
    """One application forwarded by CİMER (Cumhurbaşkanlığı İletişim Merkezi)."""

    class Meta:
        unknown = EXCLUDE

    cimer_ref = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9./-]{4,40}$", error="CİMER başvuru numarası / CİMER reference."))
    received_at = fields.AwareDateTime(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    category = fields.String(load_default="complaint_general",
                             validate=validate.Length(1, 80))
    subject = fields.String(load_default=None, validate=validate.Length(max=300))
    description = fields.String(required=True, validate=validate.Length(1, DESCRIPTION_MAX))
    citizen = fields.Nested(CitizenSchema, required=True)
    location = fields.Nested(LocationSchema, required=True)
    confidential = fields.Boolean(load_default=False)


class CimerBatchSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    batch_id = fields.String(required=True, validate=validate.Length(1, 80))
    items = fields.List(fields.Dict(), required=True, validate=validate.Length(1, 1000))


class ApplicationCreatedSchema(Schema):
    """The answer to a submission: the codes are shown once, here.

    A duplicate is answered with the original's tracking code and no security code.
    """

    application_id = fields.String(required=True)
    tracking_code = fields.String(required=True)
    security_code = fields.String(allow_none=True)
    status = fields.String(required=True)
    category_name = fields.String(allow_none=True)
    merged_into = fields.String(allow_none=True)
    replayed = fields.Boolean()
    inbound_id = fields.String()
    kind = fields.String()
    category = fields.String()


class CimerResultSchema(Schema):
    batch_id = fields.String()
    accepted = fields.List(fields.Dict())
    rejected = fields.List(fields.Dict())


class AttachmentSchema(Schema):
    id = fields.String()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    thumbnail_id = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)


class ApplicationViewSchema(Schema):
    """An application as staff see it (personal data stays on the citizen's profile)."""

    id = fields.String(attribute="_id")
    tracking_code = fields.Function(lambda a: _show(a.get("tracking_code")))
    status = fields.String()
    kind = fields.String()
    category = fields.String()
    channel = fields.String()
    priority = fields.String()
    confidential = fields.Boolean()
    caller_type = fields.String()
    description = fields.String()
    location = fields.Dict()
    citizen_id = fields.String(allow_none=True)
    anonymous = fields.Boolean()
    no_tckn = fields.Boolean()
    answer = fields.String(allow_none=True)
    received_at = fields.AwareDateTime()
    applied_at = fields.Raw(allow_none=True)
    desk = fields.Dict(allow_none=True)
    merged_into = fields.Function(lambda a: _merged(a.get("merged_into")))
    unlinked = fields.Function(lambda a: _merged((a.get("unlinked") or {}).get("from")))
    attachments = fields.List(fields.Nested(AttachmentSchema))
    duplicates = fields.List(fields.Dict())


def _show(code: str | None) -> str | None:
    from services.intake.submission import show_code

    return show_code(code)


def _merged(link: dict | None) -> dict | None:
    if not link:
        return None
    return {"application_id": link["application_id"],
            "tracking_code": _show(link["tracking_code"])}


class CitizenWriteSchema(Schema):
    """Registering or correcting a profile (staff)."""

    class Meta:
        unknown = EXCLUDE

    tckn = fields.String(load_default=None, validate=validate_tckn)
    first_name = fields.String(validate=validate.Length(1, 100))
    last_name = fields.String(validate=validate.Length(1, 100))
    phone = PhoneField(allow_none=True)
    home_phone = PhoneField(allow_none=True)
    email = fields.Email(allow_none=True)
    address = fields.String(allow_none=True, validate=validate.Length(max=500))
    province = fields.String(validate=validate.Length(1, 60))
    district = fields.String(allow_none=True, validate=validate.Length(1, 60))
    neighbourhood = fields.String(allow_none=True, validate=validate.Length(1, 100))
    preferred_channel = fields.String(validate=validate.OneOf(CONTACT_CHANNELS))
    consent = fields.Boolean()
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    caller_type = fields.String(validate=validate.OneOf(CALLER_TYPES))


class CitizenSearchSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    tckn = fields.String(required=True, validate=validate_tckn)


class RevealQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reveal = fields.Boolean(load_default=False)
    reason = fields.String(load_default=None, validate=validate.Length(3, 300))
    # the case the caller holds: required of every role that does not see everything
    application_id = fields.String(load_default=None, validate=validate.Length(1, 64))

    @validates_schema
    def _reason_for_reveal(self, data: dict, **_: Any) -> None:
        if data.get("reveal") and not data.get("reason"):
            raise ValidationError("Açık T.C. kimlik no için gerekçe gerekli / a reason is "
                                  "required to see the TC Kimlik No.", "reason")


class CitizenProfileSchema(Schema):
    id = fields.String(attribute="_id")
    identity = fields.String()
    tckn = fields.String(allow_none=True)  # masked unless revealed with a reason
    tckn_masked = fields.Boolean()
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    home_phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    province = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    neighbourhood = fields.String(allow_none=True)
    preferred_channel = fields.String(allow_none=True)
    consent = fields.Boolean(allow_none=True)
    language = fields.Function(lambda c: c.get("language") or DEFAULT_LANGUAGE)
    caller_type = fields.String()
    handles = fields.Dict()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    applications = fields.List(fields.Nested(ApplicationViewSchema))
