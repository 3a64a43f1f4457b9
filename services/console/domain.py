"""The console's rules, pure (no Flask, no pymongo): who needs a second factor, how login
failures are counted in windows, when a session has expired, where a role's links lead, which
case actions a page offers.

The case actions offered are read from routing's own rules (`services.routing.access`'s
`ACTIONS_OF_ROLE` and `services.routing.cases`' `TRANSITIONS`, pure modules imported, not
copied): a form is shown only for what routing would accept, and routing still decides every
POST (its 403, 409 and 422 are shown on the page).

Login throttling counts failures per account and per client address in fixed windows of
`WINDOW_SECONDS`. A failure is one insert-once document `<scope>|<window>|<n>` (the store tries
n = 1, 2, … until an insert succeeds): on FerretDB a concurrent `$inc` loses updates, an insert
of a unique `_id` never does, so concurrent failures each win their own n and the count is
exact. An attempt takes its slot *before* the password is checked, and gives it back when the
password was right: so at most `limit` wrong passwords are ever checked in a window, however
many arrive at once. Whoever wins slot `limit` (or a slot past it) stores `<scope>|<window>|limit`;
while that marker exists the scope is locked, which costs one read by `_id` to check.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.auth import ROLES
from services.reporting.domain import CALLBACK_ROLES
from services.routing.access import ACTIONS_OF_ROLE, CENTRAL_ROLES
from services.routing.cases import TRANSITIONS

# The mayor's office and the administrators reach the most: a password alone is not enough.
TOTP_ROLES = frozenset({"admin", "mayor"})
# Roles whose unit has an inbox of cases in routing (the inbox page).
INBOX_ROLES = frozenset({"expert", "supervisor", "director"})
# The desk and call-centre page (seed 004's simplified form): the coordination centre's staff
# receive citizens and calls; intake decides every filing again.
DESK_ROLES = frozenset({"coordinator", "admin"})
# The mayor's office page: what reached the top (SLA lists it for these roles) and, for
# reporting's `CALLBACK_ROLES`, the weekly call-back list. The services decide each call again.
OFFICE_ROLES = frozenset({"mayor", "deputy_mayor", "governor", "coordinator", "admin"})
WINDOW_SECONDS = 15 * 60
PENDING_SECONDS = 5 * 60  # between the password and the TOTP code
LOGIN_CSRF_SECONDS = 60 * 60  # the login form's own token
TOKEN_MINUTES = 5  # the staff tokens minted for calls to the services


def requires_totp(role: str) -> bool:
    """Whether `role` must give a TOTP code after the password."""
    return role in TOTP_ROLES


def check_role(role: str) -> str:
    """`role` if it is a staff role the services know; ValueError otherwise."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return role


def normalise_user(user: str) -> str:
    """A staff code as typed (spaces, capitals) as it is stored: `mez-0008`."""
    return user.strip().lower()


@dataclass(frozen=True)
class Window:
    """The fixed throttle window `at` falls in: its number and when it ends."""

    index: int
    ends: datetime

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window ends (at least 1)."""
        return max(1, math.ceil((self.ends - now).total_seconds()))


def window_of(now: datetime, seconds: int = WINDOW_SECONDS) -> Window:
    """The window `now` falls in (windows are aligned to the epoch)."""
    index = int(now.timestamp() // seconds)
    ends = datetime.fromtimestamp((index + 1) * seconds, tz=now.tzinfo)
    return Window(index, ends)


def scope_key(secret: str, kind: str, subject: str) -> str:
    """What a throttle scope is stored as: its kind in the clear, the subject (a staff code,
    a client address) keyed and hashed, so the store holds no address in the clear."""
    digest = hmac.new(secret.encode(), f"{kind}:{subject}".encode(), hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:32]}"


def slot_id(scope: str, window: Window, n: int) -> str:
    """The `_id` of the n-th failure of `scope` in `window`."""
    return f"{scope}|{window.index}|{n}"


def limit_id(scope: str, window: Window) -> str:
    """The `_id` of the marker that locks `scope` for the rest of `window`."""
    return f"{scope}|{window.index}|limit"


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives: `idle` since it was last used, `absolute` since login."""

    idle: timedelta
    absolute: timedelta

    def expired(self, created: datetime, last_seen: datetime, now: datetime) -> bool:
        """Whether a session created at `created`, last used at `last_seen`, is over."""
        return now - last_seen >= self.idle or now - created >= self.absolute

    def expires_at(self, created: datetime, last_seen: datetime) -> datetime:
        """When such a session ends if it is not used again."""
        return min(last_seen + self.idle, created + self.absolute)


def policy_from(config: dict) -> SessionPolicy:
    """The session policy `CONSOLE_IDLE_MINUTES` and `CONSOLE_SESSION_HOURS` set."""
    return SessionPolicy(idle=timedelta(minutes=float(config.get("CONSOLE_IDLE_MINUTES", 30))),
                         absolute=timedelta(hours=float(config.get("CONSOLE_SESSION_HOURS", 8))))


# Touching `last_seen` on every request would be a write per page; once a minute is enough
# for an idle limit counted in minutes (a session may live up to this much longer).
TOUCH_EVERY = timedelta(seconds=60)


def needs_touch(last_seen: datetime, now: datetime) -> bool:
    """Whether a session's `last_seen` is old enough to be written again."""
    return now - last_seen >= TOUCH_EVERY


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def secure_cookie(host: str, setting: str = "auto") -> bool:
    """Whether the console's cookies are `Secure`: always, except for a request to this
    machine's loopback (plain-HTTP local runs) unless `setting` is "always"; "never" is only
    for tests behind plain HTTP on another name."""
    if setting == "always":
        return True
    if setting == "never":
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("["):
        name = host.split("]")[0] + "]"
    return name.lower() not in LOCAL_HOSTS


@dataclass(frozen=True)
class Link:
    href: str
    label_tr: str
    label_en: str


# The case actions the console's case page offers, in the order of a case's life; `forward`
# is the ministry desk's (a muhtar request waiting there), also on the coordination page.
CASE_ACTIONS = ("forward", "acknowledge", "start", "wait", "resume", "resolve", "transfer",
                "return", "approve", "reject", "close")
APPROVAL_ACTIONS = frozenset({"approve", "reject"})


def may_approve(role: str) -> bool:
    """Whether routing lets `role` approve resolutions (the approval queue's roles)."""
    return "approve" in ACTIONS_OF_ROLE.get(role, frozenset())


def may_conclude(role: str) -> bool:
    """Whether routing lets `role` close approved resolutions (the coordination centre's
    queue of cases to conclude)."""
    return "close" in ACTIONS_OF_ROLE.get(role, frozenset())


def may_dispatch(role: str) -> bool:
    """Whether routing gives `role` the coordination queue (what no rule matched) to transfer
    from: the coordination centre and the administrators."""
    return role in CENTRAL_ROLES and "transfer" in ACTIONS_OF_ROLE.get(role, frozenset())


def may_forward(role: str) -> bool:
    """Whether routing lets `role` forward the muhtar requests waiting at the ministry desk."""
    return "forward" in ACTIONS_OF_ROLE.get(role, frozenset())


def may_coordinate(role: str) -> bool:
    """Whether `role` has the coordination page: its queue and board, or its muhtar desk."""
    return may_dispatch(role) or may_forward(role)


def actions_for(role: str, case: dict) -> list[str]:
    """The actions of `CASE_ACTIONS` that `role` may take on `case` in its current state, by
    routing's rules; an approved resolution is neither approved nor rejected again, and only
    an approved one is closed."""
    allowed = ACTIONS_OF_ROLE.get(role, frozenset())
    state = case.get("state")
    return [action for action in CASE_ACTIONS
            if action in allowed and state in TRANSITIONS[action][0]
            and not (action in APPROVAL_ACTIONS and case.get("approved"))
            and not (action == "close" and not case.get("approved"))
            and not (action == "forward" and not case.get("muhtar"))]


def links_for(role: str) -> list[Link]:
    """The pages a role has in the console so far (issue 13's next parts add the others)."""
    links = []
    if role in DESK_ROLES:
        links.append(Link("/console/masa", "Masa ve çağrı merkezi: başvuru al",
                          "Desk and call centre: take an application"))
    if role in INBOX_ROLES:
        links.append(Link("/console/gelen", "Birimin gelen kutusu", "The unit's inbox"))
    if may_approve(role):
        links.append(Link("/console/onay", "Onay bekleyen çözümler",
                          "Resolutions waiting for approval"))
    if may_conclude(role):
        links.append(Link("/console/sonuclandir", "Sonuçlandırılacak vakalar",
                          "Approved resolutions to conclude"))
    if may_coordinate(role):
        links.append(Link("/console/koordinasyon", "Koordinasyon merkezi: gelenler, "
                          "gecikenler, muhtar masası", "Coordination centre: incoming, late "
                          "cases, the muhtar desk"))
    if role in OFFICE_ROLES:
        links.append(Link("/console/baskanlik", "Başkanlık: gecikenler ve geri arama",
                          "Mayor's office: escalated cases and call-backs"))
    if role == "admin":
        links.append(Link("/console/denetim", "Denetim kaydı (KVKK)", "Audit log (KVKK)"))
        links.append(Link("/console/yonetim", "Yönetim: kategoriler, SLA, birimler",
                          "Administration: categories, SLA, units"))
    if role in LOOKUP_ROLES:
        links.append(Link("/console/sorgu", "Takip koduyla başvuru sorgula",
                          "Look an application up by its tracking code"))
    if role in UNIT_OVERVIEW_ROLES:
        links.append(Link("/console/birim", "Birim özeti: birikmiş iş, gecikenler, raporlar",
                          "Unit overview: backlog, late cases, reports"))
    if role in DASHBOARD_ROLES:
        links.append(Link("/console/pano", "Başkanlık panosu: son 30 gün",
                          "Headline dashboard: the last 30 days"))
    return links


def may_call_back(role: str) -> bool:
    """Whether reporting gives `role` the weekly call-back list."""
    return role in CALLBACK_ROLES


def valid_totp_code(code: str) -> bool:
    """Whether `code` has the shape of a TOTP code (six digits)."""
    return len(code) == 6 and code.isascii() and code.isdigit()


DESK_FIELDS = ("channel", "place", "tckn", "first_name", "last_name", "mobile_phone", "email",
               "district", "neighbourhood", "address", "kind", "category", "description",
               "answer")


def desk_payload(form: dict, session: dict, now: datetime, province: str) -> dict:
    """Seed 004's simplified form as typed at the desk, in the shape of intake's
    `POST /api/v1/applications/desk`: who received it is the signed-in user, the place and time
    are the desk's and now; empty fields are left out, so intake names what is missing."""
    given = {name: str(form.get(name) or "").strip() for name in DESK_FIELDS}
    anonymous = str(form.get("anonymous") or "") == "evet"
    place = {"province": province, "district": given["district"] or None,
             "neighbourhood": given["neighbourhood"] or None,
             "address": given["address"] or None}
    payload: dict = {
        "applied_at": now.isoformat(), "place": given["place"] or "Açık Kapı masası",
        "channel": given["channel"] or "desk",
        "received_by": {"name": session.get("name") or session["user"],
                        "staff_code": session["user"]},
        "anonymous": anonymous, "kind": given["kind"], "category": given["category"],
        "description": given["description"],
        "location": {k: v for k, v in place.items() if v},
    }
    if not anonymous:
        payload["citizen"] = {k: given[k] for k in ("tckn", "first_name", "last_name",
                                                    "mobile_phone", "email", "district",
                                                    "neighbourhood", "address") if given[k]}
    if given["answer"]:
        payload["answer"] = given["answer"]
    return {k: v for k, v in payload.items() if v != ""}


# The pages of `overview` (issue 13). The lookup by tracking code: the desk and the call
# centre, staffed by the coordination centre (tracking's `staff.LOOKUP_ROLES` decide again).
LOOKUP_ROLES = frozenset({"coordinator", "admin"})
# The unit overview: a supervisor and every role above, each scoped by its token in SLA and
# reporting (an expert works the inbox instead).
UNIT_OVERVIEW_ROLES = frozenset({"supervisor", "director", "deputy_mayor", "mayor", "governor",
                                 "coordinator", "admin"})
# The headline dashboard: the mayor's office, the coordination centre, the administrators.
DASHBOARD_ROLES = OFFICE_ROLES

# -- password reset links --------------------------------------------------------------------
#
# A reset link carries `<reset id>.<mac>`: the id names the stored reset (`_id`, the only key
# FerretDB indexes), the mac is HMAC-SHA256 of the id under the console's secret. The store
# keeps the id and the SHA-256 of the whole token, never the token: a copy of the database
# opens nothing. The console can make the token again from the id (its RPC to notify, which
# gets only the id in the event), so the link never travels on the bus or sits in a store.

RESET_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def reset_token(secret: str, reset_id: str) -> str:
    """The token of reset `reset_id`'s link."""
    mac = hmac.new(secret.encode(), f"password-reset:{reset_id}".encode(), hashlib.sha256)
    return f"{reset_id}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


def reset_id_of(token: str) -> str | None:
    """The reset id a link's token names, or None when it has not the token's shape."""
    reset_id, dot, mac = token.partition(".")
    if not dot or not RESET_ID.match(reset_id) or len(mac) != 43:
        return None
    return reset_id
