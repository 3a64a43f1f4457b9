"""What tracking needs from the organisation file: places and the institutions' jurisdictions.

Routing owns the organisation directory; tracking reads the same data file (as intake reads the
catalogue) for two things only: the provinces, districts and neighbourhoods offered in the muhtar
portal's and Open311's forms, and each institution as an Open311 jurisdiction — identified, as the
specification suggests, by its web site's host without `www.` (`mersin.bel.tr`), its code
(`mersin_bb`) accepted too — with the area it covers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from services.common.places import place_key


@dataclass(frozen=True)
class Jurisdiction:
    id: str  # the public jurisdiction_id
    institution: str
    name_tr: str
    name_en: str
    province: str | None  # the area it covers; None for the whole country
    district: str | None


@dataclass(frozen=True)
class Organisation:
    # province → district → neighbourhoods, as written in the file
    places: dict[str, dict[str, list[str]]]
    jurisdictions: dict[str, Jurisdiction]  # by jurisdiction_id
    aliases: dict[str, str]  # institution code → jurisdiction_id

    def jurisdiction(self, given: str | None) -> Jurisdiction | None:
        """The jurisdiction a client named (by id or institution code), if any."""
        if not given:
            return None
        key = given.strip().lower()
        if key.startswith("www."):
            key = key[4:]
        return self.jurisdictions.get(key) or self.jurisdictions.get(self.aliases.get(key, ""))

    def province_of(self, district: str | None) -> str | None:
        """The province a district name belongs to (None if unknown or ambiguous)."""
        found = [province for province, districts in self.places.items()
                 if any(place_key(name) == place_key(district) for name in districts)]
        return found[0] if len(found) == 1 else None

    def district(self, name: str | None) -> str | None:
        """A district's name as the file writes it."""
        for districts in self.places.values():
            for known in districts:
                if place_key(known) == place_key(name):
                    return known
        return None


def _host(web: str | None) -> str | None:
    if not web:
        return None
    host = (urlparse(web).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host or None


def parse_organisation(raw: dict) -> Organisation:
    """Places and jurisdictions from the parsed organisation document."""
    places: dict[str, dict[str, list[str]]] = {}
    for province in raw.get("locations") or []:
        districts = places.setdefault(province["province"], {})
        for district in province.get("districts") or []:
            districts[district["name"]] = list(district.get("neighbourhoods") or [])
    jurisdictions: dict[str, Jurisdiction] = {}
    aliases: dict[str, str] = {}
    for item in raw.get("institutions") or []:
        area = item.get("area") or {}
        jid = _host((item.get("contact") or {}).get("web")) or item["code"]
        if jid in jurisdictions:  # two institutions on one web site: fall back to the code
            jid = item["code"]
        jurisdictions[jid] = Jurisdiction(jid, item["code"], item["name_tr"],
                                          item.get("name_en") or item["name_tr"],
                                          area.get("province"), area.get("district"))
        aliases[item["code"].lower()] = jid
    return Organisation(places, jurisdictions, aliases)


def load_organisation(path: str | Path) -> Organisation:
    """Read and parse the organisation file."""
    with open(path, encoding="utf-8") as handle:
        return parse_organisation(yaml.safe_load(handle) or {})
