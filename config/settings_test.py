"""Settings of the test suite: the ordinary settings with DEBUG's development defaults.

Set in the environment before the settings are read, so the processes the tests start
(pipelines, backfill workers) inherit it too.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: E402,F403

# Throttle counters per test process, never in the Redis that other test runs share.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "searchsync-tests"}}
