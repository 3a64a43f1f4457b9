"""Routing's HTTP contracts: catalogue, directory admin, dry-run decisions, inbox, case actions.

Input schemas refuse unknown fields (marshmallow's default), so a misspelt field is a 422 that
names it, never silently ignored.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.auth import ROLES
from services.common.catalogue import TIERS
from services.common.events import CASE_STATES, CHANNELS, KINDS, PRIORITIES
from services.routing.directory import INSTITUTION_TYPES

CODE = validate.Regexp(r"^[a-z][a-z0-9_]*$", error="snake_case: a-z, 0-9 and _")
UNIT_CODE = validate.Regexp(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
                            error="<institution>.<unit>, snake_case")
STAFF_CODE = validate.Regexp(r"^[a-z][a-z0-9_]*-\d{4}$", error="<prefix>-NNNN")
NAME = validate.Length(1, 200)
TEXT = validate.Length(1, 2000)


def _text(**kwargs: Any) -> fields.String:
    return fields.String(validate=TEXT, **kwargs)


def _optional(**kwargs: Any) -> fields.String:
    return fields.String(load_default=None, allow_none=True, **kwargs)


# -- catalogue ----------------------------------------------------------------------------------

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
    version = fields.Integer()


class CategoryChangeSchema(Schema):
    """A category's fields; all required to create one, any subset to change one."""

    code = fields.String(required=True, validate=CODE)
    name_tr = fields.String(required=True, validate=NAME)
    name_en = fields.String(required=True, validate=NAME)
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), required=True,
                        validate=validate.Length(min=1))
    tier = fields.String(required=True, validate=validate.OneOf(TIERS))
    institution = fields.String(load_default=None, allow_none=True, validate=CODE)
    read_hours = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))
    resolve_hours = fields.Float(required=True,
                                 validate=validate.Range(min=0, min_inclusive=False))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    reopen_days = fields.Integer(load_default=15, validate=validate.Range(min=0, max=365))
    first_contact = fields.Boolean(load_default=False)
    muhtar = fields.Boolean(load_default=False)

    @validates_schema
    def _consistent(self, data: dict, partial: Any = None, **_: Any) -> None:
        if "read_hours" in data and "resolve_hours" in data and \
                data["read_hours"] > data["resolve_hours"]:
            raise ValidationError("must not be less than read_hours", "resolve_hours")
        if data.get("first_contact") and "kinds" in data and "information" not in data["kinds"]:
            raise ValidationError("only for a category whose kinds include information",
                                  "first_contact")


# -- directory ----------------------------------------------------------------------------------

class CategoryPatchSchema(CategoryChangeSchema):
    """Any subset of a category's fields but its code (load with `partial=True`)."""

    class Meta:
        exclude = ("code",)


class ContactSchema(Schema):
    phone = _optional(validate=validate.Length(max=40))
    web = _optional(validate=validate.Length(max=300))
    address = _optional(validate=validate.Length(max=500))


class AreaSchema(Schema):
    province = _optional(validate=NAME)
    district = _optional(validate=NAME)


class HeadSchema(Schema):
    title_tr = fields.String(required=True, validate=NAME)
    staff = fields.String(required=True, validate=STAFF_CODE)


class DeputySchema(Schema):
    title_tr = fields.String(required=True, validate=NAME)
    staff = fields.String(required=True, validate=STAFF_CODE)
    units = fields.List(fields.String(validate=UNIT_CODE), load_default=list)


class OverrideSchema(Schema):
    district = fields.String(required=True, validate=NAME)
    neighbourhood = fields.String(required=True, validate=NAME)
    category = fields.String(required=True, validate=CODE)
    unit = fields.String(required=True, validate=UNIT_CODE)


class OverrideKeySchema(Schema):
    district = fields.String(required=True, validate=NAME)
    neighbourhood = fields.String(required=True, validate=NAME)
    category = fields.String(required=True, validate=CODE)


class InstitutionChangeSchema(Schema):
    """An institution's own fields; units, staff and mappings have their own endpoints."""

    code = fields.String(required=True, validate=CODE)
    type = fields.String(required=True, validate=validate.OneOf(INSTITUTION_TYPES))
    name_tr = fields.String(required=True, validate=NAME)
    name_en = fields.String(required=True, validate=NAME)
    parent = fields.String(load_default=None, allow_none=True, validate=CODE)
    area = fields.Nested(AreaSchema, load_default=dict)
    contact = fields.Nested(ContactSchema, load_default=dict)
    head = fields.Nested(HeadSchema, load_default=None, allow_none=True)
    deputies = fields.List(fields.Nested(DeputySchema), load_default=list)
    coordination_unit = fields.String(load_default=None, allow_none=True, validate=UNIT_CODE)


class InstitutionPatchSchema(InstitutionChangeSchema):
    class Meta:
        exclude = ("code",)


class ExpertsSchema(Schema):
    primary = fields.String(required=True, validate=STAFF_CODE)
    backup = fields.String(required=True, validate=STAFF_CODE)


class UnitChangeSchema(Schema):
    """A unit: its primary and backup expert (seed 004: "1 asil ve 1 yedek"), supervisor and
    director."""

    code = fields.String(required=True, validate=UNIT_CODE)
    institution = fields.String(required=True, validate=CODE)
    name_tr = fields.String(required=True, validate=NAME)
    name_en = fields.String(required=True, validate=NAME)
    experts = fields.Nested(ExpertsSchema, required=True)
    supervisor = fields.String(required=True, validate=STAFF_CODE)
    director = fields.String(required=True, validate=STAFF_CODE)

    @validates_schema
    def _both_experts(self, data: dict, **_: Any) -> None:
        # a PATCH loads partially, and the nested experts with it: a primary alone would
        # replace the pair and leave the unit without its backup (seed 004: one of each)
        experts = data.get("experts")
        if experts is not None:
            missing = [name for name in ("primary", "backup") if not experts.get(name)]
            if missing:
                raise ValidationError({name: ["Missing data for required field."]
                                       for name in missing}, "experts")

    @validates_schema
    def _code_names_institution(self, data: dict, **_: Any) -> None:
        if "code" in data and "institution" in data and \
                not data["code"].startswith(f"{data['institution']}."):
            raise ValidationError("must start with the institution's code and a dot", "code")


class StaffChangeSchema(Schema):
    code = fields.String(required=True, validate=STAFF_CODE)
    name = fields.String(required=True, validate=NAME)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    institution = fields.String(required=True, validate=CODE)
    unit = fields.String(load_default=None, allow_none=True, validate=UNIT_CODE)
    phone = _optional(validate=validate.Regexp(r"^\+?[0-9 ]{7,20}$", error="a phone number"))
    email = _optional(validate=validate.Email())


class UnitPatchSchema(UnitChangeSchema):
    class Meta:
        exclude = ("code", "institution")


class StaffPatchSchema(StaffChangeSchema):
    class Meta:
        exclude = ("code",)


class MappingSchema(Schema):
    unit = fields.String(required=True, validate=UNIT_CODE)


class DistrictSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    neighbourhoods = fields.List(fields.String(validate=NAME), load_default=list)


class LocationsSchema(Schema):
    districts = fields.List(fields.Nested(DistrictSchema), required=True)


class StaffQuerySchema(Schema):
    institution = fields.String(validate=CODE)
    unit = fields.String(validate=UNIT_CODE)


class RouteQuerySchema(Schema):
    """Where an application would go: category and location, as intake would send them."""

    category = fields.String(required=True, validate=validate.Length(1, 100))
    province = fields.String(required=True, validate=NAME)
    district = fields.String(load_default=None, validate=NAME)
    neighbourhood = fields.String(load_default=None, validate=NAME)
    channel = fields.String(load_default="web", validate=validate.OneOf(CHANNELS))
    caller_type = fields.String(load_default="citizen", validate=validate.Length(1, 40))


class DecisionSchema(Schema):
    outcome = fields.String()
    tier = fields.String()
    institution = fields.String()
    institution_name = fields.String()
    unit = fields.String(allow_none=True)
    unit_name = fields.String(allow_none=True)
    rule = fields.String()
    contact = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))
    muhtar_desk = fields.String(allow_none=True)
    version = fields.Integer()


# -- cases ---------------------------------------------------------------------------------------

class InboxQuerySchema(Schema):
    unit = fields.String(validate=UNIT_CODE)
    institution = fields.String(validate=CODE)
    state = fields.List(fields.String(validate=validate.OneOf(CASE_STATES)))
    category = fields.String(validate=validate.Length(1, 100))
    received_from = fields.AwareDateTime()
    received_to = fields.AwareDateTime()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class CoordinationQuerySchema(Schema):
    """The coordination queue: `state` (repeatable; default the states a case can be
    dispatched from), paged as the inbox."""

    state = fields.List(fields.String(validate=validate.OneOf(CASE_STATES)))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class CaseStepSchema(Schema):
    at = fields.DateTime()
    state = fields.String()
    event = fields.String()
    by = fields.String(allow_none=True)
    rule = fields.String()
    reason = fields.String()
    result = fields.String()
    photo = fields.String()
    unit = fields.String(allow_none=True)
    from_unit = fields.String(allow_none=True)
    forwarded_to = fields.String()
    suggestion = fields.String()
    level = fields.Integer()


class DeadlinesSchema(Schema):
    """When the case's deadlines fall, as sla planned them (working time); None while the
    clock is paused (waiting for the citizen) or stopped."""

    read_due_at = fields.AwareDateTime(allow_none=True)
    resolve_due_at = fields.AwareDateTime(allow_none=True)
    clock = fields.String()
    planned_at = fields.AwareDateTime()


class CaseSummarySchema(Schema):
    application_id = fields.String()
    tracking_code = fields.String()
    state = fields.String()
    category = fields.String()
    kind = fields.String()
    channel = fields.String()
    priority = fields.String()
    location = fields.Dict()
    tier = fields.String()
    institution = fields.String()
    unit = fields.String(allow_none=True)
    rule = fields.String()
    muhtar = fields.Boolean()
    approved = fields.Boolean()
    escalation_level = fields.Integer()
    received_at = fields.DateTime()
    routed_at = fields.DateTime(allow_none=True)
    read_at = fields.DateTime(allow_none=True)
    # the inbox shows when each case is due (the staff console's list)
    deadlines = fields.Nested(DeadlinesSchema, allow_none=True)
    # a muhtar request waiting at the ministry desk: what the rules suggest (the desk's list)
    suggestion = fields.Dict(allow_none=True)


class CaseSchema(CaseSummarySchema):
    unit_name = fields.String(allow_none=True)
    institution_name = fields.String(allow_none=True)
    forwarded_to = fields.String(allow_none=True)
    result = fields.String(allow_none=True)
    photo = fields.String(allow_none=True)
    paused_from = fields.String(allow_none=True)
    referral = fields.Dict(allow_none=True)
    reopen_count = fields.Integer()
    closed_at = fields.DateTime(allow_none=True)
    history = fields.List(fields.Nested(CaseStepSchema))


class InboxSchema(Schema):
    items = fields.List(fields.Nested(CaseSummarySchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class NoteSchema(Schema):
    """acknowledge, start, resume, approve, close: an optional note."""

    reason = _text(load_default=None, allow_none=True)


class ReasonSchema(Schema):
    """return, wait, reject: why (required)."""

    reason = _text(required=True)


class TransferSchema(Schema):
    unit = fields.String(required=True, validate=UNIT_CODE)
    reason = _text(required=True)


class ResolveSchema(Schema):
    result = fields.String(required=True, validate=validate.Length(1, 4000))
    photo = _optional(validate=validate.Length(1, 500))  # a reference (URL or attachment id)
    reason = _text(load_default=None, allow_none=True)


class ForwardSchema(Schema):
    institution = _optional(validate=CODE)
    reason = _text(load_default=None, allow_none=True)


ACTION_SCHEMAS: dict[str, type[Schema]] = {
    "acknowledge": NoteSchema,
    "start": NoteSchema,
    "transfer": TransferSchema,
    "return": ReasonSchema,
    "wait": ReasonSchema,
    "resume": NoteSchema,
    "resolve": ResolveSchema,
    "approve": NoteSchema,
    "reject": ReasonSchema,
    "close": NoteSchema,
    "forward": ForwardSchema,
}
