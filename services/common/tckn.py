"""The TC Kimlik No check intake and tracking share: exactly what a citizen's card shows.

python-stdnum checks the two check digits (design §9), but it also forgives: it strips
surrounding whitespace and folds full-width or other Unicode digits to ASCII before checking.
A number accepted that way was stored as typed, so ` 10000000146` and `10000000146` became two
citizens (their keyed hashes differ). Here the form is strict first: eleven ASCII digits, no
leading zero, then stdnum's checksum.
"""
from __future__ import annotations

import re

from stdnum.tr import tckimlik

_FORM = re.compile(r"[1-9][0-9]{10}")


def is_tckn(value: object) -> bool:
    """True for a well-formed TC Kimlik No as it is stored: 11 ASCII digits, checksums right."""
    return isinstance(value, str) and bool(_FORM.fullmatch(value)) and tckimlik.is_valid(value)
