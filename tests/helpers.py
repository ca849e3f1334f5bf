"""Helpers shared by the pipeline tests: run the pipeline in threads, wait,
and read back the whole state of the database and of an index."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from catalog.models import Product
from indexing.blueprints.indices import CANARY_ENTITY_ID


ROOT = Path(__file__).resolve().parent.parent


def devstack(command: str, *services: str, env: dict | None = None, check: bool = True) -> None:
    """Run devstack/up|down for some services, as a failure drill does to stop and start them."""
    subprocess.run([str(ROOT / "devstack" / command), *services], check=check, stdout=subprocess.DEVNULL,
                   env={**os.environ, **(env or {})})


# The devstack service of each engine's default node, and of its small-write-queue twin that
# answers 429 (test_backpressure). Ports: 9200 OpenSearch 2.19, 9201 Elasticsearch 7.17,
# 9202 OpenSearch 3.x; the twins on 9210-9212.
SEARCH_SERVICES = ("opensearch", "elasticsearch", "opensearch3")
_NODE_ENV_PREFIX = {"opensearch": "DEVSTACK_OPENSEARCH", "elasticsearch": "DEVSTACK_ELASTICSEARCH",
                    "opensearch3": "DEVSTACK_OPENSEARCH3"}
_SMALL_QUEUE = {"opensearch": ("os429", 9210), "elasticsearch": ("es429", 9211), "opensearch3": ("os3-429", 9212)}


@functools.lru_cache(maxsize=1)
def search_service() -> str:
    """The devstack service that runs the search node under test (the one SEARCH_URL points at).

    SEARCHSYNC_TEST_SEARCH_SERVICE names it (the Makefile's per-engine targets set it);
    otherwise it follows from the engine itself: Elasticsearch, OpenSearch 3.x or 2.x.
    Failure drills stop and start this service, never another engine's node. Resolved once
    (and cached) while the node still answers, so it can be started again after a stop.
    """
    explicit = os.environ.get("SEARCHSYNC_TEST_SEARCH_SERVICE")
    if explicit:
        if explicit not in SEARCH_SERVICES:
            raise ValueError(f"SEARCHSYNC_TEST_SEARCH_SERVICE must be one of {SEARCH_SERVICES}, not {explicit!r}")
        return explicit
    from indexing.engines import get_engine

    info = get_engine().info()
    if info.engine == "elasticsearch":
        return "elasticsearch"
    return "opensearch3" if info.version.split(".")[0] == "3" else "opensearch"


def _node_env(service: str) -> dict:
    """The devstack environment naming the node under test. SEARCHSYNC_TEST_SEARCH_NODE names
    an instance of its own (make test runs on one), so that a drill stopping it never stops the
    node a console from `make up` is using."""
    name = os.environ.get("SEARCHSYNC_TEST_SEARCH_NODE")
    return {f"{_NODE_ENV_PREFIX[service]}_NAME": name} if name else {}


def stop_search_node() -> None:
    service = search_service()  # resolve while the node still answers
    devstack("down", service, env=_node_env(service))


def start_search_node() -> None:
    service = search_service()
    devstack("up", service, env=_node_env(service))


def small_queue_node(service: str | None = None) -> tuple[str, dict, str]:
    """(devstack service, its env, URL) of a second node of the engine under test with one write
    thread and a one-slot write queue, so that a little concurrent load gets 429s."""
    service = service or search_service()
    name, port = _SMALL_QUEUE[service]
    prefix = _NODE_ENV_PREFIX[service]
    env = {f"{prefix}_NAME": name, f"{prefix}_PORT": str(port), f"{prefix}_WRITE_QUEUE_SIZE": "1",
           f"{prefix}_WRITE_THREADS": "1", f"{prefix}_HEAP": "512m"}
    return service, env, f"http://127.0.0.1:{port}"


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def db_thread(target, *args, **kwargs) -> threading.Thread:
    """A thread that closes its own database connections when it ends: a thread's connection
    outlives it otherwise, and the test database cannot be dropped at teardown."""

    def closing():
        from django.db import connections

        try:
            target(*args, **kwargs)
        finally:
            connections.close_all()

    return threading.Thread(target=closing)


@contextlib.contextmanager
def running(target, name="worker"):
    """Run ``target(stop_event)`` in a thread for the duration of the block."""
    stop = threading.Event()
    errors = []

    def guarded():
        from django.db import connections

        try:
            target(stop)
        except Exception as exc:  # surfaced to the test below
            errors.append(exc)
            raise
        finally:
            connections.close_all()

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]


@contextlib.contextmanager
def pipeline(blueprint, relay=True, consumer=True, **consumer_kwargs):
    """Relay + one indexing consumer of ``blueprint``, in threads."""
    from indexing.pipeline.consumer import IndexingConsumer
    from indexing.outbox.relay import OutboxRelay

    with contextlib.ExitStack() as stack:
        if relay:
            r = OutboxRelay()
            stack.enter_context(running(r.run, "relay"))
        if consumer:
            c = IndexingConsumer(blueprint, **consumer_kwargs)
            stack.enter_context(running(lambda stop: c.run(stop), "consumer"))
        yield


def db_state(deleted_ids=()) -> dict[str, tuple[int, dict]]:
    """Each product's document version (the highest change stamp of the product, its brand and its
    category's ancestors) and fields (the brand's current name, the category path), read in one snapshot."""
    from catalog.documents import product_events

    return {
        e.entity_id: (e.version, {"title": e.payload["title"], "price_minor": e.payload["price_minor"],
                                  "available_qty": e.payload["available_qty"], "brand": e.payload["brand"],
                                  "category_path": e.payload["category_path"], "tenant_id": e.tenant_id,
                                  "description": e.payload["description"]})
        for e in product_events(Product.objects.values_list("pk", flat=True))
    }


def index_state(engine, index: str) -> dict[str, tuple[int, dict]]:
    """Each document's version and source; an index with a sidecar is read joined with it. The joined
    document has the sidecar's version, which every event writes; its main half may be older (an event
    that changed only sidecar fields leaves it alone, and its fields are compared like the rest), never
    newer: a main half ahead of its sidecar gets version -1 (never equal to the DB's)."""
    from indexing.blueprints.indices import sidecar_index_name

    engine.refresh(index)
    state = {}
    for hit in engine.scan(index):
        if hit["_id"] == CANARY_ENTITY_ID:
            continue
        state[hit["_id"]] = (hit["_version"], hit["_source"])
    side = sidecar_index_name(index)
    if side:
        engine.refresh(side)
        halves = {hit["_id"]: (hit["_version"], hit["_source"]) for hit in engine.scan(side)}
        for doc_id, (version, source) in list(state.items()):
            other = halves.get(doc_id)
            merged = {**source, **(other[1] if other else {})}
            state[doc_id] = (other[0] if other and other[0] >= version else -1, merged)
    return state


def assert_index_matches_db(engine, index: str, deleted_versions: dict[str, int] | None = None, versions: bool = True):
    """Every product is in the index at its DB version with its fields; every deleted one is a tombstone
    at its delete version; nothing else is there. ``versions=False`` for LSN-versioned indices: then
    fields and presence are compared, and ``deleted_versions`` only names the deleted ids."""
    deleted_versions = deleted_versions or {}
    db = db_state()
    idx = index_state(engine, index)
    live_docs = {k: v for k, v in idx.items() if not v[1].get("deleted")}
    tombstones = {k: v[0] for k, v in idx.items() if v[1].get("deleted")}
    missing = sorted(set(db) - set(live_docs), key=int)
    extra = sorted(set(live_docs) - set(db), key=int)
    assert not missing, f"{len(missing)} products missing from the index, e.g. {missing[:10]}"
    assert not extra, f"{len(extra)} deleted products still live in the index, e.g. {extra[:10]}"
    wrong = []
    for pid, (version, fields) in db.items():
        doc_version, source = live_docs[pid]
        got = {k: source.get(k) for k in fields}
        if got != fields or (versions and (doc_version != version or source.get("version") != version)):
            wrong.append((pid, version, doc_version, fields, got))
    assert not wrong, f"{len(wrong)} documents differ from the database, e.g. {wrong[:3]}"
    if not versions:
        assert set(tombstones) == set(deleted_versions), f"tombstones {sorted(tombstones)} ≠ deletes {sorted(deleted_versions)}"
        return
    assert tombstones == deleted_versions, "tombstones differ from deletes: " + str(
        {k: (tombstones.get(k), deleted_versions.get(k)) for k in set(tombstones) ^ set(deleted_versions)} or
        {k: (tombstones[k], deleted_versions[k]) for k in tombstones if tombstones[k] != deleted_versions[k]})


def wait_converged(engine, index: str, deleted_versions=None, timeout: float = 120.0, versions: bool = True):
    """Wait until the index equals the database; fail with the last difference."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert_index_matches_db(engine, index, deleted_versions, versions=versions)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def random_operations(rng, count: int, deleted: dict[str, int], start_products: int = 50):
    """Random creates/updates/deletes through the catalog services; records delete versions in ``deleted``."""
    from catalog import services
    from catalog.management.commands.seed_catalog import random_product

    ids = [services.create_product(**random_product(rng)).pk for _ in range(start_products)]
    for _ in range(count):
        roll = rng.random()
        if roll < 0.25 or not ids:
            ids.append(services.create_product(**random_product(rng)).pk)
        elif roll < 0.85:
            pid = rng.choice(ids)
            services.update_product(pid, price_minor=rng.randint(1, 100_000), available_qty=rng.randint(0, 50),
                                    title=random_product(rng)["title"])
        else:
            pid = ids.pop(rng.randrange(len(ids)))
            deleted[str(pid)] = services.delete_product(pid)
    return ids


def login(page, live_server, username="operator", password="operator"):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def process_env(settings=None, **extra: str) -> dict[str, str]:
    """The environment of a `manage.py` subprocess: the test database, and the test's own topics and
    consumer groups when ``settings`` (an isolated pipeline's) is given."""
    from django.db import connection

    db = connection.settings_dict
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "LOG_LEVEL": "WARNING"}
    if settings is not None:
        env["SEARCHSYNC_TOPIC_PREFIX"] = settings.SEARCHSYNC["TOPIC_PREFIX"]
        env["SEARCHSYNC_CONSUMER_GROUP_PREFIX"] = settings.SEARCHSYNC["CONSUMER_GROUP_PREFIX"]
    return {**env, **extra}


def consumer_process(blueprint, settings, **extra: str) -> subprocess.Popen:
    """A consumer of ``blueprint`` in a process of its own (`run_pipeline --no-relay`), to be killed."""
    env = process_env(settings, SEARCHSYNC_BATCH_SIZE="200", **extra)
    return subprocess.Popen([sys.executable, "manage.py", "run_pipeline", "--no-relay", "--blueprint", blueprint.name],
                            cwd=ROOT, env=env)


def read_topic(topic: str, count: int, timeout: float = 60.0) -> list[dict]:
    import json

    from confluent_kafka import Consumer
    from django.conf import settings

    client = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": f"check-{time.time()}",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    client.subscribe([topic])
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = client.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append({"key": msg.key().decode(), "value": json.loads(msg.value())})
    finally:
        client.close()
    return got
