"""The directory and the catalogue over HTTP: views for staff, changes for admins.

Views (any staff token): the organisation tree, institutions, a unit with its people and its
escalation ladder, locations, staff records (admins and coordinators; with an `inst` claim that
institution's and those under it), and `GET /api/v1/directory/route` — where an application
would go, with the rule that matched (a dry run of the routing decision). The category list is
public. Changes (role admin or coordinator; see `access.check_directory_change` for the
institution claim) are validated against the whole directory before they are stored, and the
in-memory directory is rebuilt before the answer: the next decision uses them. The role is
checked first (`staff_required(*DIRECTORY_ROLES)`, before the body is read or the record looked
up), so any other role gets a 403 and learns nothing of the schema or of which codes exist.
"""
from __future__ import annotations

from flask_smorest import Blueprint, abort

from services.common.auth import staff_required
from services.routing import admin
from services.routing.access import DIRECTORY_ROLES, Denied, check_directory_change
from services.routing.cases import OPEN_STATES
from services.routing.domain import decide, is_muhtar_request
from services.routing.organisation import OrganisationCache
from services.routing.schemas import (
    CategoryChangeSchema,
    CategoryListSchema,
    CategoryPatchSchema,
    CategorySchema,
    DecisionSchema,
    InstitutionChangeSchema,
    InstitutionPatchSchema,
    LocationsSchema,
    MappingSchema,
    OverrideKeySchema,
    OverrideSchema,
    RouteQuerySchema,
    StaffChangeSchema,
    StaffPatchSchema,
    StaffQuerySchema,
    UnitChangeSchema,
    UnitPatchSchema,
)
from services.routing.store import RoutingStore
from services.routing.web import current_actor, deny, refuse

STAFF_DOC = {"security": [{"staffToken": []}]}
# Changing these re-draws the map (who covers where, who sits above whom): system-wide only.
SYSTEM_WIDE_INSTITUTION_FIELDS = ("type", "parent", "area")


def _may_change(institution: str | None) -> None:
    try:
        check_directory_change(current_actor(), institution)
    except Denied as exc:
        deny(exc)


def _change(cache: OrganisationCache, make) -> None:
    try:
        cache.change(make)
    except admin.ChangeRefused as exc:
        refuse(exc)


def categories_blueprint(cache: OrganisationCache) -> Blueprint:
    blp = Blueprint("categories", __name__, url_prefix="/api/v1/categories",
                    description="Kategori kataloğu / category catalogue")

    @blp.route("", methods=["GET"])
    @blp.response(200, CategoryListSchema)
    def list_categories():
        """Every category: code, Turkish and English names, kinds, tier, SLA, reopen days."""
        org = cache.current()
        return {"items": [c.to_dict() for c in org.catalogue.values()],
                "total": len(org.catalogue), "version": org.version}

    @blp.route("", methods=["POST"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(CategoryChangeSchema)
    @blp.response(201, CategorySchema)
    @blp.doc(**STAFF_DOC)
    def create_category(data: dict):
        """Add a category (system-wide admin)."""
        _may_change(None)
        _change(cache, lambda records: admin.create(records, "categories",
                                                    admin.category_record(data)))
        return cache.current().catalogue[data["code"]].to_dict()

    @blp.route("/<code>", methods=["GET"])
    @blp.response(200, CategorySchema)
    def get_category(code: str):
        """One category."""
        category = cache.current().catalogue.get(code)
        if category is None:
            abort(404, message=f"no such category {code}")
        return category.to_dict()

    @blp.route("/<code>", methods=["PATCH"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(CategoryPatchSchema(partial=True))
    @blp.response(200, CategorySchema)
    @blp.doc(**STAFF_DOC)
    def update_category(data: dict, code: str):
        """Change a category's names, kinds, tier, SLA, priority or reopen days."""
        _may_change(None)
        _change(cache, lambda records: admin.update_category(records, code, data))
        return cache.current().catalogue[code].to_dict()

    @blp.route("/<code>", methods=["DELETE"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.response(204)
    @blp.doc(**STAFF_DOC)
    def delete_category(code: str):
        """Remove a category no institution maps any more."""
        _may_change(None)
        _change(cache, lambda records: admin.delete(records, "categories", code))

    return blp


def directory_blueprint(store: RoutingStore, cache: OrganisationCache) -> Blueprint:
    blp = Blueprint("directory", __name__, url_prefix="/api/v1/directory",
                    description="Kurum rehberi / organisation directory")

    # -- views -----------------------------------------------------------------------------

    @blp.route("/tree", methods=["GET"])
    @staff_required()
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def tree():
        """The organisation tree: institutions under their parents, each with its units."""
        org = cache.current()
        directory = org.directory

        def node(code: str) -> dict:
            inst = directory.institutions[code]
            return {
                "code": inst.code, "type": inst.type, "name_tr": inst.name_tr,
                "name_en": inst.name_en,
                "area": {"province": inst.province, "district": inst.district},
                "head": inst.head or None,
                "coordination_unit": inst.coordination_unit,
                "units": [_unit_brief(directory.units[u])
                          for u in directory.units_of.get(code, [])],
                "children": [node(child) for child in directory.children.get(code, [])],
            }

        roots = [code for code, inst in directory.institutions.items()
                 if not inst.parent or inst.parent not in directory.institutions]
        return {"version": org.version, "institutions": [node(code) for code in roots]}

    @blp.route("/institutions", methods=["GET"])
    @staff_required()
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def list_institutions():
        """Every institution, briefly."""
        org = cache.current()
        items = [{"code": i.code, "type": i.type, "name_tr": i.name_tr, "name_en": i.name_en,
                  "parent": i.parent, "area": {"province": i.province, "district": i.district}}
                 for i in org.directory.institutions.values()]
        return {"items": items, "total": len(items), "version": org.version}

    @blp.route("/institutions/<code>", methods=["GET"])
    @staff_required()
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def get_institution(code: str):
        """An institution: area, contact, head and deputies, units, its own mappings and
        neighbourhood overrides."""
        record = cache.records().find("institutions", code)
        if record is None:
            abort(404, message=f"no such institution {code}")
        org = cache.current()
        units = [_unit_brief(org.directory.units[u])
                 for u in org.directory.units_of.get(code, [])]
        return dict(record, units=units, version=org.version)

    @blp.route("/units/<code>", methods=["GET"])
    @staff_required()
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def get_unit(code: str):
        """A unit with its people and its escalation ladder (levels 0–4), and what routes
        to it."""
        directory = cache.current().directory
        unit = directory.units.get(code)
        if unit is None:
            abort(404, message=f"no such unit {code}")
        inst = directory.institutions.get(unit.institution)

        def person(position: str, staff_code: str | None) -> dict | None:
            if not staff_code:
                return None
            found = directory.staff.get(staff_code, {})
            return {"position": position, "code": staff_code, "name": found.get("name"),
                    "role": found.get("role")}

        ladder = [{"level": step["level"],
                   "who": [person(position, staff) for position, staff in step["who"]]}
                  for step in directory.ladder(code)]
        members = [person("member", s["code"]) for s in directory.staff.values()
                   if s.get("unit") == code]
        mapped = sorted(f"{i.code}:{cat}" for i in directory.institutions.values()
                        for cat, u in i.category_units.items() if u == code)
        overrides = [dict(rule, institution=i.code) for i in directory.institutions.values()
                     for rule in i.overrides if rule.get("unit") == code]
        return dict(_unit_brief(unit), institution_name=inst.name_tr if inst else None,
                    escalation=ladder, staff=members, categories=mapped, overrides=overrides)

    @blp.route("/staff", methods=["GET"])
    @staff_required("admin", "coordinator")
    @blp.arguments(StaffQuerySchema, location="query")
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def list_staff(query: dict):
        """Staff records (admins and coordinators), by institution or unit; a token with an
        `inst` claim sees that institution's and those under it only."""
        directory = cache.current().directory
        within = _staff_scope(directory)
        if within is not None and query.get("institution") \
                and query["institution"] not in within:
            deny(Denied(f"only the staff of {current_actor().institution} and the institutions "
                        "under it", "inst"))
        items = [s for s in directory.staff.values()
                 if (within is None or s.get("institution") in within)
                 and (not query.get("institution") or s.get("institution") == query["institution"])
                 and (not query.get("unit") or s.get("unit") == query["unit"])]
        return {"items": items, "total": len(items)}

    @blp.route("/staff/<code>", methods=["GET"])
    @staff_required("admin", "coordinator")
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def get_staff(code: str):
        """One staff record and the positions it holds."""
        directory = cache.current().directory
        person = directory.staff.get(code)
        if person is None:
            abort(404, message=f"no such staff {code}")
        within = _staff_scope(directory)
        if within is not None and person.get("institution") not in within:
            deny(Denied(f"staff {code} is not of {current_actor().institution} or an institution "
                        "under it", "inst"))
        positions = [{"position": kind, "of": where}
                     for kind, where in directory.positions.get(code, [])]
        return dict(person, positions=positions)

    @blp.route("/locations", methods=["GET"])
    @staff_required()
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def list_locations():
        """The area model: province → districts → neighbourhoods."""
        return {"items": cache.records().items("locations")}

    @blp.route("/route", methods=["GET"])
    @staff_required()
    @blp.arguments(RouteQuerySchema, location="query")
    @blp.response(200, DecisionSchema)
    @blp.doc(**STAFF_DOC)
    def dry_run(query: dict):
        """Where an application of this category and location would go, and by which rule.

        Nothing is stored. A muhtar request (channel or caller_type `muhtar`) first waits at
        the ministry desk (`muhtar_desk`); the decision shown is the one the desk is offered.
        """
        org = cache.current()
        directory = org.directory
        location = {k: query.get(k) for k in ("province", "district", "neighbourhood")}
        decision = decide(org.catalogue.get(query["category"]), query["category"], location,
                          directory)
        inst = directory.institutions[decision.institution]
        unit = directory.units.get(decision.unit or "")
        return dict(decision.to_dict(), institution_name=inst.name_tr,
                    unit_name=unit.name_tr if unit else None, version=org.version,
                    muhtar_desk=directory.ministry_desk() if is_muhtar_request(query) else None)

    # -- changes -------------------------------------------------------------------------

    @blp.route("/institutions", methods=["POST"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(InstitutionChangeSchema)
    @blp.response(201)
    @blp.doc(**STAFF_DOC)
    def create_institution(data: dict):
        """Add an institution (system-wide admin); then its units, staff and mappings."""
        _may_change(None)
        record = dict(data, category_units={}, neighbourhood_overrides=[])
        _change(cache, lambda records: admin.create(records, "institutions", record))
        return cache.records().find("institutions", data["code"])

    @blp.route("/institutions/<code>", methods=["PATCH"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(InstitutionPatchSchema(partial=True))
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def update_institution(data: dict, code: str):
        """Change an institution's names, contact, head, deputies or coordination unit (its
        own admins); its type, parent or area (system-wide admin)."""
        redraws = any(name in data for name in SYSTEM_WIDE_INSTITUTION_FIELDS)
        _may_change(None if redraws else code)
        _change(cache, lambda records: admin.update(records, "institutions", code, data))
        return cache.records().find("institutions", code)

    @blp.route("/institutions/<code>", methods=["DELETE"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.response(204)
    @blp.doc(**STAFF_DOC)
    def delete_institution(code: str):
        """Remove an institution with no units, children, staff or categories left."""
        _may_change(None)
        if store.has_open_cases(institution=code, open_states=OPEN_STATES):
            abort(409, message=f"institution {code} still holds open cases")
        _change(cache, lambda records: admin.delete(records, "institutions", code))

    @blp.route("/institutions/<code>/mappings/<category>", methods=["PUT"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(MappingSchema)
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def set_mapping(data: dict, code: str, category: str):
        """The institution's own rule: `category` goes to `unit` (one of its units, or of an
        institution under it). Each institution maintains its own."""
        _may_change(code)
        _change(cache, lambda records: admin.set_mapping(records, code, category, data["unit"]))
        return {"institution": code, "category": category, "unit": data["unit"],
                "version": cache.current().version}

    @blp.route("/institutions/<code>/mappings/<category>", methods=["DELETE"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.response(204)
    @blp.doc(**STAFF_DOC)
    def delete_mapping(code: str, category: str):
        """Drop a mapping: the category then lands in the institution's coordination unit."""
        _may_change(code)
        _change(cache, lambda records: admin.delete_mapping(records, code, category))

    @blp.route("/institutions/<code>/overrides", methods=["PUT"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(OverrideSchema)
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def set_override(data: dict, code: str):
        """A neighbourhood override: in this neighbourhood, this category goes to `unit`
        (beats the institution's mapping). Replaces the one with the same key."""
        _may_change(code)
        _change(cache, lambda records: admin.set_override(records, code, data))
        return dict(data, institution=code, version=cache.current().version)

    @blp.route("/institutions/<code>/overrides", methods=["DELETE"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(OverrideKeySchema, location="query")
    @blp.response(204)
    @blp.doc(**STAFF_DOC)
    def delete_override(query: dict, code: str):
        """Remove the override for (district, neighbourhood, category)."""
        _may_change(code)
        _change(cache, lambda records: admin.delete_override(records, code, query))

    @blp.route("/units", methods=["POST"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(UnitChangeSchema)
    @blp.response(201)
    @blp.doc(**STAFF_DOC)
    def create_unit(data: dict):
        """Add a unit to an institution, with its primary and backup expert, supervisor and
        director (existing staff codes)."""
        _may_change(data["institution"])
        _change(cache, lambda records: admin.create(records, "units", data))
        return _unit_brief(cache.current().directory.units[data["code"]])

    @blp.route("/units/<code>", methods=["PATCH"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(UnitPatchSchema(partial=True))
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def update_unit(data: dict, code: str):
        """Change a unit's names or people."""
        _may_change(_owner(cache, "units", code))
        _change(cache, lambda records: admin.update(records, "units", code, data))
        return _unit_brief(cache.current().directory.units[code])

    @blp.route("/units/<code>", methods=["DELETE"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.response(204)
    @blp.doc(**STAFF_DOC)
    def delete_unit(code: str):
        """Remove a unit nothing routes to any more and that holds no open case."""
        _may_change(_owner(cache, "units", code))
        if store.has_open_cases(unit=code, open_states=OPEN_STATES):
            abort(409, message=f"unit {code} still holds open cases; transfer them first")
        _change(cache, lambda records: admin.delete(records, "units", code))

    @blp.route("/staff", methods=["POST"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(StaffChangeSchema)
    @blp.response(201)
    @blp.doc(**STAFF_DOC)
    def create_staff(data: dict):
        """Add a staff member."""
        _may_change(data["institution"])
        _change(cache, lambda records: admin.create(records, "staff", data))
        return cache.current().directory.staff[data["code"]]

    @blp.route("/staff/<code>", methods=["PATCH"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(StaffPatchSchema(partial=True))
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def update_staff(data: dict, code: str):
        """Change a staff member's record (moving to another institution: system-wide)."""
        owner = _owner(cache, "staff", code)
        _may_change(None if data.get("institution", owner) != owner else owner)
        _change(cache, lambda records: admin.update(records, "staff", code, data))
        return cache.current().directory.staff[code]

    @blp.route("/staff/<code>", methods=["DELETE"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.response(204)
    @blp.doc(**STAFF_DOC)
    def delete_staff(code: str):
        """Remove a staff member who holds no position any more."""
        _may_change(_owner(cache, "staff", code))
        _change(cache, lambda records: admin.delete(records, "staff", code))

    @blp.route("/locations/<province>", methods=["PUT"])
    @staff_required(*DIRECTORY_ROLES)
    @blp.arguments(LocationsSchema)
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def set_locations(data: dict, province: str):
        """Replace a province's districts and neighbourhoods (system-wide admin)."""
        _may_change(None)
        record = {"province": province, "districts": data["districts"]}

        def make(records: admin.Records) -> admin.Records:
            if records.find("locations", province) is None:
                return admin.create(records, "locations", record)
            return admin.update(records, "locations", province, record)

        _change(cache, make)
        return record

    @blp.route("/reload", methods=["POST"])
    @staff_required("admin")
    @blp.response(200)
    @blp.doc(**STAFF_DOC)
    def reload_files():
        """Replace the stored directory and catalogue with the data files (system-wide admin).
        Every admin change made since is lost."""
        _may_change(None)
        try:
            org = cache.reload_files()
        except ValueError as exc:
            abort(422, message=str(exc))
        return {"version": org.version, "institutions": len(org.directory.institutions),
                "units": len(org.directory.units), "categories": len(org.catalogue)}

    return blp


def _staff_scope(directory) -> set[str] | None:
    """The institutions whose staff records (phones, e-mails: personal data) the caller may
    read: with an `inst` claim that institution and those under it, as for cases; else all."""
    institution = current_actor().institution
    return None if institution is None else directory.family(institution)


def _owner(cache: OrganisationCache, kind: str, code: str) -> str:
    """The institution a unit or staff record belongs to (404 if there is no such record)."""
    directory = cache.current().directory
    if kind == "units":
        if code not in directory.units:
            abort(404, message=f"no such unit {code}")
        return directory.units[code].institution
    if code not in directory.staff:
        abort(404, message=f"no such staff {code}")
    return directory.staff[code].get("institution")


def _unit_brief(unit) -> dict:
    return {"code": unit.code, "institution": unit.institution, "name_tr": unit.name_tr,
            "name_en": unit.name_en, "experts": dict(unit.experts),
            "supervisor": unit.supervisor, "director": unit.director}
