"""The console's schemas: the login, second-factor, password-reset and call-back forms, an
account as the CLI and the sample staff list give it."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from services.common.auth import ROLES

STAFF_CODE = validate.Regexp(r"^[a-z][a-z0-9_]*-\d{4}$", error="a staff code like mez-0008")
CODE = validate.Regexp(r"^[a-z][a-z0-9_]*$", error="a code in snake_case")
UNIT_CODE = validate.Regexp(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
                            error="a unit code like mezitli_bld.works")
BASE32 = validate.Regexp(r"^[A-Z2-7]{16,}$", error="a base32 TOTP secret (16+ characters)")
# The password policy of every account, set by the CLI or by a reset link alike.
PASSWORD = validate.Length(8, 1024, error="8–1024 karakter / 8 to 1024 characters")


class LoginFormSchema(Schema):
    user = fields.String(required=True, validate=validate.Length(1, 64))
    password = fields.String(required=True, validate=validate.Length(1, 1024))
    csrf = fields.String(load_default="")


class TotpFormSchema(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$",
                                                                 error="six digits"))
    csrf = fields.String(load_default="")


class AccountSchema(Schema):
    """An account to create: the CLI's arguments and each entry of the sample staff list."""

    user = fields.String(required=True, validate=STAFF_CODE)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    unit = fields.String(load_default=None, allow_none=True, validate=UNIT_CODE)
    institution = fields.String(load_default=None, allow_none=True, validate=CODE)
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    password = fields.String(required=True, validate=PASSWORD)
    email = fields.Email(load_default=None, allow_none=True)  # where a reset link is sent
    totp_secret = fields.String(load_default=None, allow_none=True, validate=BASE32)


class ForgotFormSchema(Schema):
    """The "forgot my password" form: the staff code only."""

    class Meta:
        unknown = EXCLUDE

    user = fields.String(required=True, validate=validate.Length(1, 64))


class ResetFormSchema(Schema):
    """The new password of a reset link, typed twice; the accounts' own policy."""

    class Meta:
        unknown = EXCLUDE

    password = fields.String(required=True, validate=PASSWORD)
    password_again = fields.String(required=True)

    @validates_schema
    def _same(self, data: dict, **_: object) -> None:
        if data.get("password") != data.get("password_again"):
            raise ValidationError("parolalar aynı değil / the passwords differ",
                                  "password_again")


class ContactFormSchema(Schema):
    """Why the citizen's contact is read (intake's audit log keeps it): 3–300 characters."""

    class Meta:
        unknown = EXCLUDE

    reason = fields.String(required=True, validate=validate.Length(
        3, 300, error="3–300 karakter bir gerekçe yazın / give a reason of 3 to 300 characters"))


class SampleAccountsSchema(Schema):
    accounts = fields.List(fields.Nested(AccountSchema), required=True)


_SEARCH_TOKEN = validate.Regexp(r"^[A-Za-z0-9_.:@|\-]{1,100}$",
                                error="harf, rakam ve _.:@|- / letters, digits and _.:@|-")


class AuditFormSchema(Schema):
    """The audit search form (`/console/denetim`): local days, filters, a limit. Empty fields
    are dropped before loading; the window and the limit are the API's own bounds."""

    from_day = fields.Date(required=True, data_key="baslangic")
    to_day = fields.Date(required=True, data_key="bitis")
    staff = fields.String(validate=_SEARCH_TOKEN)
    citizen_id = fields.String(validate=_SEARCH_TOKEN)
    application_id = fields.String(validate=_SEARCH_TOKEN)
    action = fields.String(validate=_SEARCH_TOKEN)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class CallbackFormSchema(Schema):
    """The mayor's office's record of one call-back: reached or not, and a note."""

    class Meta:
        unknown = EXCLUDE

    reached = fields.String(required=True, validate=validate.OneOf(("evet", "hayir")),
                            error_messages={"required": "Ulaşıldı mı? Seçin / say whether "
                                                        "the citizen was reached."})
    note = fields.String(load_default="", validate=validate.Length(max=2000))
