"""Intake's test client, as the channel gateways call it: with the webhook secret."""
import pytest

from services.intake.web import create_app


@pytest.fixture
def client(config):
    test_client = create_app(config).test_client()
    test_client.environ_base["HTTP_X_WEBHOOK_SECRET"] = config["CHANNEL_WEBHOOK_SECRET"]
    return test_client
