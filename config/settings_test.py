"""Settings of the test suite: the ordinary settings with DEBUG's development defaults.

Set in the environment before the settings are read, so the processes the tests start
(pipelines, backfill workers) inherit it too.

`make test` runs the default suite in parallel pytest-xdist workers. Each worker is a *lane*
with a search node of its own (a drill that stops its node never stops another worker's) and
a Redis database of its own (one worker's relay heartbeat or supervisor counts are not
another's, nor those of a console from `make up`); pytest-django gives each its own test
database. Both are set in the environment here, so what a test starts inherits its lane.

- SEARCHSYNC_TEST_SEARCH_NODES: space-separated ``name=url`` of devstack search nodes; worker
  N uses entry N (modulo their number) as SEARCH_URL and SEARCHSYNC_TEST_SEARCH_NODE.
- SEARCHSYNC_TEST_REDIS_DB: the first Redis database of the run; worker N uses that plus N.
"""

import os
from urllib.parse import urlsplit, urlunsplit


def _lane() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    nodes = os.environ.get("SEARCHSYNC_TEST_SEARCH_NODES", "").split()
    if nodes:
        name, _, url = nodes[index % len(nodes)].partition("=")
        if not url:
            raise ValueError(f"SEARCHSYNC_TEST_SEARCH_NODES entries are name=url, not {nodes[index % len(nodes)]!r}")
        os.environ["SEARCHSYNC_TEST_SEARCH_NODE"] = name
        os.environ["SEARCH_URL"] = url
    if "PYTEST_XDIST_WORKER" in os.environ:
        # Tests isolate their topics and groups (the isolated_pipeline fixture); a test that does
        # not still never shares a topic or group with another worker.
        os.environ.setdefault("SEARCHSYNC_TOPIC_PREFIX", f"test-{worker}.")
        os.environ.setdefault("SEARCHSYNC_CONSUMER_GROUP_PREFIX", f"test-{worker}-indexer.")
    first_db = os.environ.get("SEARCHSYNC_TEST_REDIS_DB")
    if first_db:
        parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{int(first_db) + index}"))


os.environ.setdefault("DJANGO_DEBUG", "true")
_lane()

from config.settings import *  # noqa: E402,F403

# Throttle counters per test process, never in the Redis that other test runs share.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "searchsync-tests"}}
