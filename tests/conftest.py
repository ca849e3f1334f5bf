"""Fixtures for tests against the real local stack (devstack/up starts it).

Each test gets its own Kafka topic prefix, consumer-group prefix and blueprint
name, so tests never see each other's events or indices.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings

from indexing.engines import get_engine


@pytest.fixture
def engine():
    return get_engine()


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:10]


@pytest.fixture
def isolated_pipeline(settings, unique):
    """Fresh topics and consumer groups for this test."""
    settings.SEARCHSYNC = {
        **django_settings.SEARCHSYNC,
        "TOPIC_PREFIX": f"test-{unique}.",
        "CONSUMER_GROUP_PREFIX": f"test-{unique}-indexer.",
        "BATCH_WAIT_MS": 50,
        "RETRY_BASE_MS": 50,
        "RETRY_MAX_MS": 2000,
        "RELAY_POLL_S": 0.2,
        "BACKPRESSURE_CHECK_S": 0.5,
    }
    return settings


@pytest.fixture
def products_blueprint(transactional_db, isolated_pipeline, unique, engine):
    """The shipped products blueprint under a unique name, with a live index behind its aliases."""
    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints import ensure_live_index

    blueprint = ensure_products_blueprint(name=f"products-{unique}")
    ensure_live_index(blueprint, engine)
    yield blueprint
    for index in blueprint.indices.all():
        engine.delete_index(index.name)
