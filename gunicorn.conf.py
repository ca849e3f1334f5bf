"""gunicorn's configuration for the web process: devstack/console, the Dockerfile and docker-compose
all start ``gunicorn config.wsgi -c gunicorn.conf.py`` (bind address and worker count on the command line).

Threaded workers (gthread), because an API write may wait until it is searchable (``?wait=searchable``)
and holds its thread meanwhile, for up to 30 s. A sync worker is one request at a time: a handful of
waits would take every worker and any other request would queue behind them. Each worker runs
``SEARCHSYNC_WEB_THREADS`` threads and at most ``SEARCHSYNC_WAITS_PER_PROCESS`` waits at once
(``indexing/pipeline/wait_limits.py``), fewer than its threads, so waits always leave threads for
the rest. Settings are declared in ``indexing/conf.py``.
"""

from indexing.conf import from_environment

_settings = from_environment()

worker_class = "gthread"
threads = _settings["WEB_THREADS"]
if threads <= _settings["WAITS_PER_PROCESS"]:
    raise SystemExit(f"SEARCHSYNC_WEB_THREADS ({threads}) must be above SEARCHSYNC_WAITS_PER_PROCESS "
                     f"({_settings['WAITS_PER_PROCESS']}): otherwise waits can take every thread of a worker")
# With threads the timeout watches the worker's main loop, not a request: a 30 s wait does not kill it.
timeout = 60
graceful_timeout = 20
