"""The organisation directory (design §10) as an in-memory model, and its consistency checks.

Institutions form a tree (ministry desk → governorship → provincial directorates; metropolitan
municipality → its departments and affiliates; district municipalities; outside institutions).
The directory is *data*: seeded from `data/sample/organisation.yaml`, kept in routing's database
and changed through the admin API. Its stored ("flat") form is a dict of plain documents:

    {"locations": [...], "institutions": [...], "units": [...], "staff": [...]}

where a unit names its institution (the YAML file nests units under their institution instead;
`flatten` turns one into the other). `parse_directory` builds the indexes routing decides with —
dictionaries keyed for the decision — so a decision costs the same whatever the size of the
organisation; `check_directory` lists every dangling reference. Pure: no nameko, no pymongo.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.common.catalogue import Category
from services.common.places import place_key

INSTITUTION_TYPES = (
    "ministry_desk", "governorship", "provincial_directorate", "metropolitan", "district",
    "named", "outside",
)
# Institution types a tier picks by location, and a muhtar request may be forwarded to.
ROUTABLE_TYPES = ("governorship", "metropolitan", "district", "named")


@dataclass(frozen=True)
class Unit:
    code: str
    institution: str
    name_tr: str
    name_en: str
    experts: dict = field(default_factory=dict, compare=False)
    supervisor: str | None = None
    director: str | None = None


@dataclass(frozen=True)
class Institution:
    code: str
    type: str
    name_tr: str
    name_en: str
    parent: str | None
    province: str | None
    district: str | None
    contact: dict
    coordination_unit: str | None
    category_units: dict
    head: dict = field(default_factory=dict, compare=False)
    deputies: tuple = field(default=(), compare=False)
    overrides: tuple = field(default=(), compare=False)


@dataclass
class Directory:
    institutions: dict[str, Institution]
    units: dict[str, Unit]
    staff: dict[str, dict]
    locations: dict[str, dict[str, list[str]]]  # province → district → neighbourhoods
    by_tier: dict[tuple[str, str, str], str] = field(default_factory=dict)
    overrides: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    version: int = 0
    units_of: dict[str, list[str]] = field(default_factory=dict)  # institution → its units
    children: dict[str, list[str]] = field(default_factory=dict)  # institution → child insts
    # staff code → positions held: ("expert" | "supervisor" | "director", unit) or
    # ("deputy" | "head", institution)
    positions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for inst in self.institutions.values():
            if inst.type in ("metropolitan", "governorship"):
                self.by_tier.setdefault((inst.type, place_key(inst.province), ""), inst.code)
            elif inst.type == "district":
                key = ("district", place_key(inst.province), place_key(inst.district))
                self.by_tier.setdefault(key, inst.code)
            if inst.parent:
                self.children.setdefault(inst.parent, []).append(inst.code)
            if (inst.head or {}).get("staff"):
                self.positions.setdefault(inst.head["staff"], []).append(("head", inst.code))
            for deputy in inst.deputies:
                if deputy.get("staff"):
                    self.positions.setdefault(deputy["staff"], []).append(("deputy", inst.code))
        for unit in self.units.values():
            self.units_of.setdefault(unit.institution, []).append(unit.code)
            people = [("expert", (unit.experts or {}).get("primary")),
                      ("expert", (unit.experts or {}).get("backup")),
                      ("supervisor", unit.supervisor), ("director", unit.director)]
            for kind, code in people:
                if code:
                    self.positions.setdefault(code, []).append((kind, unit.code))

    def institution_for(self, tier: str, province: str | None, district: str | None) -> str | None:
        """The institution of `tier` whose area covers the location, if any."""
        if tier == "district":
            return self.by_tier.get(("district", place_key(province), place_key(district)))
        return self.by_tier.get((tier, place_key(province), ""))

    def override(self, institution: str, district: str | None, neighbourhood: str | None,
                 category: str) -> str | None:
        """A neighbourhood-level unit override of an institution, if one is set."""
        if not neighbourhood:
            return None
        return self.overrides.get(
            (institution, place_key(district), place_key(neighbourhood), category))

    def coordination_unit_for(self, province: str | None) -> str:
        """Where anything nobody covers lands: the province's metropolitan coordination centre."""
        metro = self.institution_for("metropolitan", province, None)
        if metro and self.institutions[metro].coordination_unit:
            return self.institutions[metro].coordination_unit
        for inst in self.institutions.values():  # unknown province: the first coordination centre
            if inst.type == "metropolitan" and inst.coordination_unit:
                return inst.coordination_unit
        raise LookupError("the directory has no coordination centre")

    def ministry_desk(self) -> str | None:
        """The unit where muhtar requests wait for the ministry (seed 003), if there is one."""
        for inst in self.institutions.values():
            if inst.type == "ministry_desk" and inst.coordination_unit:
                return inst.coordination_unit
        return None

    def ladder(self, unit_code: str) -> list[dict]:
        """The unit's escalation ladder (design §4): level 0 its primary and backup experts,
        1 its supervisor, 2 its director, 3 the deputy mayor (or deputy governor) over it,
        4 the head of its institution. `who` lists `(position, staff code)` pairs, first the
        one to notify; a level nobody holds is empty."""
        unit = self.units.get(unit_code)
        if unit is None:
            raise KeyError(unit_code)
        inst = self.institutions.get(unit.institution)
        deputy = next((d for d in (inst.deputies if inst else ())
                       if unit_code in (d.get("units") or [])), None)
        levels = [
            [("primary", (unit.experts or {}).get("primary")),
             ("backup", (unit.experts or {}).get("backup"))],
            [("supervisor", unit.supervisor)],
            [("director", unit.director)],
            [("deputy", (deputy or {}).get("staff"))],
            [("head", (inst.head or {}).get("staff") if inst else None)],
        ]
        return [{"level": level, "who": [(position, code) for position, code in people if code]}
                for level, people in enumerate(levels)]

    def ancestry(self, institution: str) -> list[str]:
        """`institution` and the institutions above it, nearest first (a governorship over
        its provincial directorates, a metropolitan municipality over its departments)."""
        chain: list[str] = []
        code: str | None = institution
        while code and code not in chain:
            chain.append(code)
            inst = self.institutions.get(code)
            code = inst.parent if inst else None
        return chain

    def family(self, institution: str) -> set[str]:
        """`institution` and every institution below it in the tree."""
        found, todo = set(), [institution]
        while todo:
            code = todo.pop()
            if code not in found:
                found.add(code)
                todo.extend(self.children.get(code, ()))
        return found


def flatten(raw: dict) -> dict:
    """The YAML file's shape (units nested in institutions) → the stored, flat shape."""
    institutions, units = [], []
    for item in raw.get("institutions") or []:
        inst = {k: copy.deepcopy(v) for k, v in item.items() if k != "units"}
        institutions.append(inst)
        for unit in item.get("units") or []:
            units.append(dict(copy.deepcopy(unit), institution=item["code"]))
    units.extend(copy.deepcopy(raw.get("units") or []))
    return {
        "locations": copy.deepcopy(raw.get("locations") or []),
        "institutions": institutions,
        "units": units,
        "staff": copy.deepcopy(raw.get("staff") or []),
    }


def parse_directory(raw: dict, version: int = 0) -> Directory:
    """Build the directory from its flat form (or the file's nested form)."""
    flat = raw if "units" in raw else flatten(raw)
    institutions: dict[str, Institution] = {}
    units: dict[str, Unit] = {}
    overrides: dict[tuple[str, str, str, str], str] = {}
    for item in flat.get("institutions", []):
        area = item.get("area") or {}
        rules = tuple(dict(rule) for rule in item.get("neighbourhood_overrides") or [])
        inst = Institution(
            code=item["code"], type=item["type"], name_tr=item["name_tr"],
            name_en=item.get("name_en") or item["name_tr"], parent=item.get("parent"),
            province=area.get("province"), district=area.get("district"),
            contact=dict(item.get("contact") or {}),
            coordination_unit=item.get("coordination_unit"),
            category_units=dict(item.get("category_units") or {}),
            head=dict(item.get("head") or {}),
            deputies=tuple(dict(d) for d in item.get("deputies") or []),
            overrides=rules,
        )
        institutions[inst.code] = inst
        for rule in rules:
            key = (inst.code, place_key(rule.get("district")), place_key(rule["neighbourhood"]),
                   rule["category"])
            overrides[key] = rule["unit"]
    for unit in flat.get("units", []):
        units[unit["code"]] = Unit(
            code=unit["code"], institution=unit["institution"], name_tr=unit["name_tr"],
            name_en=unit.get("name_en") or unit["name_tr"],
            experts=dict(unit.get("experts") or {}), supervisor=unit.get("supervisor"),
            director=unit.get("director"),
        )
    locations = {
        place["province"]: {d["name"]: list(d.get("neighbourhoods") or [])
                            for d in place.get("districts") or []}
        for place in flat.get("locations", [])
    }
    staff = {person["code"]: dict(person) for person in flat.get("staff", [])}
    return Directory(institutions, units, staff, locations, overrides=overrides, version=version)


@dataclass(frozen=True)
class Problem:
    """One inconsistency: which record (`kind`, `code`), which of its fields, and what."""

    kind: str
    code: str
    field: str
    message: str


def check_directory(directory: Directory,
                    catalogue: dict[str, Category] | None = None) -> list[Problem]:
    """Every dangling or contradictory reference in the directory (and the catalogue)."""
    problems: list[Problem] = []
    insts, units, staff = directory.institutions, directory.units, directory.staff

    def bad(kind: str, code: str, field_name: str, message: str) -> None:
        problems.append(Problem(kind, code, field_name, message))

    for inst in insts.values():
        if inst.type not in INSTITUTION_TYPES:
            bad("institution", inst.code, "type", f"unknown type {inst.type}")
        if inst.parent and inst.parent not in insts:
            bad("institution", inst.code, "parent", f"unknown institution {inst.parent}")
        if _parent_chain_loops(insts, inst.code):
            bad("institution", inst.code, "parent", "the parent chain loops")
        if inst.type == "district" and not inst.district:
            bad("institution", inst.code, "area.district", "a district municipality needs one")
        if inst.type in (*ROUTABLE_TYPES, "provincial_directorate", "outside") and \
                not inst.province:
            bad("institution", inst.code, "area.province", "required for this type")
        if inst.coordination_unit and (inst.coordination_unit not in units or
                                       units[inst.coordination_unit].institution != inst.code):
            bad("institution", inst.code, "coordination_unit",
                f"{inst.coordination_unit} is not a unit of {inst.code}")
        for category, unit in inst.category_units.items():
            if unit not in units:
                bad("institution", inst.code, f"category_units.{category}",
                    f"unknown unit {unit}")
            elif units[unit].institution not in directory.family(inst.code):
                bad("institution", inst.code, f"category_units.{category}",
                    f"{unit} belongs to neither {inst.code} nor an institution under it")
            if catalogue is not None and category not in catalogue:
                bad("institution", inst.code, f"category_units.{category}",
                    f"unknown category {category}")
        for rule in inst.overrides:
            name = f"neighbourhood_overrides.{rule.get('district')}/{rule.get('neighbourhood')}"
            unit = rule.get("unit")
            if unit not in units or units[unit].institution not in directory.family(inst.code):
                bad("institution", inst.code, name, f"{unit} is not a unit of {inst.code}")
            if catalogue is not None and rule.get("category") not in catalogue:
                bad("institution", inst.code, name, f"unknown category {rule.get('category')}")
        people = [("head.staff", (inst.head or {}).get("staff"))]
        people += [(f"deputies.{i}.staff", d.get("staff")) for i, d in enumerate(inst.deputies)]
        for field_name, code in people:
            if code and code not in staff:
                bad("institution", inst.code, field_name, f"unknown staff {code}")
        for i, deputy in enumerate(inst.deputies):
            for unit in deputy.get("units") or []:
                if unit not in units or units[unit].institution != inst.code:
                    bad("institution", inst.code, f"deputies.{i}.units",
                        f"{unit} is not a unit of {inst.code}")
    for unit in units.values():
        if unit.institution not in insts:
            bad("unit", unit.code, "institution", f"unknown institution {unit.institution}")
        for field_name, code in (("experts.primary", unit.experts.get("primary")),
                                 ("experts.backup", unit.experts.get("backup")),
                                 ("supervisor", unit.supervisor), ("director", unit.director)):
            if code and code not in staff:
                bad("unit", unit.code, field_name, f"unknown staff {code}")
    for person in staff.values():
        if person.get("institution") and person["institution"] not in insts:
            bad("staff", person["code"], "institution",
                f"unknown institution {person['institution']}")
        if person.get("unit") and person["unit"] not in units:
            bad("staff", person["code"], "unit", f"unknown unit {person['unit']}")
    for category in (catalogue or {}).values():
        if not 0 < category.read_hours <= category.resolve_hours:
            bad("category", category.code, "resolve_hours",
                "read_hours must be positive and not more than resolve_hours")
        if not category.kinds:
            bad("category", category.code, "kinds", "at least one kind")
        if category.tier in ("named", "outside"):
            inst = insts.get(category.institution or "")
            wanted = category.tier
            if inst is None:
                bad("category", category.code, "institution",
                    f"tier {wanted} needs an institution of type {wanted}")
            elif inst.type != wanted:
                bad("category", category.code, "institution",
                    f"{inst.code} is of type {inst.type}, not {wanted}")
        elif category.institution:
            bad("category", category.code, "institution", f"must be null for tier {category.tier}")
    return problems


def _parent_chain_loops(insts: dict[str, Institution], code: str) -> bool:
    seen, current = set(), code
    while current in insts and insts[current].parent:
        if current in seen:
            return True
        seen.add(current)
        current = insts[current].parent
    return False


def references_to(directory: Directory, catalogue: dict[str, Category], kind: str,
                  code: str) -> list[str]:
    """What still names record `code` of `kind` (a deletion is refused while any remain)."""
    found: list[str] = []
    if kind == "unit":
        for inst in directory.institutions.values():
            if inst.coordination_unit == code:
                found.append(f"institution {inst.code}: coordination_unit")
            found += [f"institution {inst.code}: category_units.{cat}"
                      for cat, unit in inst.category_units.items() if unit == code]
            found += [f"institution {inst.code}: neighbourhood override "
                      f"{rule['district']}/{rule['neighbourhood']}/{rule['category']}"
                      for rule in inst.overrides if rule.get("unit") == code]
            found += [f"institution {inst.code}: deputies"
                      for d in inst.deputies if code in (d.get("units") or [])]
        found += [f"staff {p['code']}: unit" for p in directory.staff.values()
                  if p.get("unit") == code]
    elif kind == "staff":
        found += [f"{kind_}: {where}" for kind_, where in directory.positions.get(code, [])]
    elif kind == "institution":
        found += [f"unit {u}" for u in directory.units_of.get(code, [])]
        found += [f"institution {c}: parent" for c in directory.children.get(code, [])]
        found += [f"category {c.code}: institution" for c in catalogue.values()
                  if c.institution == code]
        found += [f"staff {p['code']}: institution" for p in directory.staff.values()
                  if p.get("institution") == code]
    elif kind == "category":
        for inst in directory.institutions.values():
            if code in inst.category_units:
                found.append(f"institution {inst.code}: category_units.{code}")
            found += [f"institution {inst.code}: neighbourhood override "
                      f"{rule['district']}/{rule['neighbourhood']}"
                      for rule in inst.overrides if rule.get("category") == code]
    return found


def read_organisation_file(path: str | Path) -> dict:
    """The organisation file in the stored (flat) shape."""
    with open(path, encoding="utf-8") as handle:
        return flatten(yaml.safe_load(handle) or {})


def load_directory(path: str | Path) -> Directory:
    """Read and parse the organisation file (raises ValueError if it is inconsistent)."""
    directory = parse_directory(read_organisation_file(path))
    problems = check_directory(directory)
    if problems:
        first = problems[0]
        raise ValueError(f"{first.kind} {first.code}: {first.field}: {first.message}")
    return directory
