"""Directory and catalogue administration as pure changes to the stored records.

Each change takes the current `Records` (the flat directory and the category records, as stored)
and returns the changed records plus the writes that store them. `validate` then rebuilds the
directory and the catalogue from the changed records and lists the problems the change
*introduced* (a dangling unit, a mapping into another institution, an unknown staff code …), so
nothing inconsistent is ever stored and one old flaw does not block unrelated edits. Refusals
carry the HTTP status they mean: 404 no such record, 409 it exists / is still referenced,
422 the change would make the directory inconsistent. Pure: no Flask, no pymongo.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from services.common.catalogue import parse_categories
from services.common.events import make_event
from services.routing.directory import (
    Problem,
    check_directory,
    parse_directory,
    place_key,
    references_to,
)

KINDS = ("institutions", "units", "staff", "locations", "categories")
SINGULAR = {"institutions": "institution", "units": "unit", "staff": "staff",
            "locations": "province", "categories": "category"}


class ChangeRefused(Exception):
    """A directory change that cannot be made; `status` is the HTTP status it means."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.errors = errors or {}


@dataclass
class Records:
    """The stored records: `flat` holds locations / institutions / units / staff."""

    flat: dict
    categories: list[dict]
    version: int = 0
    writes: list[tuple[str, str, dict | str]] = field(default_factory=list)

    def items(self, kind: str) -> list[dict]:
        return self.categories if kind == "categories" else self.flat.setdefault(kind, [])

    def find(self, kind: str, code: str) -> dict | None:
        key = "province" if kind == "locations" else "code"
        return next((item for item in self.items(kind) if item.get(key) == code), None)

    def copy(self) -> Records:
        # the writes so far travel along, so changes can be chained into one
        return Records(copy.deepcopy(self.flat), copy.deepcopy(self.categories), self.version,
                       list(self.writes))

    def save(self, kind: str, record: dict) -> None:
        key = "province" if kind == "locations" else "code"
        items = self.items(kind)
        for i, item in enumerate(items):
            if item.get(key) == record[key]:
                items[i] = record
                break
        else:
            items.append(record)
        self.writes.append(("save", kind, record))

    def add(self, kind: str, record: dict) -> None:
        """Save a record that must be new: stored by an insert, refused if one came meanwhile."""
        self.save(kind, record)
        self.writes[-1] = ("create", kind, record)

    def delete(self, kind: str, code: str) -> None:
        key = "province" if kind == "locations" else "code"
        items = self.items(kind)
        items[:] = [item for item in items if item.get(key) != code]
        self.writes.append(("delete", kind, code))


def build(records: Records):
    """(directory, catalogue) from the records; ChangeRefused(422) if they cannot be parsed."""
    try:
        catalogue = parse_categories({"categories": records.categories})
        directory = parse_directory(records.flat, records.version)
    except (KeyError, ValueError, TypeError) as exc:
        raise ChangeRefused(422, f"the directory would not be readable: {exc}") from exc
    return directory, catalogue


def problems_of(records: Records) -> list[Problem]:
    directory, catalogue = build(records)
    return check_directory(directory, catalogue)


def validate(new: Records, old: Records, kind: str, code: str) -> None:
    """Raise ChangeRefused(422) naming the fields if `new` has problems `old` did not."""
    before = set(problems_of(old))
    introduced = [p for p in problems_of(new) if p not in before]
    if not introduced:
        return
    errors: dict[str, list[str]] = {}
    for problem in introduced:
        if problem.kind == SINGULAR[kind] and problem.code == code:
            errors.setdefault(problem.field, []).append(problem.message)
        else:  # the change broke another record: say which
            errors.setdefault(f"{problem.kind}:{problem.code}", []).append(
                f"{problem.field}: {problem.message}")
    first_field, first = next(iter(errors.items()))
    raise ChangeRefused(422, f"{first_field}: {first[0]}", {"json": errors})


# -- generic record changes ---------------------------------------------------------------------

def create(records: Records, kind: str, record: dict) -> Records:
    code = record["province" if kind == "locations" else "code"]
    if records.find(kind, code) is not None:
        raise ChangeRefused(409, f"{SINGULAR[kind]} {code} already exists",
                            {"json": {"code": ["already exists"]}})
    new = records.copy()
    new.add(kind, record)
    validate(new, records, kind, code)
    return new


def update(records: Records, kind: str, code: str, fields: dict) -> Records:
    current = records.find(kind, code)
    if current is None:
        raise ChangeRefused(404, f"no such {SINGULAR[kind]} {code}")
    new = records.copy()
    new.save(kind, {**copy.deepcopy(current), **copy.deepcopy(fields)})
    validate(new, records, kind, code)
    return new


def delete(records: Records, kind: str, code: str) -> Records:
    if records.find(kind, code) is None:
        raise ChangeRefused(404, f"no such {SINGULAR[kind]} {code}")
    if kind != "locations":
        directory, catalogue = build(records)
        still = references_to(directory, catalogue, SINGULAR[kind], code)
        if still:
            raise ChangeRefused(409, f"{SINGULAR[kind]} {code} is still referenced: {still[0]}",
                                {"json": {"references": still}})
    new = records.copy()
    new.delete(kind, code)
    validate(new, records, kind, code)
    return new


# -- an institution's own rules -----------------------------------------------------------------

def set_mapping(records: Records, institution: str, category: str, unit: str) -> Records:
    """Institution `institution` sends `category` to `unit` (one of its own units or a child's)."""
    current = _institution(records, institution)
    mapping = dict(current.get("category_units") or {}, **{category: unit})
    return update(records, "institutions", institution, {"category_units": mapping})


def delete_mapping(records: Records, institution: str, category: str) -> Records:
    current = _institution(records, institution)
    mapping = dict(current.get("category_units") or {})
    if category not in mapping:
        raise ChangeRefused(404, f"{institution} maps no unit for {category}")
    del mapping[category]
    return update(records, "institutions", institution, {"category_units": mapping})


def _override_key(rule: dict) -> tuple[str, str, str]:
    return (place_key(rule.get("district")), place_key(rule.get("neighbourhood")),
            rule.get("category") or "")


def set_override(records: Records, institution: str, rule: dict) -> Records:
    """Add or replace the neighbourhood override for (district, neighbourhood, category)."""
    current = _institution(records, institution)
    key = _override_key(rule)
    rules = [r for r in current.get("neighbourhood_overrides") or [] if _override_key(r) != key]
    rules.append(dict(rule))
    return update(records, "institutions", institution, {"neighbourhood_overrides": rules})


def delete_override(records: Records, institution: str, rule: dict) -> Records:
    current = _institution(records, institution)
    key = _override_key(rule)
    rules = current.get("neighbourhood_overrides") or []
    kept = [r for r in rules if _override_key(r) != key]
    if len(kept) == len(rules):
        raise ChangeRefused(404, f"{institution} has no such neighbourhood override")
    return update(records, "institutions", institution, {"neighbourhood_overrides": kept})


def _institution(records: Records, code: str) -> dict:
    found = records.find("institutions", code)
    if found is None:
        raise ChangeRefused(404, f"no such institution {code}")
    return found


# -- categories: the API's flat SLA fields ↔ the file's nested `sla` -----------------------------

def category_record(fields: dict) -> dict:
    """A category as stored (the catalogue file's shape) from the API's flat fields."""
    record = {k: v for k, v in fields.items() if k not in ("read_hours", "resolve_hours")}
    if "read_hours" in fields or "resolve_hours" in fields:
        record["sla"] = {k: fields[k] for k in ("read_hours", "resolve_hours") if k in fields}
    return record


def merge_category(current: dict, fields: dict) -> dict:
    """`current` (stored shape) with the API's partial `fields` applied."""
    merged = {**copy.deepcopy(current), **category_record(fields)}
    merged["sla"] = {**(current.get("sla") or {}), **(category_record(fields).get("sla") or {})}
    return merged


def update_category(records: Records, code: str, fields: dict) -> Records:
    """Change some of a category's fields (the API's flat SLA fields included)."""
    current = records.find("categories", code)
    if current is None:
        raise ChangeRefused(404, f"no such category {code}")
    return update(records, "categories", code, merge_category(current, fields))


# -- what consumers of the catalogue are told ---------------------------------------------------

def category_saved(record: dict, *, removed: bool = False) -> dict:
    """The `category_saved` event for a stored category record: its public definition."""
    category = parse_categories({"categories": [record]})[record["code"]]
    return make_event("category_saved", f"category:{category.code}",
                      dict(category.to_dict(), removed=removed))


def category_events(old: list[dict], new: list[dict], codes: set[str] | None = None
                    ) -> dict[str, dict]:
    """code → `category_saved` for each category whose definition differs between the
    `old` and `new` records (limited to `codes` if given); removed ones carry their last."""
    before = {c["code"]: c for c in old}
    after = {c["code"]: c for c in new}
    events = {}
    for code in (codes if codes is not None else before.keys() | after.keys()):
        if code in after:
            if code in before and _definition(before[code]) == _definition(after[code]):
                continue
            events[code] = category_saved(after[code])
        elif code in before:
            events[code] = category_saved(before[code], removed=True)
    return events


def _definition(record: dict) -> dict:
    return parse_categories({"categories": [record]})[record["code"]].to_dict()
