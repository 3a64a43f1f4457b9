"""Configuration: the local run works with defaults; a real database demands real secrets."""
import pytest

from services.common.config import load_config

REAL = "mongodb://db.example:27017/"
SECRETS = {"STAFF_TOKEN_SECRET": "s1" * 20, "CODE_PEPPER": "s2" * 20, "LINK_SECRET": "s3" * 20,
           "CHANNEL_WEBHOOK_SECRET": "s4" * 20}


def test_the_embedded_store_runs_on_the_defaults():
    config = load_config(env={})
    assert config["MONGO_URI"].startswith("mongomock://")
    assert config["CHANNEL_WEBHOOK_SECRET"] == ""  # the local run's webhooks are open


def test_a_real_database_refuses_every_development_secret_by_name():
    with pytest.raises(SystemExit) as refused:
        load_config(env={"MONGO_URI": REAL})
    for key in SECRETS:
        assert key in str(refused.value)


def test_a_real_database_needs_a_webhook_secret_for_the_channel_gateways():
    without = dict(SECRETS, CHANNEL_WEBHOOK_SECRET="")
    with pytest.raises(SystemExit, match="CHANNEL_WEBHOOK_SECRET"):
        load_config(env=dict(without, MONGO_URI=REAL))
    assert load_config(env=dict(SECRETS, MONGO_URI=REAL))["MONGO_URI"] == REAL
