"""Staff tokens: signed JWTs carrying the user, role, unit and institution (design §8).

`staff_required` guards Flask views; `python -m services.common.auth mint …` mints a token for
local use. Tokens are HS256-signed with `STAFF_TOKEN_SECRET` and expire.
"""
from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass
from datetime import timedelta

import jwt
from flask import current_app, g, request
from flask_smorest import abort

from services.common.events import utcnow

ROLES = (
    "expert", "supervisor", "director", "deputy_mayor", "mayor", "governor", "coordinator",
    "ministry_officer", "admin",
)
ISSUER = "acikkapi"


@dataclass(frozen=True)
class Staff:
    user: str
    role: str
    unit: str | None
    institution: str | None


def mint_token(
    secret: str,
    user: str,
    role: str,
    unit: str | None = None,
    institution: str | None = None,
    ttl: timedelta = timedelta(hours=8),
) -> str:
    """A signed staff token."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    now = utcnow()
    claims = {"sub": user, "role": role, "unit": unit, "inst": institution, "iss": ISSUER,
              "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Staff:
    """The staff member a token names; raises `jwt.InvalidTokenError` if it is not valid."""
    claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                        options={"require": ["sub", "role", "exp"]})
    if claims["role"] not in ROLES:
        raise jwt.InvalidTokenError("unknown role")
    return Staff(claims["sub"], claims["role"], claims.get("unit"), claims.get("inst"))


def staff_required(*roles: str):
    """Require a valid staff token (and one of `roles`, if given); sets `g.staff`."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                abort(401, message="staff token required (Authorization: Bearer …)",
                      errors={"headers": {"Authorization": ["missing bearer token"]}})
            secret = current_app.config["ACIKKAPI"]["STAFF_TOKEN_SECRET"]
            try:
                staff = verify_token(secret, header[len("Bearer "):].strip())
            except jwt.InvalidTokenError:
                abort(401, message="invalid or expired staff token",
                      errors={"headers": {"Authorization": ["invalid or expired token"]}})
            if roles and staff.role not in roles:
                abort(403, message=f"role {staff.role} may not do this",
                      errors={"role": [f"one of {', '.join(roles)} required"]})
            g.staff = staff
            return view(*args, **kwargs)

        return wrapper

    return decorate


def main(argv: list[str] | None = None) -> None:
    """`mint` prints a token for local use."""
    from services.common.config import load_config

    parser = argparse.ArgumentParser(prog="python -m services.common.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    mint = sub.add_parser("mint", help="print a staff token")
    mint.add_argument("--user", required=True)
    mint.add_argument("--role", required=True, choices=ROLES)
    mint.add_argument("--unit")
    mint.add_argument("--institution")
    mint.add_argument("--hours", type=float, default=8)
    args = parser.parse_args(argv)
    secret = load_config()["STAFF_TOKEN_SECRET"]
    print(mint_token(secret, args.user, args.role, args.unit, args.institution,
                     timedelta(hours=args.hours)))


if __name__ == "__main__":
    main()
