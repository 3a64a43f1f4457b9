"""The muhtar portal's rules (seed 003): challenge, one-time code, session, the three lists.

Pure: no nameko, no pymongo, no Flask. Login is TCKN + name + a challenge → a six-character
one-time code by SMS to the muhtar's registered phone → a session. Only keyed digests of the
challenge answer and of the code are ever stored (HMAC under a key derived from `CODE_PEPPER`,
bound to the random id of the challenge or login, so a digest cannot be replayed elsewhere).

The challenge is a small sum or product asked in words, Turkish and English ("Yedi artı dört kaç
eder?"): it needs no image, so a screen reader can read it (WCAG), and it is drawn, checked and
spent on our side with no third party. It only slows scripted logins down; what protects the
portal is the per-client rate limit and the code sent to the registered phone.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from services.common.codes import display_tracking_code
from services.tracking import domain

CAPTCHA_TTL = timedelta(minutes=10)
CODE_TTL = timedelta(minutes=5)
CODE_ATTEMPTS = 5
SESSION_TTL = timedelta(hours=8)
CODE_LENGTH = 6
# No 0/O, 1/I/L, 2/Z, 5/S, 8/B, G/6: unambiguous when read off a phone screen.
CODE_ALPHABET = "34679ACDEFHJKMNPQRTUVWXY"
PENDING, ACTIVE = "pending", "active"

_WORDS_TR = ("sıfır", "bir", "iki", "üç", "dört", "beş", "altı", "yedi", "sekiz", "dokuz")
_WORDS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def portal_key(pepper: str) -> bytes:
    """The HMAC key of the portal's digests, derived from `CODE_PEPPER`."""
    return hmac.new(pepper.encode(), b"acikkapi.muhtar-portal", hashlib.sha256).digest()


def digest(key: bytes, bound_to: str, secret: str) -> str:
    """The keyed digest of `secret` (an answer, a code) bound to a challenge or login id."""
    normal = "".join(secret.split()).upper()
    return hmac.new(key, f"{bound_to}:{normal}".encode(), hashlib.sha256).hexdigest()


def new_id(expires_at: datetime) -> str:
    """A random, unguessable id for a challenge, a login or a session, led by its expiry (epoch
    seconds, hex): the store keeps it with what expires at the same time, and drops it whole."""
    return f"{int(expires_at.timestamp()):x}.{secrets.token_urlsafe(24)}"


def new_challenge() -> tuple[str, str, str]:
    """A question in Turkish and English and its answer (digits)."""
    a, b = secrets.randbelow(8) + 2, secrets.randbelow(8) + 2
    if secrets.randbelow(2):
        return (f"{_WORDS_TR[a].capitalize()} artı {_WORDS_TR[b]} kaç eder?",
                f"What is {_WORDS_EN[a]} plus {_WORDS_EN[b]}?", str(a + b))
    return (f"{_WORDS_TR[a].capitalize()} çarpı {_WORDS_TR[b]} kaç eder?",
            f"What is {_WORDS_EN[a]} times {_WORDS_EN[b]}?", str(a * b))


def new_one_time_code() -> str:
    """Six characters from the unambiguous alphabet, from the OS CSPRNG."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_login(key: bytes, citizen_ref: str | None, code: str, now: datetime) -> dict:
    """A pending login waiting for its code. An unknown person gets one too (with no ref and
    a code nobody was sent), so the next step looks and costs the same either way."""
    expires_at = now + CODE_TTL
    login_id = new_id(expires_at)
    return {"_id": login_id, "state": PENDING, "citizen_ref": citizen_ref,
            "digest": digest(key, login_id, code), "attempts": 0, "expires_at": expires_at}


def code_matches(key: bytes, login: dict | None, code: str, now: datetime) -> bool:
    """Whether `code` opens `login` now (constant-time). `attempts` is this attempt's number
    (the store counts it); past `CODE_ATTEMPTS` nothing opens it."""
    if login is None or login.get("state") != PENDING:
        return False
    fresh = login["expires_at"] > now and login.get("attempts", 0) <= CODE_ATTEMPTS
    matched = hmac.compare_digest(login["digest"], digest(key, login["_id"], code))
    return bool(fresh and matched and login.get("citizen_ref"))


def new_session(citizen_ref: str, now: datetime) -> dict:
    """An active portal session (a fresh id: the login id is never reused as a session)."""
    expires_at = now + SESSION_TTL
    return {"_id": new_id(expires_at), "state": ACTIVE, "citizen_ref": citizen_ref,
            "expires_at": expires_at}


def session_valid(entry: dict | None, now: datetime) -> bool:
    return bool(entry and entry.get("state") == ACTIVE and entry["expires_at"] > now
                and entry.get("citizen_ref"))


def request_summary(doc: dict, category_names: dict[str, tuple[str, str]]) -> dict:
    """One of the muhtar's requests as the lists show it: date, subject, place, movements.

    The description the muhtar wrote lives in intake; the lists show the subject (category)
    and the place instead, which is what the request is filed under.
    """
    names = category_names.get(doc.get("category") or "", (doc.get("category"), None))
    location = doc.get("location") or {}
    return {
        "tracking_code": display_tracking_code(doc["tracking_code"]),
        "received_at": doc.get("received_at"),
        "updated_at": doc.get("updated_at"),
        "category_tr": names[0],
        "category_en": names[1],
        "place": ", ".join(p for p in (location.get("neighbourhood"), location.get("district"),
                                       location.get("province")) if p),
        "status_tr": domain.status_text(doc.get("status"))[0],
        "status_en": domain.status_text(doc.get("status"))[1],
        "institution": (doc.get("institution") or {}).get("name"),
        "unit": (doc.get("unit") or {}).get("name"),
        "result": domain.current_result(doc),
        "timeline": doc.get("timeline") or [],
        "list": domain.muhtar_list(doc.get("status")),
    }


def group_requests(docs: list[dict],
                   category_names: dict[str, tuple[str, str]]) -> dict[str, list[dict]]:
    """Pending / Forwarded / Concluded, each newest first."""
    groups: dict[str, list[dict]] = {domain.PENDING: [], domain.FORWARDED: [],
                                     domain.CONCLUDED_LIST: []}
    for doc in docs:
        if not domain.is_visible(doc):
            continue
        summary = request_summary(doc, category_names)
        groups[summary["list"]].append(summary)
    return groups
