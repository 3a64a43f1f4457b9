"""The console's nameko side: no events to handle, one timer that deletes expired sessions,
pending logins and throttle counters (FerretDB has no TTL index). It runs under the runner like
every service, so the Flask app gets the parts its container built."""
from __future__ import annotations

import logging

from nameko.timer import timer

from services.common.bootstrap import Composed
from services.console.bootstrap import ConsoleParts, build

log = logging.getLogger(__name__)
PURGE_SECONDS = 300


class ConsoleService:
    name = "console"

    parts: ConsoleParts = Composed(build)

    @timer(interval=PURGE_SECONDS)
    def purge_expired(self) -> None:
        """Forget what has expired; idempotent, safe with several console processes."""
        removed = self.parts.logins.purge()
        if removed:
            log.info("expired console records purged", extra={"count": removed})


SERVICE = ConsoleService
