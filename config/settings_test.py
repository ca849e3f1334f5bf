"""Settings of the test suite: the ordinary settings with DEBUG's development defaults.

Set in the environment before the settings are read, so the processes the tests start
(pipelines, backfill workers) inherit it too.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: E402,F403
