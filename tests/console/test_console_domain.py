"""The console's pure rules: throttle windows and their ids, session expiry, who needs a
second factor, when cookies are Secure, which case actions a page offers."""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.auth import ROLES
from services.common.clients import client_subject
from services.console import domain


def test_throttle_windows_are_fifteen_minutes_aligned_and_say_when_they_end():
    at = datetime(2026, 12, 2, 9, 7, 30, tzinfo=UTC)
    window = domain.window_of(at)
    assert window.ends == datetime(2026, 12, 2, 9, 15, tzinfo=UTC)
    assert window.retry_after(at) == 450
    assert domain.window_of(at + timedelta(minutes=7, seconds=29)).index == window.index
    assert domain.window_of(at + timedelta(minutes=7, seconds=30)).index == window.index + 1
    assert window.retry_after(window.ends) == 1  # never 0: come back later, not now


def test_failure_slots_and_the_lock_marker_are_ids_of_scope_window_and_number():
    window = domain.window_of(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    scope = domain.scope_key("secret", "client", "203.0.113.9")
    assert "203.0.113.9" not in scope  # no address in the clear
    assert scope == domain.scope_key("secret", "client", "203.0.113.9")
    assert scope != domain.scope_key("other", "client", "203.0.113.9")
    assert domain.slot_id(scope, window, 3) == f"{scope}|{window.index}|3"
    assert domain.limit_id(scope, window) == f"{scope}|{window.index}|limit"


def test_a_session_ends_after_thirty_idle_minutes_or_eight_hours_whatever_the_use():
    policy = domain.policy_from({"CONSOLE_IDLE_MINUTES": "30", "CONSOLE_SESSION_HOURS": "8"})
    start = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert not policy.expired(start, start, start + timedelta(minutes=29))
    assert policy.expired(start, start, start + timedelta(minutes=30))
    used = start + timedelta(hours=7, minutes=50)
    assert not policy.expired(start, used, used + timedelta(minutes=9))
    assert policy.expired(start, used, start + timedelta(hours=8))
    assert policy.expires_at(start, used) == start + timedelta(hours=8)
    assert policy.expires_at(start, start) == start + timedelta(minutes=30)


def test_only_administrators_and_the_mayors_office_need_a_second_factor():
    assert {role for role in ROLES if domain.requires_totp(role)} == {"admin", "mayor"}
    with pytest.raises(ValueError):
        domain.check_role("janitor")


@pytest.mark.parametrize(("host", "setting", "secure"), [
    ("127.0.0.1:8000", "auto", False), ("localhost", "auto", False), ("[::1]:8000", "auto", False),
    ("acikkapi.mersin.bel.tr", "auto", True), ("10.0.0.5:8080", "auto", True),
    ("127.0.0.1:8000", "always", True), ("acikkapi.example", "never", False),
])
def test_cookies_are_secure_except_on_this_machines_loopback(host, setting, secure):
    assert domain.secure_cookie(host, setting) is secure


def test_staff_codes_are_compared_as_stored_and_totp_codes_are_six_digits():
    assert domain.normalise_user("  MEZ-0008 ") == "mez-0008"
    assert domain.valid_totp_code("012345")
    assert not domain.valid_totp_code("12345") and not domain.valid_totp_code("١٢٣٤٥٦")


def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64():
    assert client_subject("203.0.113.9") == "203.0.113.9"
    assert client_subject("2001:db8:1:2:aaaa::1") == client_subject(
        "2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_subject("::ffff:203.0.113.9") == "203.0.113.9"


def test_the_case_actions_offered_follow_routings_roles_and_states():
    assigned = {"state": "assigned"}
    assert domain.actions_for("expert", assigned) == ["acknowledge", "transfer", "return"]
    assert domain.actions_for("expert", {"state": "in_progress"}) == [
        "wait", "resolve", "transfer", "return"]
    resolved = {"state": "resolved", "approved": False}
    assert domain.actions_for("expert", resolved) == []
    assert domain.actions_for("supervisor", resolved) == ["approve", "reject"]
    assert domain.actions_for("mayor", resolved) == ["approve", "reject"]
    assert domain.actions_for("supervisor", dict(resolved, approved=True)) == []
    assert domain.actions_for("coordinator", resolved) == []  # closed only once approved
    assert domain.actions_for("coordinator", dict(resolved, approved=True)) == ["close"]
    assert domain.actions_for("supervisor", dict(resolved, approved=True)) == []
    assert domain.actions_for("ministry_officer", {"state": "received"}) == []
    muhtar = {"state": "received", "muhtar": True}  # waiting at the ministry desk
    assert domain.actions_for("ministry_officer", muhtar) == ["forward"]
    assert domain.actions_for("coordinator", muhtar) == ["forward"]
    assert domain.actions_for("expert", muhtar) == []
    assert [link.href for link in domain.links_for("supervisor")] == [
        "/console/gelen", "/console/onay", "/console/birim"]
    assert [link.href for link in domain.links_for("mayor")] == [
        "/console/onay", "/console/baskanlik", "/console/birim", "/console/pano"]
    assert [link.href for link in domain.links_for("coordinator")] == [
        "/console/masa", "/console/sonuclandir", "/console/koordinasyon",
        "/console/baskanlik", "/console/sorgu", "/console/birim", "/console/pano"]
    assert [link.href for link in domain.links_for("ministry_officer")] == [
        "/console/koordinasyon"]
    assert [link.href for link in domain.links_for("expert")] == ["/console/gelen"]


def test_the_desk_form_becomes_intakes_payload_with_the_user_as_receiver():
    session = {"user": "mez-0004", "name": "Orhan Uçar", "role": "coordinator"}
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    payload = domain.desk_payload({
        "channel": "call_centre", "tckn": " 10000000146 ", "first_name": "Ayşe",
        "last_name": "", "kind": "complaint", "category": "road_damage",
        "description": "Çukur", "district": "Mezitli", "answer": ""}, session, at, "Mersin")
    assert payload["received_by"] == {"name": "Orhan Uçar", "staff_code": "mez-0004"}
    assert payload["citizen"] == {"tckn": "10000000146", "first_name": "Ayşe",
                                  "district": "Mezitli"}  # empty fields left for intake
    assert payload["location"] == {"province": "Mersin", "district": "Mezitli"}
    assert payload["applied_at"] == at.isoformat() and "answer" not in payload
    anonymous = domain.desk_payload({"anonymous": "evet", "tckn": "10000000146", "kind":
                                     "information", "category": "x", "description": "?",
                                     "answer": "Açık"}, session, at, "Mersin")
    assert "citizen" not in anonymous and anonymous["anonymous"] is True
    assert anonymous["answer"] == "Açık" and anonymous["channel"] == "desk"
