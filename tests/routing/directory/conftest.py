"""The directory-as-data tests run on a fresh routing database without a broker, with the
directory version checked on every decision."""
from collections.abc import Iterator

import pytest

from services.common.config import load_config
from services.routing.bootstrap import RoutingParts, build
from services.routing.organisation import OrganisationCache
from services.routing.store import RoutingStore


@pytest.fixture
def config(databases) -> dict:
    return dict(load_config(env={}, **databases), DIRECTORY_CHECK_SECONDS=0)


@pytest.fixture
def parts(config) -> Iterator[RoutingParts]:
    """Routing's composition, its relay never started (no broker here): the store, the cache
    and any app a test builds share it, as in a routing process."""
    built = build(config)
    yield built
    built.close()


@pytest.fixture
def store(parts) -> RoutingStore:
    return parts.store


@pytest.fixture
def cache(parts) -> OrganisationCache:
    return parts.organisation
