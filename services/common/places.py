"""Place names as keys: how routing and tracking compare provinces, districts, neighbourhoods."""
from __future__ import annotations


def place_key(name: str | None) -> str:
    """Turkish-aware, case- and space-insensitive key for a place name ("İSKELE" = "iskele")."""
    if not name:
        return ""
    text = name.strip().replace("I", "ı").replace("İ", "i").lower()
    return " ".join(text.split())
