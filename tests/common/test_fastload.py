"""The compiled loaders of `services.common.fastload` against marshmallow itself: for every event
type, a plain envelope is loaded by the compiled path, and every envelope and data field
missing, null, of each other JSON type, out of its range, or unknown gives exactly what
marshmallow gives: the same envelope (types and order included) or the same refusal."""
from __future__ import annotations

import copy
import math

import pytest
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common import events
from services.common.events import EVENT_SCHEMAS, load_event
from services.common.fastload import Unsure, compile_schema

# every JSON type, and the edges of the validators the event schemas use
PALETTE = [
    None, "", "x", "12", "1.5", "true", "complaint", "web", "sms", "read", "met",
    "2026-12-01T10:00:00+03:00", "2026-12-01T10:00:00", "2026-12-01", "x" * 2001, "0" * 26,
    0, 1, -1, 5, 6, 7, 2 ** 60, True, False, 1.5, 2.0, -0.0, math.nan, math.inf,
    [], ["x"], ["complaint"], {}, {"province": "Mersin"}, {"a": 1}, b"x",
]


def _sample(field: fields.Field):
    """A plain value `field` accepts."""
    choices = [v for v in field.validators if isinstance(v, validate.OneOf)]
    if choices:
        return next(iter(choices[0].choices))
    lengths = [v for v in field.validators if isinstance(v, validate.Length)]
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    if isinstance(field, fields.AwareDateTime):
        return "2026-12-01T10:00:00.123000+03:00"
    if isinstance(field, fields.String):
        size = lengths[0].equal or lengths[0].min or 1 if lengths else 5
        return "ç" * size
    if isinstance(field, fields.Integer):
        return ranges[0].min if ranges else 3
    if isinstance(field, fields.Float):
        return 2.5
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Nested):
        return _data(field.schema)
    if isinstance(field, fields.List):
        return [_sample(field.inner)]
    if isinstance(field, fields.Dict):
        return {"phone": "187"}
    raise AssertionError(f"no sample for {type(field).__name__}")


def _data(schema: Schema) -> dict:
    return {name: _sample(field) for name, field in schema.load_fields.items()}


def _envelope(key: tuple[str, int]) -> dict:
    producer, schema = EVENT_SCHEMAS[key]
    return {"event_id": "01JE" + "A" * 22, "type": key[0], "version": key[1],
            "occurred_at": "2026-12-01T07:00:00.456000+00:00", "producer": producer,
            "correlation_id": "c", "application_id": "a", "data": _data(schema())}


def _by_marshmallow(payload: dict):
    """`load_event` without the compiled path: the envelope's repr (types and key order), or
    the refusal's messages."""
    try:
        envelope = events._envelope.load(payload)
    except ValidationError as exc:
        return ("refused", exc.messages)
    try:
        envelope["data"] = events._data_schema(
            (envelope["type"], envelope["version"])).load(envelope["data"])
    except ValidationError as exc:
        return ("refused", {"data": exc.messages})
    return repr(envelope)


def _by_load_event(payload: dict):
    try:
        return repr(load_event(payload))
    except ValidationError as exc:
        return ("refused", exc.messages)


def _variants(base: dict):
    """`base` with each field (of the envelope and of its data, nested ones too) missing, set to
    each value of the palette, and an unknown field added."""
    def paths(value: dict, prefix: tuple = ()):
        for name, inner in value.items():
            yield (*prefix, name)
            if type(inner) is dict:
                yield from paths(inner, (*prefix, name))

    for path in list(paths(base)):
        for replacement in [KeyError, *PALETTE]:
            variant = copy.deepcopy(base)
            holder = variant
            for name in path[:-1]:
                holder = holder[name]
            if replacement is KeyError:
                del holder[path[-1]]
            else:
                holder[path[-1]] = replacement
            yield variant
    for holder_path in [(), ("data",), ("data", "location")]:
        variant = copy.deepcopy(base)
        holder = variant
        for name in holder_path:
            holder = holder.get(name) if type(holder) is dict else None
        if type(holder) is dict:
            holder["unexpected"] = "x"
            yield variant


@pytest.mark.parametrize("key", sorted(EVENT_SCHEMAS), ids=lambda key: key[0])
def test_a_plain_event_is_loaded_by_the_compiled_path_exactly_as_marshmallow_loads_it(key):
    payload = _envelope(key)
    assert not isinstance(_by_marshmallow(payload), tuple), "the sample must be valid"
    # the compiled path takes it (it does not hand it to marshmallow)...
    fast = events._load_plain(copy.deepcopy(payload))
    # ...and gives what marshmallow gives, types and key order included
    assert repr(fast) == _by_marshmallow(payload)
    assert _by_load_event(payload) == _by_marshmallow(payload)


@pytest.mark.parametrize("key", sorted(EVENT_SCHEMAS), ids=lambda key: key[0])
def test_every_field_wrong_missing_or_unknown_gives_what_marshmallow_gives(key):
    compiled = 0
    for variant in _variants(_envelope(key)):
        before = copy.deepcopy(variant)
        expected = _by_marshmallow(variant)
        assert _by_load_event(variant) == expected, variant
        assert repr(variant) == repr(before)  # the input is never changed
        try:
            fast = events._load_plain(copy.deepcopy(variant))
        except Unsure:
            continue
        compiled += 1
        # whatever the compiled path takes, marshmallow takes, and loads the same way
        assert repr(fast) == expected, variant
    assert compiled > 0  # optional fields null or absent, numbers as each other: still plain


def test_a_refusal_names_the_field_as_before():
    payload = _envelope(("application_received", 1))
    payload["data"]["kind"] = "gripe"
    with pytest.raises(ValidationError) as refused:
        load_event(payload)
    assert set(refused.value.messages) == {"data"}
    assert set(refused.value.messages["data"]) == {"kind"}
    payload = _envelope(("application_received", 1))
    payload["producer"] = "routing"
    with pytest.raises(ValidationError) as refused:
        load_event(payload)
    assert set(refused.value.messages) == {"producer"}


def test_a_schema_with_hooks_or_renamed_fields_is_left_to_marshmallow():
    class WithHook(Schema):
        name = fields.String()

        @validates_schema
        def _check(self, data, **_):  # pragma: no cover - only its presence matters
            pass

    class Renamed(Schema):
        name = fields.String(data_key="Name")

    assert compile_schema(WithHook()) is None
    assert compile_schema(WithHook(), hooks=False) is not None
    assert compile_schema(Renamed()) is None


def test_fields_of_other_types_are_loaded_by_their_marshmallow_field():
    class Mixed(Schema):
        at = fields.AwareDateTime(required=True)
        tags = fields.List(fields.String(validate=validate.OneOf(["a", "b"])))
        email = fields.Email()  # a subclass of String: not taken as plain

    load = compile_schema(Mixed())
    assert load is not None
    loaded = load({"at": "2026-12-01T10:00:00+03:00", "tags": ["a"], "email": "x@example.org"})
    assert loaded == Mixed().load({"at": "2026-12-01T10:00:00+03:00", "tags": ["a"],
                                   "email": "x@example.org"})
    for wrong in [{"at": "2026-12-01T10:00:00"}, {"at": "2026-12-01T10:00:00+03:00",
                                                   "tags": ["c"]},
                  {"at": "2026-12-01T10:00:00+03:00", "email": "not an address"}]:
        with pytest.raises(Unsure):
            load(wrong)
