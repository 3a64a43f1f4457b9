"""The console's nameko side: no events to handle; one timer that deletes expired sessions,
pending logins, throttle counters and password resets (FerretDB has no TTL index); one RPC that
notify calls for a password reset e-mail's address and link (`staff_password_reset_requested`
carries neither). Its parts' relay publishes the resets' events. It runs under the runner like
every service, so the Flask app gets the parts its container built."""
from __future__ import annotations

import logging

from nameko.rpc import rpc
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

    @rpc
    def password_reset_message(self, reset_id: str) -> dict | None:
        """Notify's e-mail for reset `reset_id`: the account's address, name and the link, or
        None once the reset is used, expired or unknown (then nothing is sent)."""
        return self.parts.resets.message(reset_id)


SERVICE = ConsoleService
