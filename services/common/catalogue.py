"""The category catalogue (design §10): its file and its categories — pure, no I/O beyond reading
the file.

Routing owns the catalogue: it seeds its database from `CATALOGUE_PATH` and lets admins create,
change and remove categories through its API, emitting `category_saved` in the write that stores
each change. Intake and tracking keep their own copy (`services.common.catalogue_cache`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

TIERS = ("metropolitan", "district", "governorship", "named", "outside", "coordination")


@dataclass(frozen=True)
class Category:
    code: str
    name_tr: str
    name_en: str
    kinds: tuple[str, ...]
    tier: str
    institution: str | None = None
    read_hours: float = 24
    resolve_hours: float = 72
    priority: str = "normal"
    reopen_days: int = 15
    first_contact: bool = False
    muhtar: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {
            "code": self.code, "name_tr": self.name_tr, "name_en": self.name_en,
            "kinds": list(self.kinds), "tier": self.tier, "institution": self.institution,
            "read_hours": self.read_hours, "resolve_hours": self.resolve_hours,
            "priority": self.priority, "reopen_days": self.reopen_days,
            "first_contact": self.first_contact, "muhtar": self.muhtar,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Category:
        """The inverse of `to_dict` (a `category_saved` event's data, or what was stored)."""
        return cls(
            code=data["code"], name_tr=data["name_tr"], name_en=data["name_en"],
            kinds=tuple(data.get("kinds") or ()), tier=data["tier"],
            institution=data.get("institution"),
            read_hours=float(data.get("read_hours", 24)),
            resolve_hours=float(data.get("resolve_hours", 72)),
            priority=data.get("priority", "normal"), reopen_days=int(data.get("reopen_days", 15)),
            first_contact=bool(data.get("first_contact", False)),
            muhtar=bool(data.get("muhtar", False)),
        )


def parse_categories(raw: dict) -> dict[str, Category]:
    """Categories from the parsed YAML document, keyed by code."""
    result: dict[str, Category] = {}
    for item in raw.get("categories", []):
        sla = item.get("sla") or {}
        category = Category(
            code=item["code"],
            name_tr=item["name_tr"],
            name_en=item["name_en"],
            kinds=tuple(item.get("kinds") or ()),
            tier=item["tier"],
            institution=item.get("institution"),
            read_hours=float(sla.get("read_hours", 24)),
            resolve_hours=float(sla.get("resolve_hours", 72)),
            priority=item.get("priority", "normal"),
            reopen_days=int(item.get("reopen_days", 15)),
            first_contact=bool(item.get("first_contact", False)),
            muhtar=bool(item.get("muhtar", False)),
        )
        if category.tier not in TIERS:
            raise ValueError(f"category {category.code}: unknown tier {category.tier}")
        if category.code in result:
            raise ValueError(f"category {category.code} listed twice")
        result[category.code] = category
    return result


def load_categories(path: str | Path) -> dict[str, Category]:
    """Read and parse the catalogue file."""
    with open(path, encoding="utf-8") as handle:
        return parse_categories(yaml.safe_load(handle) or {})
