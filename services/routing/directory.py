"""The organisation directory (design §10) as an in-memory model built from the data file.

Institutions form a tree (ministry desk → governorship → provincial directorates; metropolitan
municipality → its departments and affiliates; district municipalities; outside institutions).
Lookups that routing makes per decision are prepared as dictionaries here, so a decision costs
the same whatever the size of the organisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


def place_key(name: str | None) -> str:
    """Turkish-aware, case- and space-insensitive key for a place name."""
    if not name:
        return ""
    text = name.strip().replace("I", "ı").replace("İ", "i").lower()
    return " ".join(text.split())


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


@dataclass
class Directory:
    institutions: dict[str, Institution]
    units: dict[str, Unit]
    staff: dict[str, dict]
    locations: dict[str, dict[str, list[str]]]  # province → district → neighbourhoods
    by_tier: dict[tuple[str, str, str], str] = field(default_factory=dict)
    overrides: dict[tuple[str, str, str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for inst in self.institutions.values():
            if inst.type in ("metropolitan", "governorship"):
                self.by_tier[(inst.type, place_key(inst.province), "")] = inst.code
            elif inst.type == "district":
                key = ("district", place_key(inst.province), place_key(inst.district))
                self.by_tier[key] = inst.code

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


def parse_directory(raw: dict) -> Directory:
    """Build the directory from the parsed organisation file."""
    institutions: dict[str, Institution] = {}
    units: dict[str, Unit] = {}
    overrides: dict[tuple[str, str, str, str], str] = {}
    for item in raw.get("institutions", []):
        area = item.get("area") or {}
        inst = Institution(
            code=item["code"], type=item["type"], name_tr=item["name_tr"],
            name_en=item.get("name_en", item["name_tr"]), parent=item.get("parent"),
            province=area.get("province"), district=area.get("district"),
            contact=dict(item.get("contact") or {}),
            coordination_unit=item.get("coordination_unit"),
            category_units=dict(item.get("category_units") or {}),
            head=dict(item.get("head") or {}),
        )
        institutions[inst.code] = inst
        for unit in item.get("units") or []:
            units[unit["code"]] = Unit(
                code=unit["code"], institution=inst.code, name_tr=unit["name_tr"],
                name_en=unit.get("name_en", unit["name_tr"]),
                experts=dict(unit.get("experts") or {}), supervisor=unit.get("supervisor"),
                director=unit.get("director"),
            )
        for rule in item.get("neighbourhood_overrides") or []:
            key = (inst.code, place_key(rule.get("district")), place_key(rule["neighbourhood"]),
                   rule["category"])
            overrides[key] = rule["unit"]
    locations = {
        place["province"]: {d["name"]: list(d.get("neighbourhoods") or [])
                            for d in place.get("districts") or []}
        for place in raw.get("locations", [])
    }
    staff = {person["code"]: person for person in raw.get("staff", [])}
    directory = Directory(institutions, units, staff, locations, overrides=overrides)
    _check_references(directory)
    return directory


def _check_references(directory: Directory) -> None:
    for inst in directory.institutions.values():
        for category, unit in inst.category_units.items():
            if unit not in directory.units:
                raise ValueError(f"{inst.code}: category {category} maps to unknown unit {unit}")
        if inst.coordination_unit and inst.coordination_unit not in directory.units:
            raise ValueError(f"{inst.code}: unknown coordination unit {inst.coordination_unit}")
    for unit in directory.overrides.values():
        if unit not in directory.units:
            raise ValueError(f"override names unknown unit {unit}")


def load_directory(path: str | Path) -> Directory:
    """Read and parse the organisation file."""
    with open(path, encoding="utf-8") as handle:
        return parse_directory(yaml.safe_load(handle) or {})
