"""Fixtures for reporting's tests: envelopes as the bus carries them (`tests.envelopes`), a
publisher, a token, reporting's parts."""
from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from services.reporting.bootstrap import ReportingParts, build
from tests import support
from tests.envelopes import Events


@pytest.fixture
def events() -> type[Events]:
    return Events


@pytest.fixture
def publish(config):
    """Publish an envelope to its producer's exchange, as the outbox relay does."""
    return functools.partial(support.publish, config)


@pytest.fixture
def staff_headers(config):
    """Authorization headers for a staff member of `role` (a coordinator by default)."""
    return functools.partial(support.bearer, config, user="rep-0001")


@pytest.fixture
def parts(config) -> Iterator[ReportingParts]:
    """Reporting's composition for this test (no container runs it), closed after."""
    built = build(config)
    yield built
    built.close()
