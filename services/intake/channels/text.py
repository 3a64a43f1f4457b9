"""Free-text channels (SMS, WhatsApp, social media): "TCKN message" parsing and classification.

Seed 004: "xxxx numarasına vatandaş T.C. kimlik numarasını ve arada boşluk bırakarak istek ve
şikayetini yazarak belediyeye gönderebilir." A text message carries no category, kind or place,
so they are guessed from Turkish keywords (staff correct them later); what cannot be guessed
falls back to a general complaint in the default province.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.catalogue import Category
from services.common.tckn import is_tckn
from services.intake.domain import tr_fold

# Reason codes: what was wrong, as notify's reply templates name it (no text travels).
EMPTY, NO_TCKN, BAD_TCKN, NO_MESSAGE = "empty", "no_tckn", "bad_tckn", "no_message"
# "12345678901 mesaj", also "TC 12345678901 mesaj" / "T.C. Kimlik No: 123 456 789 01 mesaj"
_LEADING_NUMBER = re.compile(
    r"^\s*(?:t\.?\s?c\.?\s*(?:kimlik\s*)?(?:no)?\s*[:.]?\s*)?(\d[\d ]{0,14}\d|\d)\b",
    re.IGNORECASE)
_ELEVEN_DIGITS = re.compile(r"(?<!\d)\d{11}(?!\d)")


class TextRefused(Exception):
    """A text that cannot be accepted; `reason` is one of the reason codes above."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedText:
    tckn: str | None
    message: str


def parse_tckn_message(text: str | None, *, tckn_required: bool = True) -> ParsedText:
    """Split "TCKN message" (seed 004). A leading number must be a valid TCKN.

    Without a leading number the whole text is the message: refused when a TCKN is required
    (SMS), accepted without one otherwise (WhatsApp, social media).
    """
    text = (text or "").strip()
    if not text:
        raise TextRefused(EMPTY)
    match = _LEADING_NUMBER.match(text)
    if match:
        digits = match.group(1).replace(" ", "")
        if not is_tckn(digits):
            raise TextRefused(BAD_TCKN)
        message = text[match.end():].strip(" \t\r\n-:;,.")
        if not message:
            raise TextRefused(NO_MESSAGE)
        return ParsedText(digits, message)
    if tckn_required:
        raise TextRefused(NO_TCKN)
    return ParsedText(None, text)


def find_tckn(text: str) -> tuple[str | None, bool]:
    """The first 11-digit number in `text`: `(tckn, valid)`; `(None, True)` when there is none."""
    match = _ELEVEN_DIGITS.search(text or "")
    if not match:
        return None, True
    return match.group(0), is_tckn(match.group(0))


# Keyword stems (Turkish-folded) per category, most specific first.
_CATEGORY_WORDS: list[tuple[str, tuple[str, ...]]] = [
    ("water_leak", ("su patla", "boru patla", "su sızı", "su kaça", "su akıyor")),
    ("sewage", ("kanalizasyon", "lağım", "rögar", "foseptik")),
    ("flooding", ("su baskın", "sel ")),
    ("water_outage", ("su kesinti", "sular kesik", "su yok")),
    ("natural_gas", ("doğalgaz", "doğal gaz", "gaz koku")),
    ("street_lighting", ("sokak lamba", "aydınlatma", "lamba yanmı", "direk lamba")),
    ("electricity", ("elektrik",)),
    ("road_damage", ("çukur", "asfalt", "yol bozu", "yol çök", "kaldırım")),
    ("waste_collection", ("çöp",)),
    ("cleaning", ("temizlik", "pislik", "kirli")),
    ("noise", ("gürültü", "yüksek ses", "müzik sesi")),
    ("stray_animals", ("köpek", "sokak hayvan", "başıboş", "kedi")),
    ("tree_pruning", ("ağaç", "budama", "dal ")),
    ("park_maintenance", ("park",)),
    ("public_transport", ("otobüs", "durak", "dolmuş")),
    ("air_pollution", ("duman", "hava kirli", "koku")),
    ("traffic_signs", ("trafik", "tabela", "levha")),
]
_KIND_WORDS: list[tuple[str, str, tuple[str, ...]]] = [
    ("thanks", "thanks_general", ("teşekkür", "sağ olun", "tebrik")),
    ("suggestion", "suggestion_general", ("öneri", "öneriyorum", "tavsiye")),
    ("information", "information", ("bilgi almak", "öğrenmek istiyorum", "nedir", "ne zaman")),
]


def classify(message: str, catalogue: dict[str, Category]) -> tuple[str, str]:
    """`(kind, category)` guessed from keywords; a general complaint when nothing matches."""
    folded = f" {tr_fold(message)} "
    kind = "complaint"
    fallback = "complaint_general"
    for candidate_kind, category, words in _KIND_WORDS:
        if any(word in folded for word in words):
            kind, fallback = candidate_kind, category
            break
    for code, words in _CATEGORY_WORDS:
        category = catalogue.get(code)
        if category and any(word in folded for word in words):
            if kind in category.kinds:
                return kind, code
            if kind == "complaint" or kind not in ("thanks", "suggestion"):
                return category.kinds[0], code
    if fallback not in catalogue:
        fallback = next(iter(catalogue))
    category = catalogue[fallback]
    return (kind if kind in category.kinds else category.kinds[0]), fallback


def locate(message: str, places: dict[str, tuple[str, str, str]]) -> dict | None:
    """The neighbourhood a message names, if exactly one known neighbourhood is mentioned.

    `places` maps a folded neighbourhood name to `(province, district, neighbourhood)`.
    """
    folded = f" {tr_fold(message)} "
    found = {places[name] for name in places if f" {name} " in folded
             or f" {name} mah" in folded or f" {name}'" in folded}
    if len(found) != 1:
        return None
    province, district, neighbourhood = found.pop()
    return {"province": province, "district": district, "neighbourhood": neighbourhood}


def places_from_organisation(document: dict) -> dict[str, tuple[str, str, str]]:
    """Neighbourhood names (folded) → place, from organisation.yaml's `locations`; names that
    occur in two districts are left out (ambiguous)."""
    seen: dict[str, list[tuple[str, str, str]]] = {}
    for province in document.get("locations") or []:
        for district in province.get("districts") or []:
            for name in district.get("neighbourhoods") or []:
                seen.setdefault(tr_fold(name), []).append(
                    (province["province"], district["name"], name))
    return {name: found[0] for name, found in seen.items() if len(found) == 1}
