"""`mongo.pack`'s dates: a UTC date to the millisecond takes a short way, and must come out as
the long way packs it (any zone, naive as UTC, cut to the millisecond), and read back the same."""
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.mongo import _DATE, _encode, pack, unpack

zones = st.one_of(st.none(), st.just(UTC), st.just(timezone(timedelta(0))),
                  st.builds(lambda minutes: timezone(timedelta(minutes=minutes)),
                            st.integers(-14 * 60, 14 * 60)))
dates = st.builds(lambda when, zone, milli: when.replace(tzinfo=zone) if not milli else
                  when.replace(tzinfo=zone, microsecond=when.microsecond // 1000 * 1000),
                  st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)),
                  zones, st.booleans())


def _the_long_way(value: datetime) -> dict:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return {_DATE: value.astimezone(UTC).isoformat()}


@settings(max_examples=500, deadline=None)
@given(dates)
def test_a_date_packs_as_the_long_way_packs_it_and_reads_back_the_same(value):
    assert _encode(value) == _the_long_way(value)
    back = unpack(pack({"at": value}))["at"]
    assert back.tzinfo is not None and back.microsecond % 1000 == 0
    assert back == datetime.fromisoformat(_the_long_way(value)[_DATE])
