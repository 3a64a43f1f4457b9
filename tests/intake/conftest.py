"""Intake's parts for a test, and its test client as the channel gateways call it: with the
webhook secret."""
import pytest

from services.intake.bootstrap import build
from services.intake.web import create_app


@pytest.fixture
def parts(config):
    """Intake's composition for this test's config (no nameko container: nothing publishes)."""
    built = build(config)
    yield built
    built.close()


@pytest.fixture
def client(config, parts):
    test_client = create_app(parts).test_client()
    test_client.environ_base["HTTP_X_WEBHOOK_SECRET"] = config["CHANNEL_WEBHOOK_SECRET"]
    return test_client
