"""The event contract: envelopes are validated both when made and when received."""
from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError

from services.common.events import EVENT_SCHEMAS, load_event, make_event, producer_of

RECEIVED = {
    "tracking_code": "ABCDEFGH1", "security_digest": "d" * 64, "kind": "complaint",
    "category": "noise", "channel": "web",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"},
    "citizen_ref": "c" * 64, "received_at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
}


def test_a_made_event_round_trips_through_the_envelope_schema():
    event = make_event("application_received", "app-1", RECEIVED, correlation_id="corr")
    loaded = load_event(event)
    assert loaded["producer"] == "intake"
    assert loaded["correlation_id"] == "corr"
    assert loaded["data"]["received_at"] == RECEIVED["received_at"]
    assert len(loaded["event_id"]) == 26


def test_an_event_with_data_missing_is_refused_on_both_sides():
    with pytest.raises(ValidationError):
        make_event("application_received", "app-1", {"kind": "complaint"})
    event = make_event("application_received", "app-1", RECEIVED)
    del event["data"]["tracking_code"]
    with pytest.raises(ValidationError) as err:
        load_event(event)
    assert "data" in err.value.messages


def test_an_event_claimed_by_the_wrong_producer_or_of_unknown_type_is_refused():
    event = make_event("application_received", "app-1", RECEIVED)
    with pytest.raises(ValidationError):
        load_event(dict(event, producer="routing"))
    with pytest.raises(ValidationError):
        load_event(dict(event, type="application_vanished"))
    with pytest.raises(ValidationError):
        load_event(["not", "an", "object"])


@pytest.mark.parametrize("key", sorted({etype for etype, _ in EVENT_SCHEMAS}))
def test_no_event_schema_has_a_field_for_personal_data(key):
    forbidden = {"tckn", "first_name", "last_name", "name", "phone", "email", "address"}
    schema = EVENT_SCHEMAS[(key, 1)][1]
    assert not forbidden & set(schema().fields), key
    assert producer_of(key) in {"intake", "routing", "sla", "notify", "tracking", "reporting",
                               "console"}
