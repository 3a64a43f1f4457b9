"""Helpers the test modules share: publishing events, waiting for handlers, staff headers."""
from __future__ import annotations

from nameko.amqp.publish import Publisher
from nameko.testing.services import entrypoint_waiter

from services.common import topology
from services.common.auth import mint_token


def publish(config: dict, envelope: dict) -> None:
    """Publish an envelope to its producer's exchange, exactly as the outbox relay does."""
    Publisher(config["AMQP_URI"]).publish(
        envelope, exchange=topology.event_exchange(envelope["producer"]),
        routing_key=envelope["type"])


def deliver(config: dict, container, envelope: dict, timeout: float = 15) -> dict:
    """Publish `envelope` and wait until `container`'s handler of it has finished.

    Re-raises what the handler raised; other events handled meanwhile are not waited for.
    """

    def this_event(worker_ctx, result, exc_info) -> bool:
        return worker_ctx.args[0]["event_id"] == envelope["event_id"]

    with entrypoint_waiter(container, f"handle_{envelope['type']}", callback=this_event,
                           timeout=timeout) as waited:
        publish(config, envelope)
    waited.get()
    return envelope


def bearer(config: dict, role: str = "coordinator", unit: str | None = None,
           user: str = "staff-test") -> dict:
    """Authorization headers carrying a staff token signed with the test config's secret."""
    token = mint_token(config["STAFF_TOKEN_SECRET"], user, role, unit)
    return {"Authorization": f"Bearer {token}"}
