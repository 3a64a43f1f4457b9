"""The directory-as-data tests run on a fresh routing database without a broker, with the
directory version checked on every decision."""
import pytest

from services.common.config import load_config
from services.common.mongo import get_database
from services.routing.organisation import OrganisationCache, organisation_for
from services.routing.store import RoutingStore


@pytest.fixture
def config(databases) -> dict:
    return dict(load_config(env={}, **databases), DIRECTORY_CHECK_SECONDS=0)


@pytest.fixture
def store(config) -> RoutingStore:
    return RoutingStore(get_database(config, "routing"))


@pytest.fixture
def cache(store, config) -> OrganisationCache:
    return organisation_for(store, config)
