"""Signed links sent by SMS (design §9): open an application's status without typing the codes.

The token is an itsdangerous `URLSafeTimedSerializer` signature over the application id only —
never a code — keyed by `LINK_SECRET` (shared by notify, which writes the link, and tracking,
which opens it). It carries its signing time, so a link expires after `max_age` seconds.
"""
from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "acikkapi.track-link.v1"
# Generous: the last SMS about an application may come weeks after the first.
DEFAULT_MAX_AGE = 180 * 24 * 3600


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_link_token(secret: str, application_id: str) -> str:
    """A URL-safe signed token naming `application_id`."""
    return _serializer(secret).dumps(application_id)


def read_link_token(secret: str, token: str, max_age: int = DEFAULT_MAX_AGE) -> str | None:
    """The application id a token names, or None if it is forged, damaged or expired."""
    if not token or len(token) > 200:
        return None
    try:
        value = _serializer(secret).loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is a BadSignature too
        return None
    return value if isinstance(value, str) else None
