"""A marshmallow schema compiled, once, into a plain-Python loader for the usual input: what
every consumer spends most of its CPU on when it takes an event off the bus.

marshmallow stays the authority. `compile_schema` reads a schema's own fields (their types,
`required`, `load_default`, `allow_none`, validators) and returns a loader that either gives
exactly what `schema.load` would give, or raises `Unsure`, and the caller loads the input with
marshmallow, which answers it (or names what is wrong with it). A loader is sure only of plain
input: a JSON object of exactly the declared fields, strings as `str`, integers as `int`,
booleans as `True` / `False`, objects as `dict`. Anything else (a number as text, a
missing required field, an unknown field, a validator refusing) is left to marshmallow, and so
is any field of another type (dates, lists, typed dicts): its own `deserialize`, with none of the
schema's per-field machinery around it. A schema with hooks (`pre_load`, `validates_schema`…)
or fields renamed on load is not compiled at all (`None`).

Why: profiled on reporting's 19 queues, marshmallow's schema machinery (a closure, an error
store and a validator chain per field) was 107 of the 239 µs of CPU per event taken off the
bus, about 20 fields per event. tests/common/test_fastload.py checks the loaders against
marshmallow on every event type, with every field missing, null, of each other JSON type and
out of range.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields
from marshmallow.utils import missing

Loader = Callable[[Any], Any]


class Unsure(Exception):
    """Not plain input: marshmallow must load it."""


def compile_schema(schema: Schema, hooks: bool = True) -> Loader | None:
    """A loader for `schema` (see the module docstring), or None when it cannot have one.
    `hooks=False`: for its fields alone, whatever its hooks (the caller checks what they do)."""
    if (hooks and any(schema._hooks.values())) or schema.opts.unknown not in (RAISE, EXCLUDE):
        return None
    steps = []
    for name, field in schema.load_fields.items():
        if field.data_key is not None or field.attribute is not None or field.pre_load \
                or field.post_load:
            return None
        steps.append((name, _field_loader(field), field.required, field.load_default,
                      field.allow_none))
    names = frozenset(name for name, *_ in steps)
    strict = schema.opts.unknown == RAISE
    make = schema.dict_class

    def load(data: Any) -> dict:
        if type(data) is not dict or (strict and not data.keys() <= names):
            raise Unsure
        out = make()
        for name, loader, required, default, allow_none in steps:
            value = data.get(name, missing)
            if value is missing:
                if required:
                    raise Unsure
                if default is not missing:
                    out[name] = default() if callable(default) else default
            elif value is None:
                if not allow_none:
                    raise Unsure
                out[name] = None
            else:
                out[name] = loader(value)
        return out

    return load


def _field_loader(field: fields.Field) -> Loader:
    kind = type(field)
    if kind is fields.String:
        plain = _exact(str)
    elif kind is fields.Integer:
        plain = _exact(int)
    elif kind is fields.Float:
        plain = _float(field.allow_nan)
    elif kind is fields.Boolean:
        plain = _boolean
    elif kind is fields.Dict and field.key_field is None and field.value_field is None:
        plain = _copied
    elif kind is fields.Nested and not field.many and field.only is None \
            and not field.exclude and field.unknown is None:
        nested = field.schema
        loader = compile_schema(nested)
        if loader is None:
            return _by_marshmallow(field)
        plain = loader
    else:
        return _by_marshmallow(field)
    return _validated(plain, field.validators)


def _exact(kind: type) -> Loader:
    def load(value: Any) -> Any:
        # exactly: `bool` is an `int`, marshmallow refuses it; a subclass of `str` it converts
        if type(value) is not kind:
            raise Unsure
        return value
    return load


def _float(allow_nan: bool) -> Loader:
    def load(value: Any) -> float:
        kind = type(value)
        if kind is float:
            if not allow_nan and not math.isfinite(value):
                raise Unsure
            return value
        if kind is int and abs(value) < 2 ** 53:  # converts exactly, as marshmallow's float()
            return float(value)
        raise Unsure
    return load


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise Unsure


def _copied(value: Any) -> dict:
    if type(value) is not dict:
        raise Unsure
    return dict(value)


def _validated(plain: Loader, validators: list[Callable]) -> Loader:
    if not validators:
        return plain

    def load(value: Any) -> Any:
        loaded = plain(value)
        for validator in validators:
            try:
                refused = validator(loaded) is False
            except ValidationError:
                raise Unsure from None
            if refused:
                raise Unsure
        return loaded
    return load


def _by_marshmallow(field: fields.Field) -> Loader:
    def load(value: Any) -> Any:
        try:
            return field.deserialize(value)
        except ValidationError:
            raise Unsure from None
    return load

