"""Fixtures for tests against the real local stack (devstack/up starts it).

Each test gets its own Kafka topic prefix, consumer-group prefix and blueprint
name, so tests never see each other's events or indices.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from indexing.engines import get_engine


def pytest_collection_modifyitems(config, items):
    """The cluster drills need the three-node cluster (make test-cluster): left out of any run
    whose -m expression does not name them."""
    if "cluster" in (config.getoption("markexpr") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("cluster") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("cluster")])
        items[:] = kept


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
    """The shipped products blueprint under a unique name, with a live index behind its aliases.

    Without its sidecar: one index at a 1 s refresh, as the pipeline tests measure it; the sidecar
    is proposed as a revision and served by a cutover in ``products_sidecar_blueprint``."""
    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints.indices import ensure_live_index, index_names

    blueprint = ensure_products_blueprint(name=f"products-{unique}", sidecar={})
    ensure_live_index(blueprint, engine)
    yield blueprint
    for index in blueprint.indices.all():
        for name in index_names(index):
            engine.delete_index(name)


@pytest.fixture
def product_aggregate_declared(transactional_db, unique):
    """A bare, disabled blueprint declaring the "product" aggregate, for tests of the relay alone: it
    publishes product rows (a row of an aggregate no blueprint declares is dead-lettered) without
    an index or a consumer."""
    from indexing.models import IndexBlueprint

    return IndexBlueprint.objects.create(name=f"declared-{unique}", aggregate_type="product", enabled=False,
                                         read_alias=f"declared-{unique}_r", write_alias=f"declared-{unique}_w",
                                         document_builder="products", source_model="catalog.Product")


@pytest.fixture
def eager_celery(monkeypatch):
    """Run .delay() in the calling thread: API and console paths without a worker process."""
    from config.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    monkeypatch.setattr(app.conf, "task_eager_propagates", True)


@pytest.fixture
def operator_api(django_user_model):
    """An API client authenticated by token as a user with the operator permission."""
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    from accounts import tokens

    user = django_user_model.objects.create_user("api-operator", password="x")
    # What bootstrap gives the operators group: the pipeline permission and product writes.
    user.user_permissions.add(Permission.objects.get(codename="operate_pipeline"),
                              Permission.objects.get(codename="write_products"))
    client = APIClient()
    _, secret = tokens.create(user, "tests", days=1)
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """API throttle counters (a per-process cache in tests) start empty in every test."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    # Never clear a shared cache: a Redis one would be flushed for every process using it.
    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


# --- browser ------------------------------------------------------------------------

SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, which this network refuses.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from django.db.backends.signals import connection_created
    from playwright.sync_api import sync_playwright

    # With Playwright's loop in this thread, Django's per-context connection storage hands the test
    # fresh connection objects that the database teardown never sees; close every one opened here.
    opened = []

    def remember(sender, connection, **kwargs):
        if threading.current_thread() is threading.main_thread():
            opened.append(connection)

    connection_created.connect(remember, weak=False)

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.console_errors = errors
        yield page
        browser.close()
    connection_created.disconnect(remember)
    for connection in opened:
        connection.close()


# --- source databases apart from searchsync's own --------------------------------------


@pytest.fixture
def source_db(unique):
    """(SourceDatabase, database name) of a PostgreSQL database of this test's own, dropped afterwards."""
    from tests.source_databases import source_database

    with source_database(unique) as found:
        yield found


# --- Debezium -----------------------------------------------------------------------


@pytest.fixture
def debezium_connector(unique):
    """Start Kafka Connect if needed and create connectors for this test; delete them and their
    slots afterwards (a leftover slot keeps WAL)."""
    from indexing.control import connectors
    from tests.helpers import devstack, wait_until

    devstack("up", "connect")
    made = []

    def make(kind, config, source="default"):
        name = f"{kind}-{unique}"
        connectors.apply(name, config)
        made.append((name, config["slot.name"], source))
        wait_until(lambda: connectors.running(name), timeout=120, message=f"connector {name} running")
        wait_until(lambda: any(s.name == config["slot.name"] and s.source == source and s.active
                               for s in connectors.replication_slots()),
                   timeout=120, message="replication slot streaming")
        return name

    yield make
    for name, slot, source in made:
        connectors.delete(name)
    for _, slot, source in made:
        wait_until(lambda: not any(s.name == slot and s.active for s in connectors.replication_slots()), timeout=60)
        connectors.drop_slot(slot, source)
