"""Folding envelopes into a tracking read model in tests, as the handlers would, one by one."""
from __future__ import annotations

from services.tracking import domain


def fold_all(events: list[dict], doc: dict | None = None) -> dict:
    """Fold `events` in order on top of `doc`; none of them may publish anything."""
    for event in events:
        if event["type"] == "application_merged":
            raise AssertionError("use fold_merged")
        new, published = domain.fold_event(doc, event)
        assert published == []
        if new is not None:
            doc = new
    assert doc is not None
    return doc
