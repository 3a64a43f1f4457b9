"""Tracking's HTTP contracts: the public lookup and its siblings, and their answers."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates

from services.common.codes import normalise_tracking_code
from services.common.tckn import is_tckn

MALFORMED_CODE = "Geçersiz takip kodu / malformed tracking code."
_TYPED_MAX = 32  # generous for dashes and spaces around 9 characters; stops absurd input early
TEXT_MAX = 2000


class TrackingCodeField(fields.String):
    """A typed tracking code, loaded to its canonical form; a failed check character is an error.

    Dashes, spaces, lower case and look-alike letters are forgiven (`normalise_tracking_code`);
    the error message never repeats what was typed.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        code = canonical_code(super()._deserialize(value, attr, data, **kwargs))
        if code is None:
            raise ValidationError(MALFORMED_CODE)
        return code


def canonical_code(text: str) -> str | None:
    """The canonical tracking code for what was typed, or None if it cannot be one."""
    return normalise_tracking_code(text) if len(text) <= _TYPED_MAX else None


class TrackRequestSchema(Schema):
    """A citizen's lookup: both codes travel in the body, never in a URL."""

    class Meta:
        unknown = EXCLUDE

    tracking_code = TrackingCodeField(required=True)
    security_code = fields.String(required=True, validate=validate.Length(1, _TYPED_MAX))


_TRACK_REQUEST = TrackRequestSchema()


def load_track_request(data: object) -> dict:
    """A lookup's body loaded exactly as `TrackRequestSchema().load` does, result and errors.

    The well-formed request — an object with both codes as strings that pass — is loaded
    here directly, because marshmallow's machinery costs more than the rest of a lookup's
    checks; anything else goes through the schema, which words the errors.
    """
    if type(data) is dict:
        typed, security = data.get("tracking_code"), data.get("security_code")
        if type(typed) is str and type(security) is str and 0 < len(security) <= _TYPED_MAX:
            code = canonical_code(typed)
            if code is not None:
                return {"tracking_code": code, "security_code": security}
    return _TRACK_REQUEST.load(data)  # type: ignore[arg-type]


class ReopenRequestSchema(TrackRequestSchema):
    """Ask to reopen a concluded application, saying why."""

    reason = fields.String(required=True, validate=validate.Length(3, TEXT_MAX))


class SatisfactionRequestSchema(TrackRequestSchema):
    """Rate the result of a concluded application, 1 (poor) to 5 (very good)."""

    score = fields.Integer(required=True, strict=False, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=TEXT_MAX))


class SatisfactionReplySchema(Schema):
    """`record_satisfaction_reply`'s arguments (RPC from intake): a citizen's application ids,
    the 1–5 score they replied to the survey SMS with, and the reply's id (intake's inbound id,
    so that a delivery of the same reply again rates nothing more)."""

    class Meta:
        unknown = EXCLUDE

    application_ids = fields.List(fields.String(validate=validate.Length(1, 80)),
                                  required=True, validate=validate.Length(max=500))
    score = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    reply_id = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(1, 80))


class NamedRefSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ReferralSchema(Schema):
    """The outside institution a referred application went to, and how to reach it."""

    institution = fields.String(required=True)
    name = fields.String(required=True)
    contact = fields.Dict(keys=fields.String(), values=fields.String())


class LocationSchema(Schema):
    """Administrative area only: province, district, neighbourhood."""

    province = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    neighbourhood = fields.String(allow_none=True)


class TimelineEntrySchema(Schema):
    """One step of the application's history (hareket bilgileri)."""

    at = fields.DateTime(required=True)
    status = fields.String(allow_none=True)  # None for steps that do not change the status
    text = fields.String(required=True)  # Turkish
    text_en = fields.String(required=True)


class ReopenOfferSchema(Schema):
    allowed = fields.Boolean(required=True)
    until = fields.DateTime(allow_none=True)  # the last moment a reopen may be asked
    requested = fields.Boolean(required=True)  # asked, and routing has not answered yet


class SatisfactionOfferSchema(Schema):
    allowed = fields.Boolean(required=True)
    score = fields.Integer(allow_none=True)  # the rating already given, if any


class TrackingAnswerSchema(Schema):
    """What the holder of both codes is shown (`domain.public_view` builds it)."""

    tracking_code = fields.String(required=True)  # display form, XXX-XXX-XXX
    status = fields.String(required=True, allow_none=True)
    status_text_tr = fields.String(required=True)
    status_text_en = fields.String(required=True)
    kind = fields.String(required=True)
    category = fields.String(required=True)
    category_name_tr = fields.String(allow_none=True)
    category_name_en = fields.String(allow_none=True)
    institution = fields.Nested(NamedRefSchema, allow_none=True)
    unit = fields.Nested(NamedRefSchema, allow_none=True)
    referral = fields.Nested(ReferralSchema, allow_none=True)
    location = fields.Nested(LocationSchema, allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    expected_at = fields.DateTime(allow_none=True)  # from the category's resolve time
    result = fields.String(allow_none=True)  # the unit's result, once resolved
    merged_into = fields.String(allow_none=True)  # the original's tracking code
    reopen = fields.Nested(ReopenOfferSchema, required=True)
    satisfaction = fields.Nested(SatisfactionOfferSchema, required=True)
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)


def _tckn(value: str) -> None:
    """A well-formed TC Kimlik No; it is passed to intake and never stored here."""
    if not is_tckn(value):
        raise ValidationError("Geçersiz T.C. Kimlik No / invalid TC Kimlik No.")


class MuhtarLoginSchema(Schema):
    """The portal's login form: who, and the answer to the challenge."""

    class Meta:
        unknown = EXCLUDE

    tckn = fields.String(required=True, validate=_tckn)
    first_name = fields.String(required=True, validate=validate.Length(1, 100))
    last_name = fields.String(required=True, validate=validate.Length(1, 100))
    captcha_id = fields.String(required=True, validate=validate.Length(1, 64))
    captcha_answer = fields.String(required=True, validate=validate.Length(1, 8))


class MuhtarCodeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(required=True, validate=validate.Length(6, 12))


class MuhtarRequestSchema(Schema):
    """A muhtar's new request (sent to intake's `submit_application`)."""

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(
        ("complaint", "request", "suggestion", "information", "thanks")))
    category = fields.String(required=True, validate=validate.Length(1, 80))
    description = fields.String(required=True, validate=validate.Length(10, 4000))
    district = fields.String(required=True, validate=validate.Length(1, 120))
    neighbourhood = fields.String(required=True, validate=validate.Length(1, 100))
    confidential = fields.Boolean(load_default=False)


# -- the staff lookup by tracking code (staff.py) ---------------------------------------------

class StaffLookupRequestSchema(Schema):
    """The tracking code as the caller read it out."""

    class Meta:
        unknown = EXCLUDE

    tracking_code = fields.String(required=True)

    @validates("tracking_code")
    def _code(self, value: str, **_: object) -> None:
        if len(value) > 64 or normalise_tracking_code(value) is None:
            raise ValidationError("Takip kodu geçersiz (9 karakter, XXX-XXX-XXX) / not a "
                                  "tracking code (9 characters, XXX-XXX-XXX).")

    @post_load
    def _canonical(self, data: dict, **_: object) -> dict:
        data["tracking_code"] = normalise_tracking_code(data["tracking_code"])
        return data


class StaffStepSchema(Schema):
    """One step of the timeline (times as ISO 8601 strings, as the read model renders them)."""

    at = fields.String(required=True)
    status = fields.String(allow_none=True)
    text = fields.String(required=True)
    text_en = fields.String(required=True)


class StaffLookupSchema(Schema):
    """What staff see of an application found by its code: its progress, no personal data."""

    application_id = fields.String(required=True)
    tracking_code = fields.String(required=True)  # display form, XXX-XXX-XXX
    status = fields.String(allow_none=True)
    status_text_tr = fields.String()
    status_text_en = fields.String()
    kind = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    category_name_tr = fields.String(allow_none=True)
    category_name_en = fields.String(allow_none=True)
    institution = fields.Nested(NamedRefSchema, allow_none=True)
    unit = fields.Nested(NamedRefSchema, allow_none=True)
    place = fields.Nested(LocationSchema, allow_none=True)
    confidential = fields.Boolean()
    received_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    expected_at = fields.String(allow_none=True)
    result = fields.String(allow_none=True)
    merged_into = fields.String(allow_none=True)
    timeline = fields.List(fields.Nested(StaffStepSchema))
