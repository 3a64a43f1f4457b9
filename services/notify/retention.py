"""KVKK retention in notify: the message log of an application concluded more than the period
ago loses what could identify the person it went to (`services.common.retention` decides which
applications, and when).

The log never held a message's text, only its masked destination (`domain.new_message`); that
goes, with the provider's own reference (a gateway can map it back to the number). The
template, channel, audience, status and times stay: the counts of what was sent and failed are
unchanged. An application's messages are found through `message_index` by `_id`;
each message changes through `outbox.modify`, writing nothing when it is anonymised already.

`python -m services.notify.retention --once` runs the job once.
"""
from __future__ import annotations

import sys
from datetime import datetime

from services.common.events import utcnow
from services.common.outbox import modify
from services.common.retention import main
from services.notify.store import NotifyStore

_GONE = ("destination", "provider_message_id")


class NotifyAnonymiser:
    """Anonymises one application's messages in notify's log."""

    def __init__(self, store: NotifyStore):
        self.store = store

    def __call__(self, application_id: str, cutoff: datetime) -> bool:
        changed = False
        for message_id in self.store.message_ids_of(application_id):
            changed = self._message(message_id) or changed
        return changed

    def _message(self, message_id: str) -> bool:
        def scrub(current: dict | None) -> dict | None:
            if current is None or current.get("anonymised_at"):
                return None
            new = {k: v for k, v in current.items() if k not in _GONE}
            return dict(new, anonymised_at=utcnow())

        return modify(self.store.messages, message_id, scrub) is not None


def _build(config: dict):
    from services.notify.bootstrap import build

    return build(config)


if __name__ == "__main__":
    sys.exit(main("notify", _build))
