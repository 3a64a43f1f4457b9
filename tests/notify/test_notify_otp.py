"""notify's `send_one_time_code` RPC: the muhtar portal's login code, by SMS, never kept."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from services.notify.service import NotifyService

PHONE = "+905551000003"


class FakeIntake:
    """intake's `get_citizen_contact`, for one registered muhtar."""

    name = "intake"

    @rpc
    def get_citizen_contact(self, citizen_ref: str) -> dict | None:
        if citizen_ref != "ref-muhtar":
            return None
        return {"phone": PHONE, "email": None, "preferred_channel": "sms"}


@pytest.fixture
def notify(config, container_factory):
    for service in (NotifyService, FakeIntake):
        container_factory(service, config).start()
    with ServiceRpcProxy("notify", config, timeout=20) as proxy:
        yield proxy


def sent(config) -> list[dict]:
    path = Path(config["DEV_SINK_DIR"]) / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_code_goes_by_sms_to_the_phone_intake_names_and_nowhere_else(
    config, notify, caplog
):
    # INFO, as the services run (at DEBUG nameko itself logs RPC arguments and replies).
    caplog.set_level(logging.INFO)
    assert notify.send_one_time_code("ref-muhtar", "X7KQ4M") is True
    [message] = sent(config)
    assert message["to"] == PHONE
    assert "X7KQ4M" in message["text"] and "onay kodu" in message["text"]
    logged = caplog.text + " ".join(str(vars(record)) for record in caplog.records)
    assert "X7KQ4M" not in logged and PHONE not in logged
    assert "+90555*****03" in logged  # the masked number only


def test_no_phone_no_message(config, notify):
    assert notify.send_one_time_code("ref-nobody", "X7KQ4M") is False
    assert sent(config) == []
