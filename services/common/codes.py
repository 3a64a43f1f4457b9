"""Tracking and security codes: intake issues them, tracking checks them.

The tracking code is 8 random characters from Crockford's base-32 alphabet (no I, L, O, U) plus a
Luhn mod 32 check character, shown as `XXX-XXX-XXX`: short, unambiguous over the phone, and a
typo is caught before any lookup. The security code is 10 characters (50 bits) from a CSPRNG; only
its keyed digest (HMAC-SHA256 with `CODE_PEPPER`) is stored or sent on the bus.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# What people type for what they mean (Crockford's decoding rules).
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V",
                             " ": None, "-": None, "_": None, ".": None})  # separators dropped
TRACKING_BODY = 8
SECURITY_LENGTH = 10


def _check_char(body: str) -> str:
    """Luhn mod N over the alphabet: catches every single-character error and most swaps."""
    factor, total, n = 2, 0, len(ALPHABET)
    for ch in reversed(body):
        addend = factor * _VALUE[ch]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def _random_chars(count: int) -> str:
    """`count` characters of the alphabet from the OS CSPRNG, uniformly.

    The alphabet has 32 symbols, so each is exactly 5 random bits: one draw serves the whole
    code (a draw per character was one system call per character).
    """
    bits = secrets.randbits(5 * count)
    return "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(count))


def new_tracking_code() -> str:
    """A fresh tracking code, canonical form (9 characters, no dashes)."""
    body = _random_chars(TRACKING_BODY)
    return body + _check_char(body)


def display_tracking_code(code: str) -> str:
    """`K7M4QX2D9` → `K7M-4QX-2D9`."""
    return "-".join(code[i:i + 3] for i in range(0, len(code), 3))


def _clean(text: str) -> str:
    return text.upper().translate(_CONFUSABLE)


def normalise_tracking_code(text: str) -> str | None:
    """The canonical code for what someone typed, or None if it cannot be a tracking code."""
    code = _clean(text or "")
    if len(code) != TRACKING_BODY + 1 or any(ch not in _VALUE for ch in code):
        return None
    return code if _check_char(code[:-1]) == code[-1] else None


def new_security_code() -> str:
    """A fresh security code: 50 bits from the OS CSPRNG."""
    return _random_chars(SECURITY_LENGTH)


def normalise_security_code(text: str) -> str:
    """Canonical form of a typed security code (case, dashes and look-alikes forgiven)."""
    return _clean(text or "")


def security_digest(pepper: str, security_code: str) -> str:
    """The keyed digest of a security code; what is stored and compared."""
    canonical = normalise_security_code(security_code)
    return hmac.digest(pepper.encode(), canonical.encode(), hashlib.sha256).hex()


def digests_match(expected: str, given: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(expected.encode(), given.encode())
